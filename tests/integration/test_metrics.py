"""/metrics: scraped over real HTTP after real traffic on a real server, and who may read it."""

from __future__ import annotations

import dataclasses
import json
import socket
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botical.errors import ConfigError
from botical.testing.harness import ApiClient, start_app
from tests.integration.ws_helpers import (
    ConnectionWatcher,
    RawWebSocket,
    answer_frames,
    connect,
    new_project,
    new_session,
    run_ended,
    send,
    take_until,
)

OPEN = {"metrics": {"enabled": True, "allowed_addresses": ["127.0.0.1"]}}


def _with(**overrides: Any):
    return pytest.mark.parametrize("botical_overrides", [overrides])


class Scrape:
    """The samples of one scrape, by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when no sample has these labels (nothing counted yet)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, (name, labels)
        return found[0] if found else 0.0

    def labels(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


async def scrape(app: Any, **headers: str) -> Scrape:
    resp = await ApiClient(app.url).get("/metrics", headers=headers)
    assert resp.status == 200, resp.body
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(resp.body)


@pytest.mark.gen_test
async def test_metrics_are_off_by_default(botical_app, api):
    assert not botical_app.metrics.enabled
    resp = await api.get("/metrics")
    assert (resp.status, resp.error_code) == (404, "NOT_FOUND")


@_with(**OPEN)
@pytest.mark.gen_test(timeout=60)
async def test_counters_and_histograms_move_with_real_traffic(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)  # by REST
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    channel = f"session:{session_id}"
    await ws.subscribe(channel)
    before = await scrape(botical_app)

    run_id = await send(ws, session_id, "hello there metrics")
    await answer_frames(ws, run_id, channel)
    write = json.dumps({"path": "a.txt", "content": "x"})
    asked = await send(ws, session_id, f"/tool write {write}")
    approval = (await ws.next_event("tool.approval_required"))["data"]["approval"]
    waiting = await scrape(botical_app)
    await ws.request("tools.approve", approvalId=approval["id"])
    await take_until(ws, run_ended(asked, channel))
    with pytest.raises(Exception, match="METHOD_NOT_FOUND"):
        await ws.request("no.such.method")
    with pytest.raises(Exception, match="VALIDATION_ERROR"):
        await ws.request("sessions.get", sessionId=42)
    ws.close()
    after = await scrape(botical_app)

    assert before.value("botical_approvals_waiting") == 0
    assert waiting.value("botical_approvals_waiting") == 1
    assert after.value("botical_approvals_waiting") == 0
    assert after.value("botical_tool_calls_total", tool="write", outcome="completed") == 1
    assert after.value("botical_runs_total", status="completed") == 2
    assert after.value("botical_runs_active") == 0
    assert waiting.value("botical_runs_active") == 1

    def requests(scrape: Scrape, method: str, transport: str, outcome: str = "ok") -> float:
        labels = {"method": method, "transport": transport, "outcome": outcome}
        return scrape.value("botical_method_seconds_count", **labels)

    assert requests(before, "projects.create", "rest") == 1
    assert requests(after, "messages.send", "websocket") == 2
    assert requests(after, "tools.approve", "websocket") == 1
    assert requests(after, "(unknown)", "websocket", "METHOD_NOT_FOUND") == 1
    assert requests(after, "sessions.get", "websocket", "VALIDATION_ERROR") == 1
    assert after.value("botical_method_seconds_sum", method="messages.send",
                       transport="websocket", outcome="ok") > 0  # fmt: skip

    gained = {  # five requests, each answered
        ("botical_websocket_frames_in_total", ("type", "request")): 5,
        ("botical_websocket_frames_out_total", ("type", "response")): 5,
        ("botical_events_published_total", ("event", "tool.approval_required")): 1,
        ("botical_events_published_total", ("event", "tool.approval_resolved")): 1,
    }
    for (name, (key, label)), count in gained.items():
        moved = after.value(name, **{key: label}) - before.value(name, **{key: label})
        assert moved == count, (name, label, moved)
    deltas = after.value("botical_events_published_total", event="part.updated")
    assert deltas >= 3  # "hello there metrics", a word a delta
    events = after.value("botical_events_delivered_total") - before.value(
        "botical_events_delivered_total"
    )
    event_frames = after.value("botical_websocket_frames_out_total", type="event")
    assert events >= 10 and event_frames >= events + 1  # + connection.ready
    for histogram, labels in (
        ("botical_database_seconds_count", {"op": "run"}),
        ("botical_database_seconds_count", {"op": "atomic"}),
        ("botical_bus_deliver_seconds_count", {}),
    ):
        assert after.value(histogram, **labels) > before.value(histogram, **labels)
    assert after.value("botical_websocket_connections_opened_total") == 1
    node = after.labels("botical_node_info")
    assert node == [{"node": botical_app.node, "version": node[0]["version"]}]


@_with(**OPEN, websocket={"rate_limit": 0.1, "rate_burst": 5, "abuse_limit": 2,
                          "max_message_size": 1024})  # fmt: skip
@pytest.mark.gen_test(timeout=30)
async def test_closes_are_counted_by_code_and_side(botical_app, make_user, watcher):
    alice = await make_user("alice")
    abuser = await connect(botical_app, alice.token)
    for n in range(10):
        abuser.send_raw({"type": "request", "id": f"r{n}", "method": "subscriptions.list"})
    assert await abuser.closed() == 4029
    too_big = await connect(botical_app, alice.token)
    too_big.send_raw(json.dumps({"type": "ping", "id": "x" * 2000}))
    assert await too_big.closed() == 1009
    polite = await connect(botical_app, alice.token)
    opened = await scrape(botical_app)
    polite.conn.close(1000)  # the client closes first
    await watcher.wait_closed(polite.ready["connectionId"])
    raw = await RawWebSocket.open(botical_app.port, alice.token)
    ready = await raw.read_json()
    raw.sock.close()  # no close frame at all
    await watcher.wait_closed(ready["data"]["connectionId"])
    after = await scrape(botical_app)

    assert opened.value("botical_websocket_connections") == 1
    assert after.value("botical_websocket_connections") == 0
    assert after.value("botical_websocket_connections_opened_total") == 4
    assert after.value("botical_websocket_closes_total", code="4029", by="server") == 1
    assert after.value("botical_websocket_closes_total", code="1009", by="server") == 1
    assert after.value("botical_websocket_closes_total", code="1000", by="client") == 1
    assert after.value("botical_websocket_closes_total", code="1006", by="none") == 1
    refused = after.value("botical_method_seconds_count", method="subscriptions.list",
                          transport="websocket", outcome="ok")  # fmt: skip
    assert refused == 5  # the burst; the rest were refused before any method ran


@_with(**OPEN, websocket={"queue_max_messages": 50, "queue_max_bytes": 65536})
@pytest.mark.gen_test(timeout=90)
async def test_a_client_that_falls_behind_shows_merged_deltas_and_4008(
    botical_app, make_user, watcher
):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    sender = await connect(botical_app, alice.token)
    session_id = await new_session(sender, project_id)
    channel = f"session:{session_id}"
    await sender.subscribe(channel)
    raw = await RawWebSocket.open(botical_app.port, alice.token)
    raw_id = (await raw.read_json())["data"]["connectionId"]
    await raw.send({"type": "subscribe", "id": "sub", "channels": [channel]})
    while (await raw.read_json()).get("id") != "sub":
        pass
    slow = botical_app.connections.get(raw_id)
    answers = 0
    while not slow.closed:  # the raw client reads no more: its queue fills
        assert answers < 5, "the client that stopped reading was never cut off"
        words = " ".join(f"a{answers}w{n:04d}" for n in range(1500))
        await answer_frames(sender, await send(sender, session_id, words), channel)
        answers += 1
    assert await raw.close_code() == 4008
    raw.close()
    await watcher.wait_closed(raw_id)
    after = await scrape(botical_app)
    assert after.value("botical_websocket_closes_total", code="4008", by="server") == 1
    assert after.value("botical_websocket_deltas_merged_total") > 0
    sender.close()


# --- who may read /metrics ------------------------------------------------------------------


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "metrics-token"
    path.write_text("s3cret-metrics-token\n")
    return str(path)


@pytest.mark.gen_test
async def test_a_token_is_required_and_checked(botical_settings, token_file):
    app = await start_app(_metrics(botical_settings, token_file=token_file))
    try:
        client = ApiClient(app.url)
        missing = await client.get("/metrics")
        assert (missing.status, missing.error_code) == (401, "UNAUTHORIZED")
        assert missing.headers["Www-Authenticate"].startswith("Bearer")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert (wrong.status, wrong.error_code) == (401, "UNAUTHORIZED")
        user = await app.users.create("alice", True, True)
        api_token = app.tokens.issue(user["id"]).token  # a user's token is not the metrics one
        other = await client.get("/metrics", headers={"Authorization": f"Bearer {api_token}"})
        assert other.status == 401
        right = await scrape(app, Authorization="Bearer s3cret-metrics-token")
        assert right.value("botical_websocket_connections") == 0
    finally:
        await app.stop()


@pytest.mark.gen_test
async def test_an_address_outside_the_allowed_networks_is_refused(botical_settings):
    app = await start_app(_metrics(botical_settings, allowed_addresses=("10.0.0.0/8",)))
    try:
        refused = await ApiClient(app.url).get("/metrics")
        assert (refused.status, refused.error_code) == (403, "FORBIDDEN")
    finally:
        await app.stop()


@pytest.mark.gen_test
async def test_an_allowed_address_needs_no_token(botical_settings, token_file):
    settings = _metrics(botical_settings, token_file=token_file, allowed_addresses=("127.0.0.0/8",))
    app = await start_app(settings)
    try:
        assert (await scrape(app)).value("botical_websocket_connections") == 0
    finally:
        await app.stop()


@pytest.mark.gen_test
async def test_metrics_nothing_protects_do_not_start(botical_settings):
    with pytest.raises(ConfigError, match="token"):
        await start_app(_metrics(botical_settings))


@pytest.mark.gen_test
async def test_the_metrics_port_serves_metrics_and_nothing_else(botical_settings):
    port = _free_port()
    app = await start_app(_metrics(botical_settings, allowed_addresses=("127.0.0.1",), port=port))
    try:
        side = ApiClient(f"http://127.0.0.1:{port}")
        assert (await side.get("/health")).status == 404
        resp = await side.get("/metrics")
        assert resp.status == 200
        assert Scrape(resp.body).labels("botical_node_info")[0]["node"] == app.node
    finally:
        await app.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # stopped with the app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _metrics(settings: Any, **metrics: Any) -> Any:
    conf = dataclasses.replace(settings.metrics, enabled=True, **metrics)
    return dataclasses.replace(settings, metrics=conf)


@pytest.fixture
def watcher():
    return ConnectionWatcher()


@pytest.fixture
def botical_plugins(watcher):
    return (watcher,)
