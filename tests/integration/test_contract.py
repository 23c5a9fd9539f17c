"""The contract `system.describe` publishes is the one the server keeps.

Every method it lists is driven over a real socket and its result validated against the
method's published result schema; every event frame the clients receive meanwhile (on the
session, project, user and connection channels) is validated against its event's published
data schema; and every method with a REST route answers the same over REST. A method or event
added without being covered here fails the test.
"""

from __future__ import annotations

from typing import Any

import botical_example
import pytest
from jsonschema import Draft202012Validator

from botical.testing.wsclient import WsClient
from tests.integration.ws_helpers import connect

# Events this test cannot produce without stopping the server (covered by the shutdown tests).
UNPRODUCED_EVENTS = {"connection.closing"}


@pytest.fixture
def botical_plugins():
    return (botical_example,)


@pytest.fixture
def botical_overrides():
    return {
        "plugins": {"disabled": ["example"]},  # the entry point would load it twice
        "websocket": {"rate_burst": 500},  # this test makes many more requests than a client
    }


class Contract:
    """Calls methods over a socket and checks each result against `system.describe`."""

    def __init__(self, described: dict[str, Any]) -> None:
        self.methods = {m["name"]: m for m in described["methods"]}
        self.events = {e["name"]: e for e in described["events"]}
        self.called: set[str] = set()
        self.results: list[tuple[str, dict[str, Any], Any]] = []

    def check(self, name: str, result: Any) -> Any:
        schema = self.methods[name]["result"]
        assert schema is not None, f"{name} publishes no result schema"
        _valid(schema, result, name)
        return result

    async def call(self, ws: WsClient, method: str, /, **params: Any) -> Any:
        result = self.check(method, await ws.request(method, **params))
        self.called.add(method)
        self.results.append((method, params, result))
        return result

    def check_events(self, *clients: WsClient) -> set[str]:
        seen = set()
        for ws in clients:
            for frame in ws.received:
                if frame.get("type") != "event":
                    continue
                entry = self.events.get(frame["event"])
                assert entry is not None, f"undescribed event {frame['event']}"
                assert entry["data"] is not None, f"event {frame['event']} has no schema"
                _valid(entry["data"], frame["data"], frame["event"])
                seen.add(frame["event"])
        return seen


def _valid(schema: dict[str, Any], value: Any, what: str) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
    assert not errors, f"{what}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )


async def _approval_id(ws: WsClient, session_id: str) -> str:
    frame = await ws.next_frame(
        lambda f: (
            f.get("event") == "tool.approval_required" and f["channel"] == f"session:{session_id}"
        )
    )
    return frame["data"]["approval"]["id"]


async def _finished(ws: WsClient, run_id: str) -> None:
    await ws.next_event("agent.status_changed", runId=run_id, status="idle")


