"""OpenTelemetry traces through a real server: spans of real requests (WebSocket and REST) and
of a real run with a tool call, exported to the SDK's in-memory exporter."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import botical
from botical.ids import new_id
from botical.testing.harness import ApiClient, start_app
from tests.integration.ws_helpers import (
    answer_frames,
    connect,
    new_session,
    send,
)


class Exporting:
    """A plugin adding an in-memory exporter, as a plugin would add its own."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()

    @botical.hookimpl
    def botical_startup(self, app: Any) -> None:
        app.tracing.add_exporter(self.exporter, batch=False)


@pytest.fixture
def traced(io_loop, botical_settings):
    """A started server with tracing on, its spans kept in memory; (app, exporter)."""
    conf = dataclasses.replace(botical_settings.tracing, enabled=True, exporter="none")
    settings = dataclasses.replace(botical_settings, tracing=conf)
    exporting = Exporting()
    app = io_loop.run_sync(lambda: start_app(settings, (exporting,)))
    try:
        yield app, exporting.exporter
    finally:
        io_loop.run_sync(app.stop)


def _one(spans: list[Any], name: str, **attributes: Any) -> Any:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [s.name for s in spans])
    return found[0]


def _children(spans: list[Any], parent: Any) -> list[Any]:
    return sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id),
        key=lambda s: s.start_time,
    )


@pytest.mark.gen_test(timeout=30)
async def test_a_websocket_request_links_to_its_run_steps_provider_and_tool_calls(traced):
    app, exporter = traced
    owner = await app.users.create("alice", False, False)
    token = app.tokens.issue(owner["id"]).token
    ws = await connect(app, token)
    project = await ws.request("projects.create", name="P")
    session_id = await new_session(ws, project["id"])
    channel = f"session:{session_id}"
    await ws.subscribe(channel)
    exporter.clear()

    run_id = await send(ws, session_id, "/tool glob " + json.dumps({"pattern": "*"}))
    await answer_frames(ws, run_id, channel)
    ws.close()
    spans = list(exporter.get_finished_spans())

    request = _one(spans, "messages.send")
    assert request.kind == SpanKind.SERVER
    assert request.attributes["botical.transport"] == "websocket"
    assert request.attributes["botical.run_id"] == run_id
    assert request.attributes["botical.outcome"] == "ok"
    run = _one(spans, "agent.run")
    assert run.attributes["botical.run_id"] == run_id
    assert run.attributes["botical.session_id"] == session_id
    assert run.attributes["botical.run.status"] == "completed"
    assert run.parent.span_id == request.context.span_id  # the request started the run
    assert run.context.trace_id == request.context.trace_id

    steps = _children(spans, run)
    assert [s.name for s in steps] == ["agent.step", "agent.step"]  # the call, then the answer
    assert [s.attributes["botical.step"] for s in steps] == [1, 2]
    first, second = (_children(spans, step) for step in steps)
    assert [s.name for s in first] == ["provider.stream", "tool glob"]
    assert first[0].kind == SpanKind.CLIENT
    assert first[0].attributes["gen_ai.request.model"] == "echo"
    assert first[1].attributes["botical.tool.outcome"] == "completed"
    assert [s.name for s in second] == ["provider.stream"]
    for span in (run, *steps, *first, *second):
        assert span.context.trace_id == request.context.trace_id
        assert span.status.status_code != StatusCode.ERROR
    assert run.start_time <= steps[0].start_time and steps[-1].end_time <= run.end_time


@pytest.mark.gen_test(timeout=30)
async def test_a_queued_message_runs_in_a_trace_of_its_own(traced):
    app, exporter = traced
    owner = await app.users.create("alice", False, False)
    ws = await connect(app, app.tokens.issue(owner["id"]).token)
    project = await ws.request("projects.create", name="P")
    session_id = await new_session(ws, project["id"])
    await ws.subscribe(f"session:{session_id}")
    exporter.clear()
    first = await ws.request("messages.send", sessionId=session_id, content="/slow one two")
    queued = await ws.request(
        "messages.send", sessionId=session_id, content="then this", ifBusy="queue"
    )
    for run_id in (first["runId"], queued["runId"]):
        await ws.next_event("agent.status_changed", runId=run_id, status="idle")
    ws.close()
    spans = list(exporter.get_finished_spans())
    runs = [_one(spans, "agent.run", **{"botical.run_id": r["runId"]}) for r in (first, queued)]
    assert runs[0].context.trace_id != runs[1].context.trace_id
    assert runs[1].parent is None  # started as the first run ended, not inside its request


