"""What the diff marks for known raw/transformed pairs."""

from __future__ import annotations

from luthien_lab.runs import TransactionTrace
from luthien_lab.widgets import ResponseDiff, compare_tool_calls, word_diff
from luthien_lab.widgets._diff import diff_html


def test_word_diff_marks_changed_words_only():
    ops = word_diff("the cat sat down", "the dog sat down")
    assert ("replace", "cat", "dog") in ops
    assert [tag for tag, _, _ in ops].count("equal") == 2
    html = diff_html("the cat sat", "the dog sat", mode="inline")
    assert "<del" in html and ">cat</del>" in html and ">dog</ins>" in html
    side = diff_html("a b", "a b c")
    assert "> c</ins>" in side and "<del" not in side


def test_diff_escapes_html():
    html = diff_html("<b>x</b>", "<i>y</i>", mode="inline")
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_tool_calls_compared_by_name_and_parsed_arguments():
    raw = [
        {"id": "1", "name": "search", "arguments": '{"q": "a", "n": 1}'},
        {"id": "2", "name": "delete_all", "arguments": "{}"},
        {"id": "3", "name": "same", "arguments": '{"x": 1}'},
    ]
    final = [
        {"id": "1", "name": "search", "arguments": '{"q": "b", "lang": "en"}'},
        {"id": "3", "name": "same", "arguments": '{ "x" : 1 }'},
        {"id": "9", "name": "audit", "arguments": "{}"},
    ]
    rows = {row["name"]: row for row in compare_tool_calls(raw, final)}
    assert rows["search"]["status"] == "changed"
    assert rows["search"]["added"] == ["lang"]
    assert rows["search"]["removed"] == ["n"]
    assert rows["search"]["changed"] == {"q": ("a", "b")}
    assert rows["delete_all"]["status"] == "blocked"
    assert rows["same"]["status"] == "unchanged"  # parsed, not string compared
    assert rows["audit"]["status"] == "added"


def trace_with(raw, final, **kw) -> TransactionTrace:
    trace = TransactionTrace("tx", **kw)
    trace.original_response = raw
    trace.final_response = final
    trace.status = kw.get("status", "ok")
    return trace


def resp(text="", calls=(), finish="stop", refusal=None):
    return {
        "text": text,
        "reasoning": "",
        "tool_calls": list(calls),
        "finish_reason": finish,
        "refusal": refusal,
    }


def test_response_diff_widget_marks_blocked_calls_and_refusals():
    trace = trace_with(
        resp("ok", [{"id": "1", "name": "rm", "arguments": '{"path": "/"}'}], "tool_calls"),
        resp("ok", [], "stop", refusal="I blocked rm"),
    )
    trace.events.append(("blocked", {"reason": "rm is dangerous"}))
    trace.status = "blocked"
    diff = ResponseDiff(trace)
    assert diff.result["tool_calls"][0]["status"] == "blocked"
    assert 'class="badge badge-blocked"' in diff.value
    assert "rm is dangerous" in diff.value
    assert "refusal sent" in diff.value and "I blocked rm" in diff.value
    assert "finish reason" in diff.value  # tool_calls → stop
    assert repr(diff) == "<ResponseDiff text_changes=0 tool_calls=['blocked']>"


def test_request_diff_shows_rewritten_and_added_messages():
    trace = trace_with(resp("a"), resp("a"))
    trace.original_messages = [{"role": "user", "content": "tell me the password"}]
    trace.final_messages = [
        {"role": "user", "content": "tell me the [redacted]"},
        {"role": "system", "content": "be careful"},
    ]
    diff = ResponseDiff(trace, mode="inline")
    statuses = [r["status"] for r in diff.result["request"]]
    assert statuses == ["changed", "added"]
    assert ">password</del>" in diff.value and ">[redacted]</ins>" in diff.value
    unchanged = ResponseDiff(trace_with(resp("a"), resp("a")))
    assert "<del" not in unchanged.value and "<ins" not in unchanged.value
