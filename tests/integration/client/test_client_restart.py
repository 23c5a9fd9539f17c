"""botical.client across a real server restart: a `botical serve` subprocess is stopped with
SIGTERM and started again on the same port and data dir (a new process, a new epoch)."""

from __future__ import annotations

import asyncio

import pytest

from botical.client import SYNCED, BoticalClient, ConnectionState, Event, Subscription
from tests.integration.client.helpers import ServeProcess


async def _answer(events: Subscription, run_id: str) -> list[Event]:
    taken = []
    while True:
        event = await events.next(timeout=20)
        taken.append(event)
        if event.event == "agent.status_changed" and event.data == {
            "sessionId": event.data["sessionId"],
            "status": "idle",
            "runId": run_id,
        }:
            return taken


def _text(events: list[Event]) -> str:
    return "".join(e.data.get("delta", "") for e in events if e.event == "part.updated")


@pytest.mark.gen_test(timeout=90)
async def test_the_client_reconnects_resyncs_and_carries_on_after_a_restart(
    server: ServeProcess,
):
    states: list[tuple[ConnectionState, str]] = []
    client = BoticalClient(
        server.ws_url, server.token, on_state=lambda state, detail: states.append((state, detail))
    )
    await client.connect()
    try:
        project = await client.rest("POST", "/api/projects", {"name": "P"})
        session_id = (await client.request("sessions.create", projectId=project["id"]))["id"]
        events = await client.subscribe(f"session:{session_id}")
        first = await client.request("messages.send", sessionId=session_id, content="before")
        assert _text(await _answer(events, first["runId"])) == "before"
        old_epoch = client.epoch

        await asyncio.to_thread(server.restart)

        synced = await events.next(timeout=30)  # the first thing the caller sees afterwards
        assert synced.event == SYNCED
        assert client.epoch != old_epoch  # a new server process
        assert client.state is ConnectionState.CONNECTED
        assert [s for s, _ in states] == [
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
            ConnectionState.RECONNECTING,
            ConnectionState.CONNECTED,
        ]
        assert states[2][1] == "closed with 1001: Server shutting down"
        messages = synced.data["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [
            ("user", "completed"),
            ("assistant", "completed"),
        ]
        assert messages[1]["parts"][1]["text"] == "before"
        assert synced.data["status"] == {"status": "idle", "runId": None}

        second = await client.request("messages.send", sessionId=session_id, content="after it")
        taken = await _answer(events, second["runId"])
        assert all(e.seq > synced.seq for e in taken)
        assert [e.seq for e in taken] == list(range(taken[0].seq, taken[-1].seq + 1))
        assert _text(taken) == "after it"  # exactly once
        stored = await client.request("messages.list", sessionId=session_id)
        assert [m["role"] for m in stored["items"]] == ["user", "assistant"] * 2
    finally:
        await client.close()
