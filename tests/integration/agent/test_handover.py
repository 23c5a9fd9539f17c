"""Who runs a waiting message: the node that ends the current run, the node that reaps a dead
node's run, or the next start after a stop."""

from __future__ import annotations

from typing import Any

import pytest
import tornado.netutil

from botical.app import Botical
from botical.db import now_ms
from botical.db.models import Message, Run, Session
from botical.ids import new_id
from botical.services.messages import insert_user_message
from botical.testing import ApiClient
from botical.testing.harness import EventLog
from tests.integration.agent.helpers import text_of

SLOW = "/slow " + "word " * 400


@pytest.fixture
def botical_overrides() -> dict[str, Any]:
    return {"agent": {"run_lease": 1.0}}  # the reaper looks every third of a second


def _dead_node_answering(session_id: str, project_id: str, user_id: str) -> dict[str, str]:
    """What a node that died mid-answer leaves: its run row with a lease run out, a streaming
    answer, and a message queued behind it (on the executor)."""
    question, _ = insert_user_message(
        session_id, user_id, "before the crash", "run_dead", "default", "echo", None
    )
    Run.create(
        id="run_dead",
        session=session_id,
        project_id=project_id,
        node="node_gone",
        lease_until=now_ms() - 10_000,
    )
    answer = Message.create(
        id=new_id("msg"),
        session=session_id,
        role="assistant",
        parent_id=question.id,
        run_id="run_dead",
        status="streaming",
        agent="default",
        model="echo",
    )
    Session.update(head_id=answer.id).where(Session.id == session_id).execute()
    waiting, _ = insert_user_message(
        session_id, user_id, "after", new_id("run"), "default", "echo", None, None, "queue"
    )
    return {"answer": answer.id, "waiting": waiting.id, "run": str(waiting.run_id)}


@pytest.mark.gen_test(timeout=30)
async def test_the_reaper_of_a_dead_run_starts_the_message_waiting_behind_it(
    botical_app, chat, events
):
    made = await botical_app.db.atomic(
        _dead_node_answering, chat.sid, chat.project["id"], chat.person.id
    )
    await events.wait("agent.status_changed", timeout=20, runId=made["run"], status="idle")
    messages = await chat.messages()
    by_id = {m["id"]: m for m in messages}
    assert by_id[made["answer"]]["status"] == "interrupted"
    started = by_id[made["waiting"]]
    assert (started["status"], started["parentId"]) == ("completed", made["answer"])
    answer = next(m for m in messages if m["runId"] == made["run"] and m["role"] == "assistant")
    assert text_of(answer) == "after"
    interrupted = events.find("message.updated", message__id=made["answer"])
    begun = events.find("message.updated", message__id=made["waiting"])
    assert events.events.index(interrupted[0]) < events.events.index(begun[0])


@pytest.mark.gen_test(timeout=30)
async def test_a_queue_left_by_a_stop_runs_at_the_next_start(
    botical_app, botical_settings, botical_plugins, chat, events
):
    running = await chat.started(SLOW)
    waiting = await chat.send("after the restart", ifBusy="queue")
    assert waiting.body["message"]["status"] == "queued"
    await events.wait("part.updated", part__type="text")
    await botical_app.stop()
    restarted = Botical(botical_settings, botical_plugins)
    await restarted.open()
    log = EventLog(restarted.bus)  # before it starts: the queue may run at once
    try:
        await restarted.start(tornado.netutil.bind_sockets(0, "127.0.0.1"))
        await log.wait(
            "agent.status_changed", timeout=20, runId=waiting.body["runId"], status="idle"
        )
        api = ApiClient(restarted.url, chat.person.token)
        items = (await api.get(f"/api/sessions/{chat.sid}/messages")).body["items"]
    finally:
        log.close()
        await restarted.stop()
    statuses = {m["runId"]: m["status"] for m in items if m["role"] == "assistant"}
    assert statuses == {running: "interrupted", waiting.body["runId"]: "completed"}
