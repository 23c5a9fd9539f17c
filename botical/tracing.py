"""OpenTelemetry traces of one app, through a tracer provider of its own (never the global
one, so tests and several apps in one process stay apart).

A span per request (`messages.send`, whichever transport), a span per agent run, and in it a
span per step with the provider call and each tool call as its children. The run's task is
started from within the request, so the run span's parent is the request that started it;
both carry the run id (`botical.run_id`). A sub-agent's run is a child of the tool call that
started it.

Off (`[tracing] enabled = false`, the default) nothing is imported and every call returns at
once: no span, no attribute built. On, the `otel` extra is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from botical.errors import ConfigError
from botical.metrics import outcome_of

if TYPE_CHECKING:
    from botical.config import TracingSettings

T = TypeVar("T")
NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext(None)


class Tracing:
    """Spans of requests and runs; `Tracing()` is the disabled one."""

    def __init__(self, provider: Any = None) -> None:
        self.provider = provider
        self.enabled = provider is not None
        self._tracer = provider.get_tracer("botical") if provider is not None else None
        self._runs: dict[str, Any] = {}  # run id -> its span
        self._steps: dict[str, Any] = {}  # run id -> the span of its current step

    @classmethod
    def create(cls, settings: TracingSettings) -> Tracing:
        """The tracing of a new app: its own provider and exporter when enabled."""
        if not settings.enabled:
            return cls()
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        except ImportError:
            raise ConfigError(
                "[tracing] enabled needs OpenTelemetry: pip install 'botical[otel]'"
            ) from None
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        tracing = cls(provider)
        exporter = _exporter(settings)
        if exporter is not None:
            tracing.add_exporter(exporter)
        return tracing

    def add_exporter(self, exporter: Any, batch: bool = True) -> None:
        """Send finished spans to `exporter` too (a plugin's, or a test's in-memory one): in
        batches from a background thread, or (`batch=False`) as each span ends."""
        if self.provider is None:
            return
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        processor = BatchSpanProcessor if batch else SimpleSpanProcessor
        self.provider.add_span_processor(processor(exporter))

    def shutdown(self) -> None:
        """Export what is left and stop the exporters (at the app's stop)."""
        if self.provider is not None:
            self.provider.shutdown()

    # -- requests ---------------------------------------------------------------------------

    def request(self, method: str, transport: str) -> contextlib.AbstractContextManager[Any]:
        """The span of one method call, current while it runs (a run it starts is its child)."""
        if self._tracer is None:
            return NO_SPAN
        return self._request(method, transport)

    @contextlib.contextmanager
    def _request(self, method: str, transport: str) -> Iterator[Any]:
        from opentelemetry.trace import SpanKind

        attributes = {"rpc.system": "botical", "rpc.method": method, "botical.transport": transport}
        with _ended(self._span(method, SpanKind.SERVER, attributes)) as span:
            yield span

    def answered(self, span: Any, result: Any) -> None:
        """Note the run a request started (`messages.send` answers `{message, runId}`)."""
        if span is not None and isinstance(result, dict) and isinstance(result.get("runId"), str):
            span.set_attribute("botical.run_id", result["runId"])

    def note(self, span: Any, key: str, value: str) -> None:
        """Set an attribute on a span, if there is one (tracing is on)."""
        if span is not None:
            span.set_attribute(key, value)

    def answered_now(self, method: str, transport: str, started_ns: int) -> None:
        """The span of a request answered from memory as its frame arrived."""
        if self._tracer is None:
            return
        from opentelemetry.trace import SpanKind

        attributes = {"rpc.system": "botical", "rpc.method": method, "botical.transport": transport}
        span = self._tracer.start_span(
            method, kind=SpanKind.SERVER, attributes=attributes, start_time=started_ns
        )
        span.set_attribute("botical.outcome", "ok")
        span.end()

    # -- runs -------------------------------------------------------------------------------

    def run(self, run_id: str, session_id: str, project_id: str):
        """The span of one agent run, current while it runs."""
        if self._tracer is None:
            return NO_SPAN
        return self._run(run_id, session_id, project_id)

    @contextlib.contextmanager
    def _run(self, run_id: str, session_id: str, project_id: str) -> Iterator[Any]:
        attributes = {
            "botical.run_id": run_id,
            "botical.session_id": session_id,
            "botical.project_id": project_id,
        }
        with _ended(self._span("agent.run", None, attributes)) as span:
            self._runs[run_id] = span
            try:
                yield span
            finally:  # its last step ends within it
                self._end_step(run_id)
                self._runs.pop(run_id, None)

    def run_ended(self, run_id: str, status: str) -> None:
        """Note how the run ended (completed, cancelled, interrupted, error)."""
        span = self._runs.get(run_id)
        if span is not None:
            span.set_attribute("botical.run.status", status)

    def step(self, run_id: str, number: int) -> None:
        """A run starts its step `number`: the previous step's span ends, this one's begins."""
        run = self._runs.get(run_id)
        if run is None:
            return
        from opentelemetry.trace import set_span_in_context

        self._end_step(run_id)
        assert self._tracer is not None
        self._steps[run_id] = self._tracer.start_span(
            "agent.step",
            context=set_span_in_context(run),
            attributes={"botical.run_id": run_id, "botical.step": number},
        )

    def _end_step(self, run_id: str) -> None:
        span = self._steps.pop(run_id, None)
        if span is not None:
            span.end()

    async def provider_call(self, run_id: str, model: str, work: Awaitable[T]) -> T:
        """Await the provider's answer to one step inside a span of its own."""
        if self._tracer is None:
            return await work
        from opentelemetry.trace import SpanKind

        attributes = {"botical.run_id": run_id, "gen_ai.request.model": model}
        with self._child(run_id, "provider.stream", SpanKind.CLIENT, attributes):
            return await work

    def tool_call(self, run_id: str, tool: str) -> contextlib.AbstractContextManager[Any]:
        """The span of one tool call of a run's step, current while it runs (a sub-agent's
        run is its child)."""
        if self._tracer is None:
            return NO_SPAN
        attributes = {"botical.run_id": run_id, "botical.tool": tool}
        return self._child(run_id, f"tool {tool}", None, attributes)

    @contextlib.contextmanager
    def _child(self, run_id: str, name: str, kind: Any, attributes: dict[str, Any]):
        from opentelemetry.trace import set_span_in_context

        parent = self._steps.get(run_id) or self._runs.get(run_id)
        context = set_span_in_context(parent) if parent is not None else None
        with _ended(self._span(name, kind, attributes, context)) as span:
            yield span

    # -- helpers ----------------------------------------------------------------------------

    def _span(self, name: str, kind: Any, attributes: dict[str, Any], context: Any = None):
        from opentelemetry.trace import SpanKind

        assert self._tracer is not None
        return self._tracer.start_as_current_span(
            name,
            context=context,
            kind=kind or SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,  # messages may hold user data; the code is enough
            set_status_on_exception=False,
        )


@contextlib.contextmanager
def _ended(manager: Any) -> Iterator[Any]:
    """Enter a span (as current); on the way out, mark it failed if an exception ends it."""
    with manager as span:
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise
        else:
            if span.is_recording():
                span.set_attribute("botical.outcome", "ok")


def _failed(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    outcome = outcome_of(exc)
    span.set_attribute("botical.outcome", outcome)
    if outcome == "INTERNAL_ERROR":
        span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, outcome))


def _exporter(settings: TracingSettings) -> Any:
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=settings.service_name)
    if settings.exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(
                "[tracing] exporter = 'otlp' needs the OTLP exporter: pip install 'botical[otel]'"
            ) from None
        return OTLPSpanExporter(endpoint=settings.endpoint or None)
    return None  # "none": only the exporters plugins add
