"""Prometheus metrics of one app, in its own registry (never the process-wide default one, so
that tests and several apps in one process stay apart), served at `/metrics`.

Off (`[metrics] enabled = false`, the default) every instrument is `OFF`, which does nothing,
and prometheus-client is not even imported. Instruments on the hot path are bound to their
labels once (`Family` keeps each child), never looked up with `.labels()` per frame, and
fan-out is counted once per publication, not once per subscriber. Gauges that describe
state (open connections, runs, approvals waiting) are read when scraped, so they cost nothing
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from botical.errors import BoticalError

PREFIX = "botical_"
OTHER = "other"  # the label value once a family has MAX_CHILDREN label sets
MAX_CHILDREN = 2000
# Botical answers most requests in well under a millisecond: finer buckets at the bottom.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60)
DATABASE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2)
BUS_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1, 1)
# Close codes a client may send that get their own label; any other is `other`.
CLIENT_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011})


class Instrument(Protocol):
    """What instrumented code calls: a counter's `inc`, a histogram's `observe`."""

    def inc(self, amount: float = 1) -> None: ...

    def observe(self, amount: float) -> None: ...


class _Off:
    """An instrument that records nothing: every instrument while metrics are off."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        """Count nothing."""

    def observe(self, amount: float) -> None:
        """Record nothing."""


OFF: Instrument = _Off()


class Family:
    """The children of a labelled metric, each bound once, on first use. Past MAX_CHILDREN
    label sets every new one is counted as `other`, so no input can grow the registry."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Instrument] = {}

    def __call__(self, *labels: str) -> Instrument:
        child = self._children.get(labels)
        if child is None:
            if self._metric is None:
                return OFF
            if len(self._children) >= MAX_CHILDREN:
                labels = (OTHER,) * len(labels)
                child = self._children.get(labels)
            if child is None:
                child = self._children[labels] = self._metric.labels(*labels)
        return child


