"""Reconnection: replay of missed events by seq when the buffer holds them, `sessions.sync`
when it does not, and state that outlives a connection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.ws_helpers import (
    ConnectionWatcher,
    answer_frames,
    connect,
    delta_text,
    new_project,
    new_session,
    run_ended,
    send,
    seqs_covered,
    stored_answer,
    take_until,
    text_of,
)

SLOW_WORDS = " ".join(f"word{n:02d}" for n in range(40))  # 40 deltas, 50 ms apart


@pytest.fixture
def watcher():
    return ConnectionWatcher()


@pytest.fixture
def botical_plugins(watcher):
    return (watcher,)


async def _setup(botical_app, make_user):
    """Alice, a session, and an observer that stays connected and subscribed to it."""
    alice = await make_user("alice")
    project_id = await new_project(alice)
    observer = await connect(botical_app, alice.token)
    session_id = await new_session(observer, project_id)
    channel = f"session:{session_id}"
    await observer.subscribe(channel)
    return alice, observer, session_id, channel


def _deltas_seen(count: int):
    """Predicate: true on the frame that completes `count` text deltas."""
    seen = [0]

    def match(frame: dict[str, Any]) -> bool:
        if frame.get("event") == "part.updated" and "delta" in frame["data"]:
            seen[0] += 1
        return seen[0] >= count

    return match


async def _drop_mid_answer(botical_app, alice, session_id, channel, watcher):
    """Connect, subscribe, start a slow answer, read a few deltas, then disconnect.

    Returns the run id, the seq subscribed at, and the frames read before disconnecting.
    """
    first = await connect(botical_app, alice.token)
    start = (await first.subscribe(channel))["subscribed"][0]["seq"]
    run_id = await send(first, session_id, f"/slow {SLOW_WORDS}")
    before = await take_until(first, _deltas_seen(5))
    first.close()
    await watcher.wait_closed(first.ready["connectionId"])
    return run_id, start, before


async def _missed(observer, after: int, count: int) -> None:
    """Wait until the channel has moved `count` events past `after` (seen by the observer)."""
    await observer.next_frame(lambda f: f.get("seq", 0) >= after + count)


def _apply(state: dict[str, Any], frame: dict[str, Any]) -> None:
    """Apply one session event to a client's copy of the messages (what a client does)."""
    data, event = frame["data"], frame["event"]
    if event in ("message.created", "message.updated"):
        message = state.setdefault(data["message"]["id"], {"parts": {}})
        message.update({k: v for k, v in data["message"].items() if k != "parts"})
    elif event in ("part.created", "part.updated"):
        part = data["part"]
        parts = state[part["messageId"]]["parts"]
        if "delta" in data:
            parts[part["id"]]["text"] += data["delta"]
        else:
            if part["type"] == "text" and part["id"] in parts:
                # the closing update carries the whole text: the deltas must have built it
                assert parts[part["id"]]["text"] == part["text"], "deltas lost or repeated"
            parts[part["id"]] = dict(part)


def _text(state: dict[str, Any], message_id: str) -> str:
    parts = sorted(state[message_id]["parts"].values(), key=lambda p: p["position"])
    return "".join(p.get("text", "") for p in parts if p["type"] == "text")


@pytest.mark.gen_test(timeout=30)
async def test_reconnect_mid_answer_replays_the_gap_exactly(botical_app, make_user, watcher):
    alice, observer, session_id, channel = await _setup(botical_app, make_user)
    run_id, start, before = await _drop_mid_answer(botical_app, alice, session_id, channel, watcher)
    last_seq = before[-1]["seq"]
    await _missed(observer, last_seq, 3)  # the answer went on while we were away

    second = await connect(botical_app, alice.token)
    assert second.ready["epoch"] == botical_app.broadcaster.epoch
    ack = await second.subscribe(channel, since={channel: last_seq})
    (subscribed,) = ack["subscribed"]
    assert subscribed["recovered"] is True
    assert subscribed["seq"] >= last_seq + 3
    after = await answer_frames(second, run_id, channel)
    replayed = [f for f in after if f["seq"] <= subscribed["seq"]]
    assert seqs_covered(replayed) == list(range(last_seq + 1, subscribed["seq"] + 1))

    frames = before + after
    assert seqs_covered(frames) == list(range(start + 1, start + 1 + len(seqs_covered(frames))))
    stored = await stored_answer(second, session_id, run_id)
    assert stored["status"] == "completed"
    assert delta_text(frames) == text_of(stored) == SLOW_WORDS
    for ws in (observer, second):
        ws.close()