@pytest.mark.gen_test(timeout=60)
async def test_every_method_and_event_keeps_its_published_schema(botical_app, make_user, tmp_path):
    alice = await make_user("alice", admin=True, exec=True)
    bob = await make_user("bob")
    ws = await connect(botical_app, alice.token)
    bob_ws = await connect(botical_app, bob.token)
    contract = Contract(await ws.request("system.describe"))
    contract.called.add("system.describe")
    c = contract.call

    await c(ws, "users.me")
    key = await c(ws, "apikeys.create", name="contract")
    await c(ws, "apikeys.list")
    await c(ws, "apikeys.revoke", keyId=key["key"]["id"])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await ws.subscribe(f"user:{alice.id}")
    project = await c(ws, "projects.create", name="Contract", path=str(workspace))
    pid = project["id"]
    await ws.subscribe(f"project:{pid}", f"example:{pid}")
    await bob_ws.subscribe(f"user:{bob.id}")
    await c(ws, "projects.list")
    await c(ws, "projects.get", projectId=pid)
    await c(ws, "projects.update", projectId=pid, description="checked")
    await c(ws, "members.add", projectId=pid, userName="bob", role="viewer")
    await bob_ws.subscribe(f"project:{pid}")
    await c(ws, "members.update", projectId=pid, userId=bob.id, role="member")
    await c(ws, "members.list", projectId=pid)

    session = await c(ws, "sessions.create", projectId=pid, title="s")
    sid = session["id"]
    await ws.subscribe(f"session:{sid}")
    await c(ws, "sessions.list", projectId=pid)
    await c(ws, "sessions.update", sessionId=sid, title="renamed")
    sent = await c(ws, "messages.send", sessionId=sid, content="hello contract")
    await _finished(ws, sent["runId"])

    asked = await c(
        ws, "messages.send", sessionId=sid, content='/tool write {"path": "a.txt", "content": "x"}'
    )
    approval_id = await _approval_id(ws, sid)
    await c(ws, "tools.pending", sessionId=sid)
    await c(ws, "tools.approve", approvalId=approval_id)
    await _finished(ws, asked["runId"])
    refused = await c(
        ws, "messages.send", sessionId=sid, content='/tool write {"path": "b.txt", "content": "y"}'
    )
    await c(ws, "tools.reject", approvalId=await _approval_id(ws, sid), reason="no")
    await _finished(ws, refused["runId"])
    retried = await c(ws, "messages.retry", sessionId=sid)  # asks again: the same tool call
    await c(ws, "tools.reject", approvalId=await _approval_id(ws, sid))
    await _finished(ws, retried["runId"])
    await c(ws, "messages.cancel", sessionId=sid)
    await _versions_queue_and_usage(contract, ws, sid, pid)

    await c(ws, "messages.list", sessionId=sid)
    await c(ws, "sessions.get", sessionId=sid, includeMessages=True)
    await c(ws, "sessions.get", sessionId=sid)
    await c(ws, "sessions.sync", sessionId=sid)
    await c(ws, "todos.update", sessionId=sid, todos=[{"content": "a", "status": "in_progress"}])
    await c(ws, "todos.get", sessionId=sid)

    await c(ws, "agents.list", projectId=pid)
    await c(ws, "agents.create", projectId=pid, name="helper", prompt="Help.", maxSteps=3)
    await c(ws, "agents.get", projectId=pid, name="helper")
    tool = await c(
        ws,
        "tools.create",
        projectId=pid,
        name="issue",
        kind="http",
        parameters={"type": "object", "properties": {"n": {"type": "string"}}},
        config={"method": "GET", "url": "https://tracker.example.com/{n}"},
    )
    await c(ws, "tools.list", projectId=pid, includeDisabled=True)
    await c(ws, "tools.get", toolId=tool["id"])
    await c(ws, "tools.update", toolId=tool["id"], enabled=False)
    await c(ws, "subscriptions.list")
    await c(ws, "example.echo", text="hi")
    await c(ws, "example.publish", projectId=pid, topic="t", message="m")

    # REST serves the same methods: every read answers there exactly as over the socket.
    await _same_over_rest(contract, ws, alice)

    await c(ws, "tools.delete", toolId=tool["id"])
    await c(ws, "agents.delete", projectId=pid, name="helper")
    bob_ws.send_raw({"type": "subscribe", "channels": ["session:sess_00000000000000000000000000"]})
    await bob_ws.next_event("subscription.rejected")
    await c(ws, "members.remove", projectId=pid, userId=bob.id)
    await bob_ws.next_event("subscription.revoked")
    await c(ws, "sessions.archive", sessionId=sid)
    await c(ws, "projects.delete", projectId=pid)
    await ws.next_event("project.deleted")

    leaving = await connect(botical_app, botical_app.tokens.issue(alice.id).token)
    await c(leaving, "tokens.revoke")
    assert await leaving.closed() == 4001

    assert set(contract.methods) - contract.called == set(), "methods this test never ran"
    seen = contract.check_events(ws, bob_ws) | {"connection.ready"}
    _valid(contract.events["connection.ready"]["data"], ws.ready, "connection.ready")
    assert set(contract.events) - seen - UNPRODUCED_EVENTS == set(), "events never seen"
    ws.close()
    bob_ws.close()


async def _versions_queue_and_usage(contract: Contract, ws: WsClient, sid: str, pid: str):
    c = contract.call
    slow = "/slow " + "word " * 100
    await c(ws, "messages.send", sessionId=sid, content=slow)
    queued = await c(ws, "messages.send", sessionId=sid, content="later", ifBusy="queue")
    await c(ws, "messages.cancel", sessionId=sid, messageId=queued["message"]["id"])
    interrupting = await c(ws, "messages.send", sessionId=sid, content=slow, ifBusy="interrupt")
    await ws.next_event("agent.status_changed", runId=interrupting["runId"], status="streaming")
    rolled = await c(ws, "messages.send", sessionId=sid, content="instead", ifBusy="rollback")
    await _finished(ws, rolled["runId"])
    shown = await ws.request("sessions.get", sessionId=sid, includeMessages=True)
    question = next(m for m in shown["messages"] if m["role"] == "user")
    edited = await c(ws, "messages.edit", sessionId=sid, messageId=question["id"], content="new")
    await _finished(ws, edited["runId"])
    await c(ws, "messages.select", sessionId=sid, messageId=question["id"])
    await c(ws, "sessions.fork", sessionId=sid, messageId=question["id"])
    await c(ws, "projects.usage", projectId=pid)


async def _same_over_rest(contract: Contract, ws: WsClient, person: Any) -> None:
    checked = set()
    for name, params, _ in list(contract.results):
        route = contract.methods[name]["rest"]
        if route is None or route["verb"] != "GET" or (name, str(params)) in checked:
            continue
        path = route["path"].format(**params)
        rest = {k: v for k, v in params.items() if "{" + k + "}" not in route["path"]}
        query = "&".join(f"{k}={_query_value(v)}" for k, v in rest.items())
        over_socket = await ws.request(name, **params)
        response = await person.api.get(path + (f"?{query}" if query else ""))
        assert response.status == route["status"], (name, response.body)
        assert response.body == over_socket, name
        checked.add((name, str(params)))
    assert {name for name, _ in checked} >= {
        m for m, d in contract.methods.items() if d["rest"] and d["rest"]["verb"] == "GET"
    }


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
