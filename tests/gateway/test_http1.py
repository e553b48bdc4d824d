"""The gateway's own HTTP/1.1 client (``gateway._http1``): requests, response bodies,
connections that end, bad input; against raw servers (``http1_upstream``) that count
their connections."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import zlib

import pytest

from luthien_lab.gateway._http1 import Http1Client, UpstreamConnectionError
from luthien_lab.gateway._native_http import NativeUpstreamError, fail
from tests.gateway.http1_upstream import (
    TEXT,
    Conn,
    Req,
    Upstream,
    all_slots_proceed,
    answer,
    chunk,
    chunked_body,
    chunked_head,
    clean_loop,  # noqa: F401  (autouse)
    iter_body,
    keep_alive,
    post,
    settle,
    until,
)

pytestmark = pytest.mark.timeout(30)


# ----- requests: keep-alive, the head, the body -----


async def test_sequential_requests_share_one_keep_alive_connection():
    async with Upstream(keep_alive(lambda req: answer(b"re:" + req.body))) as up:
        client = Http1Client()
        try:
            for i in range(5):
                assert await post(client, up.url, b"%d" % i) == (200, b"re:%d" % i)
        finally:
            client.close()
    assert up.connections == 1
    assert [req.conn for req in up.requests] == [0] * 5


async def test_the_request_head_and_body_as_sent():
    body = b'{"a": "\xe2\x98\x83"}\r\n\x00\xff tail'  # not text: sent byte for byte
    async with Upstream(keep_alive(lambda req: answer())) as up:
        client = Http1Client(
            headers={"Authorization": "Bearer k", "X-Pool": "pool", "Accept": "text/x"}
        )
        try:
            await post(
                client,
                up.url,
                body,
                headers={
                    "x-POOL": "mine",  # a request's own header wins, whatever its case
                    "X-Req": "r",
                    "Content-Length": "999",  # the client's own: ignored
                    "Host": "elsewhere",
                    "Connection": "close",
                },
            )
            await post(client, up.url, b"")
        finally:
            client.close()
    first, second = up.requests
    assert (first.method, first.target) == ("POST", "/v1/x?q=1")
    assert first.body == body
    assert first.header("host") == [f"127.0.0.1:{up.port}"]
    assert first.header("content-length") == [str(len(body))]
    assert first.header("connection") == []
    assert first.header("x-pool") == ["mine"]
    assert first.header("x-req") == ["r"]
    assert first.header("authorization") == ["Bearer k"]
    assert first.header("accept") == ["text/x"]  # the pool's, over the default
    assert first.header("user-agent") == ["luthien-lab"]
    assert second.header("content-length") == ["0"] and second.body == b""
    assert second.header("x-pool") == ["pool"] and second.header("x-req") == []
    assert up.connections == 1, "a request's connection header does not close it"


async def test_defaults_and_the_host_header_of_default_ports():
    async with Upstream(keep_alive(lambda req: answer())) as up:
        client = Http1Client()
        try:
            await post(client, up.url, headers={"User-Agent": "me"})
            await post(client, up.url)
        finally:
            client.close()
    assert up.requests[0].header("user-agent") == ["me"]
    assert up.requests[0].header("accept") == ["*/*"]
    assert up.requests[1].header("user-agent") == ["luthien-lab"]

    # No server listens on 80 or 443 here: the head the client would write.
    def host(url: str) -> bytes:
        origin, target = client._origin(url)
        head = client._head("POST", target, origin, b"", None)
        return head.split(b"\r\n")[1]

    assert host("http://example.com/a") == b"host: example.com"
    assert host("https://example.com:443/a") == b"host: example.com"
    assert host("https://example.com:80/a") == b"host: example.com:80"
    assert host("http://[::1]:8080/a") == b"host: [::1]:8080"
    assert host("http://[::1]/a") == b"host: [::1]"


# ----- response bodies -----


async def _body_handler_sized(conn: Conn) -> None:
    while await conn.request() is not None:
        await conn.send(answer(TEXT)[: len(TEXT) // 2], answer(TEXT)[len(TEXT) // 2 :], pause=0.005)


async def _body_handler_chunks_across_writes(conn: Conn) -> None:
    while await conn.request() is not None:
        wire = chunked_head() + chunked_body(TEXT, 1000)
        # Cut everywhere awkward: inside a size line, between \r and \n, mid-chunk.
        cuts = [0, 5, 17, 18, 19, 300, 1006, 1007, 1500, 4000, len(wire) - 3, len(wire)]
        await conn.send(*(wire[a:b] for a, b in itertools.pairwise(cuts)), pause=0.003)


async def _body_handler_chunks_in_one_write(conn: Conn) -> None:
    while await conn.request() is not None:
        # Many chunks per write, a chunk extension and a trailer.
        body = chunked_body(TEXT, 7)[: -len(b"0\r\n\r\n")]
        await conn.send(chunked_head() + body + b"0;ext=1\r\nx-trailer: t\r\n\r\n")


@pytest.mark.parametrize(
    "handler",
    [_body_handler_sized, _body_handler_chunks_across_writes, _body_handler_chunks_in_one_write],
    ids=["content-length", "chunks-across-writes", "chunks-in-one-write"],
)
async def test_delimited_bodies_whole_and_in_parts_on_one_connection(handler):
    async with Upstream(handler) as up:
        client = Http1Client()
        try:
            assert await post(client, up.url) == (200, TEXT)
            parts, joined = await iter_body(client, up.url)
            assert joined == TEXT and all(parts)
            assert await post(client, up.url) == (200, TEXT)
        finally:
            client.close()
    assert up.connections == 1


async def test_a_body_without_length_ends_with_the_connection_which_is_not_reused():
    async def handle(conn: Conn) -> None:
        req = await conn.request()
        assert req is not None
        await conn.send(b"HTTP/1.1 200 OK\r\n\r\n", TEXT[:100], TEXT[100:], pause=0.005)
        # returning closes the connection: the end of the body

    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            assert await post(client, up.url) == (200, TEXT)
            _parts, joined = await iter_body(client, up.url)
            assert joined == TEXT
        finally:
            client.close()
    assert up.connections == 2, "each close-delimited response had its own connection"


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nconnection: close\r\n", b"HTTP/1.0 200 OK\r\n"],
    ids=["connection-close", "http-1.0"],
)
async def test_a_response_that_does_not_keep_alive_closes_its_connection(head):
    async def handle(conn: Conn) -> None:
        req = await conn.request()
        assert req is not None
        await conn.send(head + b"content-length: %d\r\n\r\n%s" % (len(req.body), req.body))
        await conn.until_closed()  # the client closes it

    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            assert await post(client, up.url, b"a") == (200, b"a")
            await until(lambda: 0 in up.closed_by_client)
            assert await post(client, up.url, b"b") == (200, b"b")
        finally:
            client.close()
    assert [req.conn for req in up.requests] == [0, 1]


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_gzip_and_deflate_bodies_are_decoded(encoding, framing):
    packed = zlib.compress(TEXT) if encoding == "deflate" else gzip.compress(TEXT)
    headers = f"content-encoding: {encoding.upper()}\r\n"

    def reply(req: Req) -> bytes:
        if framing == "chunked":
            return chunked_head(headers) + chunked_body(packed, 50)
        return answer(packed, headers=headers)

    async with Upstream(keep_alive(reply)) as up:
        client = Http1Client()
        try:
            assert await post(client, up.url) == (200, TEXT)
            parts, joined = await iter_body(client, up.url)
            assert joined == TEXT and all(parts)
        finally:
            client.close()
    assert up.connections == 1
    assert all(req.header("accept-encoding") == [] for req in up.requests), "never asked for"


async def test_an_unsupported_content_encoding_is_an_error_naming_it():
    async with Upstream(
        keep_alive(lambda req: answer(b"xx", headers="content-encoding: br\r\n"))
    ) as up:
        client = Http1Client(max_connections=1)
        try:
            with pytest.raises(UpstreamConnectionError, match="'br'"):
                await post(client, up.url)
            await until(lambda: 0 in up.closed_by_client)
            await all_slots_proceed(client, 1)
        finally:
            client.close()


# ----- connections that end -----


async def test_a_pooled_connection_the_upstream_closed_while_idle_is_replaced():
    async def handle(conn: Conn) -> None:  # one answer (keep-alive), then the close
        req = await conn.request()
        assert req is not None
        await conn.send(answer(req.body))

    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            for i in range(3):
                assert await post(client, up.url, b"%d" % i) == (200, b"%d" % i)
                await settle()  # the close reaches the client before the next request
        finally:
            client.close()
    assert up.connections == 3
    assert [req.conn for req in up.requests] == [0, 1, 2]


async def test_a_request_on_a_pooled_connection_closed_unanswered_is_sent_again():
    # The upstream closes an idle connection just as the request arrives: it read the
    # request and answers not a byte. The client sends it again on a new connection.
    async def handle(conn: Conn) -> None:
        req = await conn.request()
        assert req is not None
        await conn.send(answer(req.body))
        if conn.index == 0:
            await conn.request()  # read, never answered: returning closes

        else:
            await keep_alive(lambda req: answer(req.body))(conn)

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            assert await post(client, up.url, b"a") == (200, b"a")
            assert await post(client, up.url, b"b") == (200, b"b")
            assert await post(client, up.url, b"c") == (200, b"c")
        finally:
            client.close()
    assert [(req.conn, req.body) for req in up.requests] == [
        (0, b"a"),
        (0, b"b"),
        (1, b"b"),
        (1, b"c"),
    ]


async def test_a_new_connection_closed_unanswered_is_an_error_not_sent_again():
    async def handle(conn: Conn) -> None:
        await conn.request()

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            with pytest.raises(UpstreamConnectionError, match="closed the connection"):
                await post(client, up.url)
            await all_slots_proceed(client, 1)
        finally:
            client.close()
    assert up.connections == 1 and len(up.requests) == 1


async def test_a_connection_broken_mid_head_is_an_error_not_sent_again():
    async def handle(conn: Conn) -> None:
        req = await conn.request()
        assert req is not None
        await conn.send(answer())
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\ncontent-")  # then the close

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            assert await post(client, up.url) == (200, b"ok")
            with pytest.raises(UpstreamConnectionError, match="closed the connection"):
                await post(client, up.url)
            await all_slots_proceed(client, 1)
        finally:
            client.close()
    assert up.connections == 1 and len(up.requests) == 2


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("reading", ["iter_any", "read"])
async def test_a_connection_broken_after_the_head_fails_the_body(framing, reading):
    async def handle(conn: Conn) -> None:
        await conn.request()
        if framing == "chunked":
            await conn.send(chunked_head() + chunk(b"first") + b"a\r\nsec")
        else:
            await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
        await until(lambda: bool(got))  # the client has the first part
        # returning closes the connection mid-body

    got: list[bytes] = []
    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            with pytest.raises(UpstreamConnectionError, match="closed the connection"):
                async with client.post(up.url, data=b"{}") as response:
                    assert response.status == 200
                    if reading == "read":
                        got.append(b"")
                        await response.read()
                    async for part in response.content.iter_any():
                        got.append(part)
            await all_slots_proceed(client, 1)
        finally:
            client.close()
    if reading == "iter_any":
        assert got[0].startswith(b"first")


async def test_malformed_http_is_an_error_naming_it():
    replies = {
        0: b"HTTP/1.1 abc Nope\r\n\r\n",  # a bad status line
        1: b"ICY 200 OK\r\n\r\n",
        2: b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
    }

    async def handle(conn: Conn) -> None:
        await conn.request()
        await conn.send(replies[conn.index])
        await conn.until_closed()

    async with Upstream(handle) as up:
        client = Http1Client(max_connections=1)
        try:
            for _ in replies:
                with pytest.raises(UpstreamConnectionError, match="malformed HTTP"):
                    await post(client, up.url)
            await until(lambda: len(up.closed_by_client) == len(replies))
            await all_slots_proceed(client, 1)
        finally:
            client.close()


async def test_a_malformed_chunk_fails_the_body_and_closes_the_connection():
    async def handle(conn: Conn) -> None:
        await conn.request()
        await conn.send(chunked_head() + chunk(b"good"))
        await until(lambda: bool(got))
        await conn.send(b"zz\r\nbad\r\n")
        await conn.until_closed()

    got: list[bytes] = []
    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            with pytest.raises(UpstreamConnectionError, match="malformed HTTP"):
                async with client.post(up.url, data=b"{}") as response:
                    async for part in response.content.iter_any():
                        got.append(part)
            await until(lambda: 0 in up.closed_by_client)
        finally:
            client.close()
    assert got == [b"good"]


async def test_bytes_after_a_complete_response_close_the_connection():
    # Nobody asked for them: nothing after them can be trusted, the connection is not
    # reused (the next request opens another), the answer in hand is intact.
    async def handle(conn: Conn) -> None:
        req = await conn.request()
        assert req is not None
        if conn.index == 0:
            await conn.send(answer(b"one") + answer(b"unasked", headers="x-extra: 1\r\n"))
            await conn.until_closed()
        else:
            await conn.send(answer(b"two"))

    async with Upstream(handle) as up:
        client = Http1Client()
        try:
            async with client.post(up.url, data=b"{}") as response:
                assert await response.read() == b"one"
                assert "x-extra" not in response.headers
            assert await post(client, up.url) == (200, b"two")
            await until(lambda: 0 in up.closed_by_client)
        finally:
            client.close()
    assert [req.conn for req in up.requests] == [0, 1]


async def test_an_http_error_status_is_a_response_with_its_body():
    error = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
    async with Upstream(keep_alive(lambda req: answer(error, status=500))) as up:
        client = Http1Client()
        try:
            async with client.post(up.url, data=b"{}") as response:
                assert response.status == 500
                assert response.headers["content-length"] == str(len(error))
                raised = await fail(response, "prov")  # what the callers raise
            assert isinstance(raised, NativeUpstreamError)
            assert (raised.status_code, raised.body) == (500, error)
            assert "boom" in str(raised)
            assert await post(client, up.url) == (500, error)
        finally:
            client.close()
    assert up.connections == 1, "an error answer leaves the connection reusable"


# ----- bad input -----


@pytest.mark.parametrize(
    "headers",
    [
        {"x-bad": "a\r\nx-injected: 1"},
        {"x-bad": "a\nb"},
        {"x-bad": "a\rb"},
        {"x-bad\r\nx-injected": "1"},
        {"x-bad\n": "1"},
        {"x-bad: 1\r\nx": "1"},
        {"x-bad x": "1"},
        {"x-bad\t": "1"},
        {"x-bad\x00": "1"},
        {"x-snowman": "\u2603"},
    ],
)
async def test_a_header_with_cr_or_lf_is_a_value_error_naming_it(headers):
    async with Upstream(keep_alive(lambda req: answer())) as up:
        client = Http1Client(max_connections=1)
        try:
            (name,) = headers
            with pytest.raises(ValueError, match=re.escape(repr(name))):
                await post(client, up.url, headers=headers)
            pool = Http1Client(max_connections=1, headers=headers)
            with pytest.raises(ValueError, match=re.escape(repr(name))):
                await post(pool, up.url)
            pool.close()
            assert await post(client, up.url) == (200, b"ok")
        finally:
            client.close()
    assert len(up.requests) == 1, "nothing was sent for the bad ones"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http:///v1/x", "no host"),
        ("/v1/x", "no host"),
        ("ftp://example.com/x", "scheme"),
        ("ws://example.com/x", "scheme"),
    ],
)
async def test_a_url_without_host_or_of_another_scheme_is_a_value_error(url, why):
    client = Http1Client(max_connections=1)
    try:
        with pytest.raises(ValueError, match=why):
            await post(client, url)
        with pytest.raises(ValueError, match=why):
            await post(client, url)  # the same, from the client's cache of URLs
        await all_slots_proceed(client, 1)
    finally:
        client.close()


async def test_an_interim_response_is_skipped_for_the_real_one():
    interim = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n"
    async with Upstream(keep_alive(lambda req: interim + answer(b"real"))) as up:
        client = Http1Client(max_connections=1)
        try:
            for _ in range(2):
                async with client.post(up.url, data=b"x") as response:
                    assert response.status == 200
                    assert "link" not in response.headers
                    assert await response.read() == b"real"
        finally:
            client.close()
    assert up.connections == 1