@pytest.mark.parametrize("botical_overrides", [{"websocket": {"replay_buffer": 5}}])
@pytest.mark.gen_test(timeout=30)
async def test_reconnect_beyond_the_replay_buffer_recovers_by_sync(botical_app, make_user, watcher):
    alice, observer, session_id, channel = await _setup(botical_app, make_user)
    run_id, _, before = await _drop_mid_answer(botical_app, alice, session_id, channel, watcher)
    last_seq = before[-1]["seq"]
    await _missed(observer, last_seq, 10)  # twice what the buffer holds

    second = await connect(botical_app, alice.token)
    ack = await second.subscribe(channel, since={channel: last_seq})
    assert ack["subscribed"][0]["recovered"] is False
    synced = await second.request("sessions.sync", sessionId=session_id)
    assert set(synced) == {
        "session",
        "messages",
        "todos",
        "pendingApprovals",
        "status",
        "queue",
        "seq",
    }
    assert synced["session"]["id"] == session_id
    assert synced["pendingApprovals"] == [] and synced["todos"] == []
    assert synced["seq"] >= ack["subscribed"][0]["seq"]
    assert all("parts" in m for m in synced["messages"])
    if synced["status"]["status"] == "running":
        assert synced["status"]["runId"] == run_id

    state = {m["id"]: {**m, "parts": {p["id"]: p for p in m["parts"]}} for m in synced["messages"]}
    after = await answer_frames(second, run_id, channel)
    for frame in after:
        assert (
            frame.get("mergedFrom", frame["seq"]) > synced["seq"] or frame["seq"] <= synced["seq"]
        )
        if frame["seq"] > synced["seq"]:
            _apply(state, frame)
    stored = await stored_answer(second, session_id, run_id)
    assert _text(state, stored["id"]) == text_of(stored) == SLOW_WORDS
    assert state[stored["id"]]["status"] == "completed"
    for ws in (observer, second):
        ws.close()


@pytest.mark.gen_test
async def test_sync_after_the_answer_matches_the_stored_state(botical_app, make_user):
    _, observer, session_id, channel = await _setup(botical_app, make_user)
    run_id = await send(observer, session_id, "short and done")
    frames = await answer_frames(observer, run_id, channel)
    synced = await observer.request("sessions.sync", sessionId=session_id)
    assert synced["seq"] == frames[-1]["seq"]
    assert synced["status"] == {"status": "idle", "runId": None}
    listed = await observer.request("messages.list", sessionId=session_id)
    assert synced["messages"] == listed["items"]
    assert [m["role"] for m in synced["messages"]] == ["user", "assistant"]
    assert text_of(synced["messages"][1]) == "short and done"
    observer.close()


@pytest.mark.gen_test
async def test_since_beyond_the_current_seq_is_not_recovered(botical_app, make_user):
    alice, observer, session_id, channel = await _setup(botical_app, make_user)
    run_id = await send(observer, session_id, "a b c")
    current = (await answer_frames(observer, run_id, channel))[-1]["seq"]

    ws = await connect(botical_app, alice.token)
    ahead = await ws.subscribe(channel, since={channel: current + 100})  # as after a restart
    assert ahead["subscribed"][0]["recovered"] is False
    level = await ws.call(
        {
            "type": "subscribe",
            "channels": [channel],
            "since": {channel: current},
            "epoch": ws.ready["epoch"],
        }
    )
    assert level["result"]["subscribed"][0] == {
        "channel": channel,
        "seq": current,
        "recovered": True,
    }
    other_epoch = await ws.call(
        {
            "type": "subscribe",
            "channels": [channel],
            "since": {channel: current - 3},
            "epoch": "0123456789abcdef",
        }
    )
    assert other_epoch["result"]["subscribed"][0]["recovered"] is False
    assert not [f for f in ws.frames if f["type"] == "event"]  # nothing was replayed
    for client in (observer, ws):
        client.close()


@pytest.mark.gen_test
async def test_pending_approval_survives_a_reconnect(botical_app, make_user, watcher):
    alice, observer, session_id, channel = await _setup(botical_app, make_user)
    first = await connect(botical_app, alice.token)
    await first.subscribe(f"user:{alice.id}")
    run_id = await send(first, session_id, '/tool write {"path": "a.txt", "content": "x"}')
    approval = (await first.next_event("tool.approval_required"))["data"]["approval"]
    first.close()
    await watcher.wait_closed(first.ready["connectionId"])

    second = await connect(botical_app, alice.token)
    pending = await second.request("tools.pending", sessionId=session_id)
    assert [(a["id"], a["status"]) for a in pending["items"]] == [(approval["id"], "pending")]
    synced = await second.request("sessions.sync", sessionId=session_id)
    assert [a["id"] for a in synced["pendingApprovals"]] == [approval["id"]]
    assert synced["status"] == {"status": "running", "runId": run_id}

    answered = await second.request("tools.reject", approvalId=approval["id"], reason="later")
    assert answered["status"] == "rejected"
    await take_until(observer, run_ended(run_id, channel))
    assert (await second.request("tools.pending", sessionId=session_id))["items"] == []
    for ws in (observer, second):
        ws.close()