@pytest.mark.gen_test(timeout=30)
async def test_rest_requests_get_the_same_spans_and_errors_say_their_code(traced):
    app, exporter = traced
    owner = await app.users.create("alice", False, False)
    token = app.tokens.issue(owner["id"]).token
    api = ApiClient(app.url, token)
    created = await api.post("/api/projects", {"name": "P"})
    missing = await api.get(f"/api/sessions/{new_id('sess')}")
    assert (created.status, missing.status) == (201, 404)
    ws = await connect(app, token)
    with pytest.raises(Exception, match="VALIDATION_ERROR"):
        await ws.request("sessions.get", sessionId=42)
    ws.close()
    spans = list(exporter.get_finished_spans())

    ok = _one(spans, "projects.create")
    assert ok.attributes["botical.transport"] == "rest"
    assert ok.attributes["botical.outcome"] == "ok"
    assert ok.status.status_code == StatusCode.UNSET
    refused = [s for s in spans if s.name == "sessions.get"]
    by_transport = {s.attributes["botical.transport"]: s for s in refused}
    assert by_transport["rest"].attributes["botical.outcome"] == "NOT_FOUND"
    assert by_transport["websocket"].attributes["botical.outcome"] == "VALIDATION_ERROR"
    for span in refused:
        assert span.status.status_code == StatusCode.ERROR
        assert span.parent is None  # a request starts its own trace


@pytest.mark.gen_test(timeout=30)
async def test_a_request_answered_from_memory_has_a_span_too(traced):
    app, exporter = traced
    owner = await app.users.create("alice", False, False)
    token = app.tokens.issue(owner["id"]).token
    ws = await connect(app, token)
    project_id = await new_project_ws(ws)
    session_id = await new_session(ws, project_id)
    await ws.request("sessions.get", sessionId=session_id)  # reads; keeps the role
    exporter.clear()
    await ws.request("sessions.get", sessionId=session_id)  # answered as the frame arrives
    ws.close()
    span = _one(list(exporter.get_finished_spans()), "sessions.get")
    assert span.attributes["botical.transport"] == "websocket"
    assert span.end_time >= span.start_time


async def new_project_ws(ws: Any) -> str:
    return (await ws.request("projects.create", name="P"))["id"]


def test_tracing_and_metrics_off_import_neither_library(tmp_path):
    """Off (the default), a server that served a request has loaded no OpenTelemetry and no
    prometheus-client: nothing of theirs runs on any path."""
    script = f"""
import asyncio, sys
from botical.config import load_settings
from botical.ids import new_id
from botical.testing.harness import ApiClient, start_app

async def main():
    settings = load_settings(environ={{}}, overrides={{"data_dir": {str(tmp_path)!r}}})
    app = await start_app(settings)
    user = await app.users.create("alice", False, False)
    api = ApiClient(app.url, app.tokens.issue(user["id"]).token)
    assert (await api.post("/api/projects", {{"name": "P"}})).status == 201
    await app.stop()
    loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "prometheus_client")))
    print(loaded)

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_console_exporter_writes_spans_to_stdout(tmp_path):
    script = f"""
import asyncio
from botical.config import load_settings
from botical.ids import new_id
from botical.testing.harness import ApiClient, start_app

async def main():
    settings = load_settings(environ={{}}, overrides={{
        "data_dir": {str(tmp_path)!r},
        "tracing": {{"enabled": True, "exporter": "console", "service_name": "tried"}},
    }})
    app = await start_app(settings)
    user = await app.users.create("alice", False, False)
    api = ApiClient(app.url, app.tokens.issue(user["id"]).token)
    assert (await api.post("/api/projects", {{"name": "P"}})).status == 201
    await app.stop()  # exports what is left

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "projects.create"' in done.stdout
    assert '"service.name": "tried"' in done.stdout
