"""The metrics registry: one per app, bounded label sets, nothing at all when off."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botical import metrics as m
from botical.errors import NotFound


def _samples(metrics: m.Metrics) -> dict[tuple[str, tuple], float]:
    text = metrics.render(None)[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_each_app_has_its_own_registry():
    one, two = m.Metrics.create(True), m.Metrics.create(True)
    one.opened.inc()
    assert _samples(one)[("botical_websocket_connections_opened_total", ())] == 1
    assert _samples(two)[("botical_websocket_connections_opened_total", ())] == 0


def test_off_every_instrument_does_nothing():
    off = m.Metrics.create(False)
    assert off.registry is None and not off.enabled
    for instrument in (off.opened, off.merged, off.frames_in("request"), off.runs("error")):
        assert instrument is m.OFF
    with off.request("x", "rest"), off.running():
        off.fanned_out(3)
    off.closed(4008, "server")
    off.gauge("never", "not made", lambda: 1.0)  # nothing to register it in


def test_a_family_stops_growing_at_its_bound(monkeypatch):
    monkeypatch.setattr(m, "MAX_CHILDREN", 3)
    metrics = m.Metrics.create(True)
    for n in range(10):
        metrics.tool_calls(f"tool{n}", "completed").inc()
    tools = [
        dict(labels)["tool"]
        for name, labels in _samples(metrics)
        if name == "botical_tool_calls_total"
    ]
    assert tools == ["tool0", "tool1", "tool2", "other"]
    assert (
        _samples(metrics)[("botical_tool_calls_total", (("outcome", "other"), ("tool", "other")))]
        == 7
    )


def test_client_close_codes_outside_the_known_ones_are_other():
    metrics = m.Metrics.create(True)
    for code in (1000, 4123, 3999, 1005):
        metrics.closed(code, "client")
    metrics.closed(4008, "server")
    closes = {
        labels: value
        for (name, labels), value in _samples(metrics).items()
        if name == "botical_websocket_closes_total"
    }
    assert closes == {
        (("by", "client"), ("code", "1000")): 1,
        (("by", "client"), ("code", "1005")): 1,
        (("by", "client"), ("code", "other")): 2,
        (("by", "server"), ("code", "4008")): 1,
    }


def test_a_timed_request_is_labelled_by_how_it_ended():
    metrics = m.Metrics.create(True)
    for error in (None, NotFound("gone"), asyncio.CancelledError(), KeyError("bug")):
        try:
            with metrics.request("sessions.get", "websocket"):
                if error is not None:
                    raise error
        except BaseException as caught:
            assert caught is error
    outcomes = sorted(
        dict(labels)["outcome"]
        for (name, labels) in _samples(metrics)
        if name == "botical_method_seconds_count"
    )
    assert outcomes == ["CANCELLED", "INTERNAL_ERROR", "NOT_FOUND", "ok"]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "text/plain; version=0.0.4"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
    ],
)
def test_the_format_follows_the_scrapers_accept_header(accept, content_type):
    body, given = m.Metrics.create(True).render(accept)
    assert given.startswith(content_type)
    assert b"botical_websocket_frames_in" in body