def outcome_of(exc: BaseException | None) -> str:
    """A request's outcome label: `ok`, the error code, or CANCELLED (timed out or dropped)."""
    if exc is None:
        return "ok"
    if isinstance(exc, BoticalError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    return "INTERNAL_ERROR"


class Metrics:
    """Every metric Botical exports. `Metrics(None)` is the disabled set (all `OFF`)."""

    def __init__(self, registry: Any = None) -> None:
        self.registry = registry
        self.enabled = registry is not None
        self._make()

    @classmethod
    def create(cls, enabled: bool) -> Metrics:
        """The metrics of a new app: a registry of its own when enabled."""
        if not enabled:
            return cls(None)
        from prometheus_client import CollectorRegistry

        return cls(CollectorRegistry(auto_describe=True))

    def _metric(self, kind: str, name: str, doc: str, labels: tuple[str, ...] = (), **kw: Any):
        if self.registry is None:
            return None
        import prometheus_client

        cls = getattr(prometheus_client, kind)
        return cls(PREFIX + name, doc, labels, registry=self.registry, **kw)

    def _plain(self, kind: str, name: str, doc: str, **kw: Any) -> Instrument:
        metric = self._metric(kind, name, doc, **kw)
        return OFF if metric is None else metric

    def _make(self) -> None:
        counter, histogram = "Counter", "Histogram"

        def family(kind: str, name: str, doc: str, labels: tuple[str, ...], **kw: Any):
            return Family(self._metric(kind, name, doc, labels, **kw))

        self.opened = self._plain(
            counter, "websocket_connections_opened_total", "WebSocket connections opened."
        )
        self.closes = family(
            counter,
            "websocket_closes_total",
            "WebSocket connections closed, by close code and by the side that closed first "
            "(server, client; none: the connection ended without a close frame, code 1006).",
            ("code", "by"),
        )
        self.frames_in = family(
            counter,
            "websocket_frames_in_total",
            "Frames received, by type (request, subscribe, unsubscribe, ping, invalid, binary).",
            ("type",),
        )
        frames_out = family(
            counter,
            "websocket_frames_out_total",
            "Frames queued to clients, by type (response, event, pong).",
            ("type",),
        )
        self.responses, self.events_out = frames_out("response"), frames_out("event")
        self.pongs = frames_out("pong")
        self.merged = self._plain(
            counter,
            "websocket_deltas_merged_total",
            "Streaming deltas merged into a queued one because their client fell behind.",
        )
        self.requests = family(
            histogram,
            "method_seconds",
            "Method calls: seconds from the request to its answer, by method, transport "
            "(websocket, rest) and outcome (ok or the error code).",
            ("method", "transport", "outcome"),
            buckets=REQUEST_BUCKETS,
        )
        self.published = family(
            counter,
            "events_published_total",
            "Events published on this node, by event.",
            ("event",),
        )
        self.delivered = self._plain(
            counter,
            "events_delivered_total",
            "Channel events queued to subscribed connections (live and replayed).",
        )
        self.runs = family(
            counter,
            "runs_total",
            "Agent runs ended, by status (completed, cancelled, interrupted, error).",
            ("status",),
        )
        self.tool_calls = family(
            counter,
            "tool_calls_total",
            "Tool calls, by tool and outcome (completed, error, denied, rejected).",
            ("tool", "outcome"),
        )
        database = family(
            histogram,
            "database_seconds",
            "Database work: seconds from the call to its result, the executor's queue "
            "included, by kind (run, atomic).",
            ("op",),
            buckets=DATABASE_BUCKETS,
        )
        self.database_run, self.database_atomic = database("run"), database("atomic")
        self.bus_deliver = self._plain(
            histogram,
            "bus_deliver_seconds",
            "Seconds to hand one event to this node's subscribers (with the in-process bus, "
            "the fan-out to every subscribed socket included).",
            buckets=BUS_BUCKETS,
        )
        self.bus_batch = self._plain(
            histogram,
            "bus_batch_seconds",
            "Redis bus: seconds of the round trip of one batch of publications.",
            buckets=DATABASE_BUCKETS,
        )
        self.active_runs = self._metric("Gauge", "runs_active", "Agent runs running on this node.")
        self.bus_sent = self._plain(
            counter, "bus_publications_sent_total", "Redis bus: publications sent to Redis."
        )

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read from `read()` when scraped."""
        metric = self._metric("Gauge", name, doc)
        if metric is not None:
            metric.set_function(read)

    def info(self, node: str, version: str) -> None:
        """`botical_node_info{node, version} 1`: which node answered a scrape."""
        metric = self._metric("Gauge", "node_info", "This node.", ("node", "version"))
        if metric is not None:
            metric.labels(node, version).set(1)

    def closed(self, code: int, by: str) -> None:
        """A WebSocket closed with `code`, first sent `by` the server or the client (`none`:
        no close frame); codes a client chose outside the known ones count as `other`."""
        known = by != "client" or code in CLIENT_CLOSE_CODES
        self.closes(str(code) if known else OTHER, by).inc()

    def running(self) -> contextlib.AbstractContextManager[Any]:
        """Count an agent run as active while it runs."""
        return (
            contextlib.nullcontext()
            if self.active_runs is None
            else self.active_runs.track_inprogress()
        )

    def fanned_out(self, subscribers: int) -> None:
        """One channel event was queued to this many connections."""
        self.delivered.inc(subscribers)
        self.events_out.inc(subscribers)

    def request(self, method: str, transport: str) -> Timer:
        """Time one method call; its outcome is read from how it ended."""
        return Timer(self.requests, method, transport)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """Every metric in the format the scraper's Accept header asks for (Prometheus text
        by default, OpenMetrics if asked), and its content type."""
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


class Timer:
    """Context manager timing one method call into `requests{method, transport, outcome}`."""

    __slots__ = ("_family", "_method", "_started", "_transport")

    def __init__(self, family: Family, method: str, transport: str) -> None:
        self._family, self._method, self._transport = family, method, transport
        self._started = 0.0

    def __enter__(self) -> Timer:
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        elapsed = time.perf_counter() - self._started
        self._family(self._method, self._transport, outcome_of(exc)).observe(elapsed)


DISABLED = Metrics(None)  # what components use until the app gives them its own
