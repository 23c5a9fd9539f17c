"""Several nodes behind one address: real `botical serve` processes on one database and one
Redis. Events reach every node exactly once with the same seq, replay works on any node, runs,
cancels and approvals cross nodes, a killed node's run is interrupted by a survivor, and shared
state (revocations, memberships, connection limits) holds on every node."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tornado.httpclient

from botical.testing.wsclient import WsClient
from tests.integration.cluster.harness import Cluster, Node

SLOW = "/slow " + " ".join(f"w{n:02d}" for n in range(60))  # 60 deltas, 50 ms apart


def _setup(node: Node) -> tuple[str, str]:
    project = node.http("POST", "/api/projects", {"name": "P"})
    session = node.http("POST", f"/api/projects/{project['id']}/sessions", {"title": "s"})
    return project["id"], session["id"]


def _on(ws: WsClient, channel: str) -> list[dict[str, Any]]:
    return [f for f in ws.received if f.get("type") == "event" and f.get("channel") == channel]


def _text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["data"].get("delta", "") for f in frames if f["event"] == "part.updated")


async def _idle(ws: WsClient, run_id: str, timeout: float = 20) -> dict[str, Any]:
    return await ws.next_event("agent.status_changed", timeout, runId=run_id, status="idle")


@pytest.mark.gen_test(timeout=90)
async def test_an_event_reaches_every_node_once_with_the_same_seq(cluster: Cluster):
    a, b, c = cluster.start(3)
    _, sid = _setup(a)
    channel = f"session:{sid}"
    clients = [await node.connect() for node in (a, b, c)]
    assert len({ws.ready["epoch"] for ws in clients}) == 1  # the epoch is the cluster's
    for ws in clients:
        await ws.subscribe(channel)
    sent = b.http("POST", f"/api/sessions/{sid}/messages", {"content": "one two three four"})
    for ws in clients:
        await _idle(ws, sent["runId"])
    seen = [[(f["seq"], f["event"]) for f in _on(ws, channel)] for ws in clients]
    assert seen[0] == seen[1] == seen[2]
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == list(range(1, len(seqs) + 1))  # every seq once, in order, none missing
    assert _text(_on(clients[2], channel)) == "one two three four"
    for ws in clients:
        ws.close()


@pytest.mark.gen_test(timeout=90)
async def test_a_client_resumes_on_another_node_from_the_shared_history(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    channel = f"session:{sid}"
    first = await a.connect()
    await first.subscribe(channel)
    sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": "before the gap"})
    await _idle(first, sent["runId"])
    last_seq = _on(first, channel)[-1]["seq"]
    first.close()
    watcher = await b.connect()
    await watcher.subscribe(channel)
    sent = b.http("POST", f"/api/sessions/{sid}/messages", {"content": "while away"})
    await _idle(watcher, sent["runId"])
    resumed = await b.connect()
    assert resumed.ready["epoch"] == first.ready["epoch"]
    ack = await resumed.subscribe(channel, since={channel: last_seq})
    assert ack["subscribed"][0]["recovered"] is True
    missed = _on(resumed, channel)
    assert [f["seq"] for f in missed] == [f["seq"] for f in _on(watcher, channel)]
    assert missed[0]["seq"] == last_seq + 1
    assert _text(missed) == "while away"
    synced = await resumed.request("sessions.sync", sessionId=sid)
    assert synced["seq"] == missed[-1]["seq"]  # sync on any node agrees with the channel
    watcher.close()
    resumed.close()


@pytest.mark.gen_test(timeout=120)
async def test_a_killed_nodes_clients_resume_elsewhere_and_its_run_is_interrupted(
    cluster: Cluster,
):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    channel = f"session:{sid}"
    on_a, on_b = await a.connect(), await b.connect()
    await on_a.subscribe(channel)
    await on_b.subscribe(channel)
    sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": SLOW})
    for _ in range(5):
        await on_a.next_event("part.updated", timeout=20)
    a.kill()
    assert await on_a.closed() in (None, 1006)  # dropped: no close frame from a dead node
    seen = _on(on_a, channel)
    resumed = await b.connect()
    ack = await resumed.subscribe(channel, since={channel: seen[-1]["seq"]})
    assert ack["subscribed"][0]["recovered"] is True  # the history outlives the node
    ended = await on_b.next_event(
        "message.updated", timeout=20, message__runId=sent["runId"], message__status="interrupted"
    )
    assert ended["data"]["message"]["role"] == "assistant"
    await _idle(on_b, sent["runId"])
    await _idle(resumed, sent["runId"])
    assert seen + _on(resumed, channel) == _on(on_b, channel)  # nothing lost, nothing twice
    stored = b.http("GET", f"/api/sessions/{sid}?includeMessages=true")
    answer = stored["messages"][-1]
    assert (answer["status"], stored["run"]["status"]) == ("interrupted", "idle")
    text = "".join(p.get("text", "") for p in answer["parts"] if p["type"] == "text")
    assert _text(_on(on_b, channel)).startswith(text)  # an exact prefix of what streamed
    again = b.http("POST", f"/api/sessions/{sid}/messages", {"content": "still usable"})
    await _idle(on_b, again["runId"])
    for ws in (on_b, resumed):
        ws.close()


@pytest.mark.gen_test(timeout=90)
async def test_a_run_on_one_node_is_cancelled_from_another(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    watcher = await b.connect()
    await watcher.subscribe(f"session:{sid}")
    sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": SLOW})
    await watcher.next_event("part.updated", timeout=20)
    cancelled = b.http("POST", f"/api/sessions/{sid}/cancel")
    assert cancelled == {"cancelled": True, "runId": sent["runId"]}
    await _idle(watcher, sent["runId"])
    stored = b.http("GET", f"/api/sessions/{sid}?includeMessages=true")
    assert stored["messages"][-1]["status"] == "cancelled"
    watcher.close()


@pytest.mark.gen_test(timeout=90)
async def test_an_approval_answered_on_another_node_resumes_the_run(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    watcher = await b.connect()
    await watcher.subscribe(f"session:{sid}")
    command = '/tool write {"path": "hello.txt", "content": "hi"}'
    sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": command})
    required = await watcher.next_event("tool.approval_required", timeout=20)
    approval_id = required["data"]["approval"]["id"]
    answered = b.http("POST", f"/api/approvals/{approval_id}/approve")
    assert answered["status"] == "approved"
    late = http_status(a, "POST", f"/api/approvals/{approval_id}/reject")
    assert late == 409  # the first answer won, on whichever node
    await _idle(watcher, sent["runId"])
    result = await watcher.next_event("part.created", part__type="tool_result")
    assert result["data"]["part"]["isError"] is False
    watcher.close()


def http_status(node: Node, method: str, path: str) -> int:
    from tests.integration.client.helpers import http

    return http(method, node.base_url + path, node.token, {})[0]


@pytest.mark.gen_test(timeout=90)
async def test_two_nodes_racing_to_send_start_exactly_one_run(cluster: Cluster):
    a, b = cluster.start(2)
    project_id, _ = _setup(a)
    client = tornado.httpclient.AsyncHTTPClient()

    async def send(node: Node, sid: str) -> int:
        response = await client.fetch(
            f"{node.base_url}/api/sessions/{sid}/messages",
            method="POST",
            body='{"content": "' + SLOW + '"}',
            headers={"Authorization": f"Bearer {node.token}"},
            raise_error=False,
        )
        return response.code

    for _ in range(5):
        sid = a.http("POST", f"/api/projects/{project_id}/sessions", {})["id"]
        codes = await asyncio.gather(send(a, sid), send(b, sid))
        assert sorted(codes) == [202, 409], codes
        b.http("POST", f"/api/sessions/{sid}/cancel")


@pytest.mark.gen_test(timeout=90)
async def test_revocations_and_membership_changes_apply_on_every_node(cluster: Cluster):
    a, b = cluster.start(2)
    project_id, sid = _setup(a)
    bob_token = cluster.user("bob")
    a.http("POST", f"/api/projects/{project_id}/members", {"userName": "bob", "role": "member"})
    bob_id = a.http("GET", "/api/me", token=bob_token)["user"]["id"]
    bob_on_b = await b.connect(bob_token)
    await bob_on_b.subscribe(f"session:{sid}")
    assert (await bob_on_b.request("sessions.get", sessionId=sid))["id"] == sid  # role kept
    a.http("DELETE", f"/api/projects/{project_id}/members/{bob_id}")
    revoked = await bob_on_b.next_event("subscription.revoked", timeout=20)
    assert revoked["data"]["channel"] == f"session:{sid}"
    with pytest.raises(Exception, match="NOT_FOUND"):
        await bob_on_b.request("sessions.get", sessionId=sid)
    key = a.http("POST", "/api/apikeys", {"name": "k"}, token=bob_token)
    by_key = await b.connect(key["secret"])
    a.http("POST", f"/api/apikeys/{key['key']['id']}/revoke", token=bob_token)
    assert await by_key.closed(timeout=20) == 4001
    bob_on_b.close()


@pytest.mark.gen_test(timeout=90)
async def test_the_per_user_connection_limit_counts_every_node(tmp_path, database_url, redis_url):
    cluster = Cluster(
        tmp_path, database_url, redis_url, BOTICAL_WEBSOCKET_MAX_CONNECTIONS_PER_USER="2"
    )
    try:
        a, b = cluster.start(2)
        first, second = await a.connect(), await b.connect()  # one on each node
        for node in (a, b):  # each has one open here, and the other node's counts too
            with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
                await node.connect()
            assert refused.value.code == 429
        first.close()
        second.close()
    finally:
        cluster.stop()


@pytest.mark.gen_test(timeout=90)
async def test_a_read_kept_on_one_node_follows_changes_made_on_another(cluster: Cluster):
    a, b = cluster.start(2)
    project_id, sid = _setup(a)
    reader = await a.connect()  # not subscribed to the session: a hears of it for its cache
    first = await reader.request("sessions.get", sessionId=sid)
    assert await reader.request("sessions.get", sessionId=sid) == first  # kept on node a
    watcher = await a.connect()
    await watcher.subscribe(f"project:{project_id}")
    b.http("PATCH", f"/api/sessions/{sid}", {"title": "renamed on b"})
    # b published on the session's channel, then on the project's; a hears them in order
    await watcher.next_event("session.updated", timeout=20, session__title="renamed on b")
    assert (await reader.request("sessions.get", sessionId=sid))["title"] == "renamed on b"
    reader.close()
    watcher.close()


@pytest.mark.gen_test(timeout=90)
async def test_a_sync_on_another_node_mid_answer_misses_no_text(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    channel = f"session:{sid}"
    client = await b.connect()
    sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": SLOW})
    await client.subscribe(channel)
    await client.next_event("part.updated", timeout=20)  # streaming on node a now
    synced = await client.request("sessions.sync", sessionId=sid)
    answer = synced["messages"][-1]
    (part,) = [p for p in answer["parts"] if p["type"] == "text"]
    await _idle(client, sent["runId"])
    later = [f for f in _on(client, channel) if f["seq"] > synced["seq"]]
    text = part["text"] + "".join(
        f["data"]["delta"] for f in later if f["event"] == "part.updated" and "delta" in f["data"]
    )
    assert text == SLOW.removeprefix("/slow ")  # the state at seq, then what followed it
    client.close()


@pytest.mark.gen_test(timeout=90)
async def test_a_message_queued_on_one_node_runs_after_the_answer_on_another(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    watcher = await b.connect()
    await watcher.subscribe(f"session:{sid}")
    first = a.http("POST", f"/api/sessions/{sid}/messages", {"content": SLOW})
    await watcher.next_event("part.updated", timeout=20)
    body = {"content": "after that", "ifBusy": "queue"}
    queued = b.http("POST", f"/api/sessions/{sid}/messages", body)
    assert queued["message"]["status"] == "queued"
    await _idle(watcher, first["runId"], timeout=30)
    await _idle(watcher, queued["runId"], timeout=30)  # the node that ended the first ran it
    stored = b.http("GET", f"/api/sessions/{sid}?includeMessages=true")
    assert [m["status"] for m in stored["messages"]] == ["completed"] * 4
    watcher.close()


@pytest.mark.gen_test(timeout=90)
async def test_an_interrupt_sent_to_another_node_stops_the_answer_at_once(cluster: Cluster):
    a, b = cluster.start(2)
    _, sid = _setup(a)
    watcher = await b.connect()
    await watcher.subscribe(f"session:{sid}")
    first = a.http("POST", f"/api/sessions/{sid}/messages", {"content": SLOW})
    await watcher.next_event("part.updated", timeout=20)
    body = {"content": "stop, and answer this", "ifBusy": "interrupt"}
    second = b.http("POST", f"/api/sessions/{sid}/messages", body)
    stopped = await watcher.next_event(
        "message.updated", timeout=20, message__runId=first["runId"], message__status="cancelled"
    )
    assert stopped["data"]["message"]["finishReason"] == "interrupted"
    await _idle(watcher, second["runId"], timeout=30)
    watcher.close()
