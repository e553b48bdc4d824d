"""``PromptRunner``: type a prompt, pick a model and a policy, watch both streams live.

Each click of Run starts a run with its own panel and its own trace listener (keyed
by the run's transaction id), so several runs at once never mix. Panels redraw
through a :class:`Throttle` (at most ~20 redraws a second, coalesced, and a final
one), reading only the trace the instrumentation filled. Stop cancels every run in
progress: the orchestrator's iterator is closed, the provider stream cancelled, and
the transaction recorded as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets

from luthien_lab.runs import (
    DEFAULT_MODEL,
    RunHandle,
    RunResult,
    TransactionTrace,
    background_loop,
    execute,
)
from luthien_lab.widgets._batching import Throttle
from luthien_lab.widgets._diff import ResponseDiff
from luthien_lab.widgets._panes import counters_text, error_html, pane_html, stream_text
from luthien_lab.widgets._timeline import Timeline

__all__ = ["PromptRunner", "RunPanel", "discover_policies"]

MODELS = ("gpt-4o-mini", "gpt-4o", "anthropic/claude-3-5-haiku-latest")
TIMELINE_EVERY = 0.25  # seconds between live timeline redraws (heavier than the panes)


def _user_namespace() -> dict[str, Any]:
    """The notebook's namespace (IPython's user_ns), else ``__main__``'s."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


