"""Every exception luthien-lab raises on purpose.

Hierarchy::

    LuthienLabError                 base of everything below
    ├── PolicyError                 a policy hook raised; names the hook and the transaction
    │   └── HookTimeoutError        a hook ran longer than its hook_timeout
    ├── RequestRefused              raised by a policy's on_request to refuse a request
    ├── UpstreamError               the LLM provider failed (HTTP error, dropped stream, ...)
    │   └── UpstreamTimeoutError    the provider went silent longer than the configured timeout
    ├── ConfigError                 a bad policy config: class path, module, config key or type
    ├── StoreError                  the DuckDB store could not be opened or written
    │   └── StoreLockedError        another process holds the store file for writing
    ├── DatasetError                a dataset or recording file is malformed
    └── ExportError                 a policy could not be exported to a module

Every message names the bad value and says how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "ExportError",
    "HookTimeoutError",
    "LuthienLabError",
    "PolicyError",
    "RequestRefused",
    "StoreError",
    "StoreLockedError",
    "UpstreamError",
    "UpstreamTimeoutError",
]


class LuthienLabError(Exception):
    """Base class of every error luthien-lab raises on purpose."""


class PolicyError(LuthienLabError):
    """A policy hook raised an exception.

    ``hook`` is the hook's name (``on_content_delta``...), ``transaction_id`` the
    transaction it ran for; the original exception is ``__cause__``.
    """

    def __init__(self, hook: str, transaction_id: str, cause: BaseException, policy: str = ""):
        self.hook = hook
        self.transaction_id = transaction_id
        self.policy = policy
        who = f"{policy}.{hook}" if policy else hook
        super().__init__(
            f"policy hook {who} raised {type(cause).__name__}: {cause} "
            f"(transaction {transaction_id}). Fix the hook, or catch the error inside it."
        )


class HookTimeoutError(PolicyError):
    """A policy hook ran longer than its ``hook_timeout`` (seconds): it was cancelled
    (or, when it held the event loop, found out when it returned) and the transaction
    failed. ``timeout`` is the limit; ``__cause__`` a ``TimeoutError``."""

    def __init__(self, hook: str, transaction_id: str, timeout: float, policy: str = ""):
        cause = TimeoutError(f"{hook} did not return within {timeout:g} s")
        super().__init__(hook, transaction_id, cause, policy)
        self.timeout = timeout
        who = f"{policy}.{hook}" if policy else hook
        self.args = (
            f"policy hook {who} did not return within {timeout:g} s (hook_timeout; "
            f"transaction {transaction_id}). Make the hook faster, or raise the limit: "
            "hook_timeout on the policy class (seconds, None for no limit), "
            "PolicyOrchestrator(hook_timeout=...) or gateway.hook_timeout.",
        )
        self.__cause__ = cause


class RequestRefused(LuthienLabError):
    """Raise from ``on_request`` (or ``on_request_simple``) to refuse a request.

    The caller receives a well-formed refusal response (``finish_reason="stop"`` and
    ``message`` as its text, with ``refusal`` set) instead of an exception; the
    transaction is recorded with status ``blocked``.
    """

    def __init__(self, message: str = "This request was refused by policy.", *, reason: str = ""):
        self.message = message
        self.reason = reason or message
        super().__init__(message)


class UpstreamError(LuthienLabError):
    """The LLM provider failed: an HTTP error, a dropped connection or a malformed stream."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        transaction_id: str = "",
        status_code: int | None = None,
    ):
        self.provider = provider
        self.model = model
        self.transaction_id = transaction_id
        self.status_code = status_code
        where = ", ".join(
            part
            for part in (
                f"provider {provider}" if provider else "",
                f"model {model}" if model else "",
                f"transaction {transaction_id}" if transaction_id else "",
                f"HTTP {status_code}" if status_code else "",
            )
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)


class UpstreamTimeoutError(UpstreamError):
    """The provider sent nothing for longer than the orchestrator's ``chunk_timeout``."""


class ConfigError(LuthienLabError):
    """A policy configuration is wrong; the message names the bad key, path or value."""


class StoreError(LuthienLabError):
    """The DuckDB store could not be opened, migrated or written."""


class StoreLockedError(StoreError):
    """Another process holds the store file for writing."""


class DatasetError(LuthienLabError):
    """A dataset or recording file is malformed; the message names the file and line."""


class ExportError(LuthienLabError):
    """A policy could not be exported (its source could not be found, say)."""
