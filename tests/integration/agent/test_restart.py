"""A run cut short by a server stop, or by a crash, is `interrupted` after the next start.

The crash and SIGTERM cases run a real `botical serve` subprocess on the test's database
(SQLite, and PostgreSQL when configured), stream an answer to a WebSocket client, stop the
process mid-answer, start a server again on the same data and compare what it stored with
what the client saw.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from botical.agent.providers.echo import split_deltas
from botical.testing import ApiClient, start_app
from botical.testing.wsclient import WsClient
from tests.integration.agent.helpers import parts, text_of
from tests.integration.client.helpers import ServeProcess, free_port

WORDS = " ".join(f"w{n}" for n in range(400))  # distinct words: a prefix shows where it cut
SLOW = "/slow " + WORDS
DELTAS_BEFORE_STOP = 30  # 1.5 s of streaming: a few batched writes have reached the database


@pytest.mark.gen_test(timeout=30)
async def test_run_stopped_by_shutdown_is_interrupted(
    botical_app, botical_settings, botical_plugins, chat, events
):
    run_id = await chat.started(SLOW)
    await events.wait("part.updated", part__type="text")
    await botical_app.stop()
    restarted = await start_app(botical_settings, botical_plugins)
    try:
        api = ApiClient(restarted.url, chat.person.token)
        messages = (await api.get(f"/api/sessions/{chat.sid}/messages")).body["items"]
    finally:
        await restarted.stop()
    (answer,) = [m for m in messages if m["runId"] == run_id and m["role"] == "assistant"]
    assert (answer["status"], answer["finishReason"]) == ("interrupted", "interrupted")


@pytest.fixture
def serve(botical_settings, tmp_path: Path) -> Iterator[ServeProcess]:
    """`botical serve` on the test's data directory and database, killed after the test."""
    env = {"BOTICAL_DATABASE_URL": botical_settings.database_url}
    process = ServeProcess(Path(botical_settings.data_dir), free_port(), tmp_path, env)
    try:
        yield process.start()
    finally:
        process.kill()


async def streaming(serve: ServeProcess, workspace: Path) -> tuple[WsClient, str, str, str]:
    """A client subscribed to a new session whose slow answer has streamed for a while:
    (client, session id, run id, the text of the deltas taken so far)."""
    ws = await WsClient.connect(serve.ws_url, serve.token)
    api = ApiClient(serve.base_url, serve.token)
    project = await api.post("/api/projects", {"name": "P", "path": str(workspace)})
    session_id = (await ws.request("sessions.create", projectId=project.body["id"]))["id"]
    await ws.subscribe(f"session:{session_id}")
    run_id = (await ws.request("messages.send", sessionId=session_id, content=SLOW))["runId"]
    taken = [
        await ws.next_frame(lambda f: "delta" in f.get("data", {}), timeout=10)
        for _ in range(DELTAS_BEFORE_STOP)
    ]
    return ws, session_id, run_id, "".join(f["data"]["delta"] for f in taken)


def streamed_text(ws: WsClient) -> str:
    """The text of the deltas the client received and has not taken yet."""
    return "".join(f["data"]["delta"] for f in ws.frames if "delta" in f.get("data", {}))


async def stored_answer(app, token: str, session_id: str, run_id: str) -> dict:
    api = ApiClient(app.url, token)
    items = (await api.get(f"/api/sessions/{session_id}/messages")).body["items"]
    (answer,) = [m for m in items if m["runId"] == run_id and m["role"] == "assistant"]
    return answer


async def answer_again(app, token: str, session_id: str) -> dict:
    """Send a message on the restarted server and wait for its whole answer."""
    ws = await WsClient.connect(f"ws://127.0.0.1:{app.port}/ws", token)
    try:
        await ws.subscribe(f"session:{session_id}")
        sent = await ws.request("messages.send", sessionId=session_id, content="after it")
        await ws.next_event("agent.status_changed", runId=sent["runId"], status="idle")
        return await stored_answer(app, token, session_id, sent["runId"])
    finally:
        ws.close()


def assert_intact(database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.gen_test(timeout=60)
async def test_run_killed_with_the_server_keeps_an_exact_prefix(serve, botical_settings, workspace):
    ws, session_id, run_id, _ = await streaming(serve, workspace)
    await asyncio.to_thread(serve.kill)  # SIGKILL: no chance to record anything
    ws.close()
    assert_intact(botical_settings.database_url)
    restarted = await start_app(botical_settings)
    try:
        answer = await stored_answer(restarted, serve.token, session_id, run_id)
        again = await answer_again(restarted, serve.token, session_id)
    finally:
        await restarted.stop()
    assert (answer["status"], answer["finishReason"]) == ("interrupted", "interrupted")
    assert {p["status"] for p in parts(answer, "text")} == {"interrupted"}
    stored = text_of(answer)
    deltas = split_deltas(WORDS)
    cut = next(n for n in range(len(deltas) + 1) if "".join(deltas[:n]) == stored)
    assert 0 < cut < len(deltas)  # some batches were written, and they end on a delta
    assert (again["status"], text_of(again)) == ("completed", "after it")


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_mid_answer_closes_1001_and_stores_what_was_streamed(
    serve, botical_settings, workspace
):
    ws, session_id, run_id, before = await streaming(serve, workspace)
    serve.proc.send_signal(signal.SIGTERM)
    assert await ws.closed(timeout=20) == 1001
    assert await asyncio.to_thread(serve.proc.wait, 20) == 0
    interrupted = [f for f in ws.frames if f.get("event") == "message.updated"]
    restarted = await start_app(botical_settings)
    try:
        answer = await stored_answer(restarted, serve.token, session_id, run_id)
        again = await answer_again(restarted, serve.token, session_id)
    finally:
        await restarted.stop()
    assert (answer["status"], answer["finishReason"]) == ("interrupted", "interrupted")
    assert [m["data"]["message"]["status"] for m in interrupted] == ["interrupted"]
    assert text_of(answer) == before + streamed_text(ws)
    assert {p["status"] for p in parts(answer, "text")} == {"interrupted"}
    assert (again["status"], text_of(again)) == ("completed", "after it")