def discover_policies(namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Built-in policies, then every Policy subclass or instance defined in
    ``namespace`` (default: the notebook's), by name. Values are classes or instances."""
    from luthien_lab.policies.base import Policy
    from luthien_lab.policies.passthrough import NoOpPolicy
    from luthien_lab.policies.simple import SimplePolicy
    from luthien_lab.policies.uppercase import UppercasePolicy

    found: dict[str, Any] = {"NoOpPolicy": NoOpPolicy, "UppercasePolicy": UppercasePolicy}
    seen = {id(NoOpPolicy), id(UppercasePolicy)}
    ns = _user_namespace() if namespace is None else namespace
    for name, value in list(ns.items()):
        if name.startswith("_") or id(value) in seen:
            continue
        is_class = isinstance(value, type) and issubclass(value, Policy)
        if is_class and value in (Policy, SimplePolicy):
            continue
        if is_class or isinstance(value, Policy):
            found[name] = value
            seen.add(id(value))
    return found


def _label(text: str, css: str = "") -> ipywidgets.HTML:
    widget = ipywidgets.HTML(text)
    if css:
        widget.add_class(css)
    return widget


class RunPanel(ipywidgets.VBox):
    """One run's live view: counters, raw | transformed streams, error, timeline, diff."""

    def __init__(
        self,
        title: str,
        *,
        interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.trace: TransactionTrace | None = None
        self.clock = clock
        self.started = clock()
        self._last_timeline = -1e9
        self.header = _label(f"<b>{escape(title)}</b>")
        self.counters = _label("", "luthien-counters")
        self.raw = _label(pane_html("", "luthien-raw"), "luthien-raw-pane")
        self.transformed = _label(pane_html("", "luthien-transformed"), "luthien-transformed-pane")
        self.error = _label("", "luthien-error-pane")
        self.timeline = Timeline()
        self.timeline.add_class("luthien-timeline-pane")
        self.diff_box = ipywidgets.VBox()
        streams = ipywidgets.HBox(
            [
                ipywidgets.VBox([_label("<b>raw</b>"), self.raw], layout={"width": "50%"}),
                ipywidgets.VBox(
                    [_label("<b>transformed</b>"), self.transformed], layout={"width": "50%"}
                ),
            ]
        )
        super().__init__(
            [self.header, self.counters, self.error, streams, self.timeline, self.diff_box],
            layout={"border": "1px solid #ccc", "padding": "4px", "margin": "4px 0"},
        )
        self.throttle = Throttle(self.redraw, interval, clock=clock, call_later=call_later)
        self.result: RunResult | None = None

    def __repr__(self) -> str:
        status = self.trace.status if self.trace is not None else None
        return f"<RunPanel status={status or 'running'} redraws={self.throttle.redraws}>"

    def on_update(self, trace: TransactionTrace) -> None:
        """Called by the run's listener on every event: only pokes the throttle."""
        self.trace = trace
        self.throttle.poke()

    def redraw(self) -> None:
        trace = self.trace
        if trace is None:
            return
        elapsed = int((self.clock() - self.started) * 1e9)
        self.counters.value = escape(counters_text(trace, elapsed))
        self.raw.value = pane_html(stream_text(trace.ingress) or trace.raw_text, "luthien-raw")
        self.transformed.value = pane_html(
            stream_text(trace.egress) or trace.text, "luthien-transformed"
        )
        self.error.value = error_html(trace)
        now = self.clock()
        if trace.done or now - self._last_timeline >= TIMELINE_EVERY:
            self._last_timeline = now
            self.timeline.update(trace)

    def finish(self, result: RunResult) -> None:
        """The run ended: final redraw, and the diff."""
        self.result = result
        self.trace = result.trace_data
        self.throttle.dirty = True
        self.throttle.flush()
        self.diff_box.children = (ResponseDiff(result.trace_data),)


class PromptRunner(ipywidgets.VBox):
    """The live prompt runner.

    - ``client``: any LLMClient (default LiteLLMClient: the local provider offline);
    - ``store``: where runs are recorded (``"default"``, a path, a Store, None);
    - ``namespace``: where to look for policies (default: the notebook's);
    - ``interval``/``clock``/``call_later``: the redraw throttle (tests use a fake clock).
    """

    def __init__(
        self,
        *,
        client: Any = None,
        store: Any = "default",
        namespace: dict[str, Any] | None = None,
        model: str = DEFAULT_MODEL,
        policy: str = "UppercasePolicy",
        prompt: str = "",
        interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
        keep_runs: int = 5,
    ) -> None:
        self.client = client
        self.store = store
        self.namespace = namespace
        self.interval = interval
        self.clock = clock
        self.call_later = call_later
        self.keep_runs = keep_runs
        self.runs = 0
        self.active: dict[int, RunHandle] = {}
        self.tasks: set[Any] = set()
        self.results: list[RunResult] = []
        self.prompt = ipywidgets.Textarea(prompt, placeholder="prompt", layout={"width": "100%"})
        self.system = ipywidgets.Textarea(
            "", placeholder="system prompt (optional)", layout={"width": "100%"}
        )
        self.tools = ipywidgets.Textarea(
            "",
            placeholder='tools JSON (optional): [{"type": "function", ...}]',
            layout={"width": "100%"},
        )
        self.model = ipywidgets.Combobox(
            value=model, options=list(MODELS), description="model", ensure_option=False
        )
        self.policies: dict[str, Any] = {}
        self.policy = ipywidgets.Dropdown(description="policy")
        self.refresh_policies(select=policy)
        self.stream = ipywidgets.Checkbox(value=True, description="stream")
        self.run_button = ipywidgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = ipywidgets.Button(description="Stop", icon="stop", disabled=True)
        self.refresh_button = ipywidgets.Button(
            icon="refresh", tooltip="rescan policies", layout={"width": "36px"}
        )
        self.message = _label("", "luthien-runner-message")
        self.run_button.add_class("luthien-run")
        self.stop_button.add_class("luthien-stop")
        self.run_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        self.refresh_button.on_click(lambda _b: self.refresh_policies())
        self.panels = ipywidgets.VBox()
        controls = ipywidgets.HBox(
            [
                self.model,
                self.policy,
                self.refresh_button,
                self.stream,
                self.run_button,
                self.stop_button,
            ]
        )
        super().__init__(
            [self.prompt, self.system, self.tools, controls, self.message, self.panels]
        )

    def __repr__(self) -> str:
        return (
            f"<PromptRunner policy={self.policy.value!r} model={self.model.value!r} "
            f"runs={self.runs} active={len(self.active)}>"
        )

    def refresh_policies(self, select: str | None = None) -> None:
        """Rescan the namespace for policies (also done before every run)."""
        current = select or self.policy.value
        self.policies = discover_policies(self.namespace)
        self.policy.options = list(self.policies)
        if current in self.policies:
            self.policy.value = current

    def _panel(self, title: str) -> RunPanel:
        panel = RunPanel(
            title, interval=self.interval, clock=self.clock, call_later=self.call_later
        )
        self.panels.children = (panel, *self.panels.children)[: self.keep_runs]
        return panel

    async def run_async(self, prompt: str | None = None, **overrides: Any) -> RunResult | None:
        """Run once with the current settings (``overrides``: policy, model, stream,
        system, tools); returns the result, None when the settings were invalid."""
        self.refresh_policies()
        name = overrides.pop("policy", self.policy.value)
        policy = self.policies.get(name, name) if isinstance(name, str) else name
        settings = {
            "model": overrides.pop("model", self.model.value) or DEFAULT_MODEL,
            "stream": overrides.pop("stream", self.stream.value),
            "system": overrides.pop("system", self.system.value) or None,
            "tools": overrides.pop("tools", self.tools.value) or None,
        }
        if overrides:
            raise TypeError(f"unknown settings {sorted(overrides)}")
        self.runs += 1
        number = self.runs
        label = name if isinstance(name, str) else type(name).__name__
        panel = self._panel(f"run {number} · {label} · {settings['model']}")
        handle = RunHandle()
        self.active[number] = handle
        self.stop_button.disabled = False
        try:
            result = await execute(
                self.prompt.value if prompt is None else prompt,
                policy=policy,
                client=self.client,
                store=self.store,
                on_update=panel.on_update,
                handle=handle,
                **settings,
            )
        except Exception as error:  # bad settings: nothing ran, say why
            panel.error.value = (
                '<div class="luthien-error" style="color:#c53030">'
                f"<b>could not start</b>: {escape(type(error).__name__)}: {escape(str(error))}"
                "</div>"
            )
            return None
        finally:
            self.active.pop(number, None)
            self.stop_button.disabled = not self.active
        panel.finish(result)
        self.results.append(result)
        return result

    def start(self) -> Any:
        """Start a run in the background (what the Run button does); returns its
        task (or a concurrent future when no event loop runs in this thread)."""
        coro = self.run_async()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # No loop in this thread (plain Python): run on lab's background loop.
            future: Any = asyncio.run_coroutine_threadsafe(coro, background_loop().loop)
        else:
            future = loop.create_task(coro)
        self.tasks.add(future)
        future.add_done_callback(self.tasks.discard)
        return future

    def stop(self) -> None:
        """Stop every run in progress (each ends with status ``cancelled``)."""
        for handle in list(self.active.values()):
            handle.stop()
        self.message.value = "" if not self.active else "stopping…"
