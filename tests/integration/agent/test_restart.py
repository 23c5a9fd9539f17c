"""A run cut short by a server stop, or by a crash, is `interrupted` after the next start."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from botical.testing import ApiClient, start_app
from tests.integration.agent.helpers import parts

SLOW = "/slow " + "word " * 400
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)")
DEADLINE = 20.0
SERVE = (sys.executable, "-m", "botical", "serve", "--port", "0")


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
    assert answer["status"] == "interrupted"


async def admin_url(proc: subprocess.Popen) -> tuple[str, str]:
    """The base URL and token that `botical serve` prints on start."""
    while True:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, "botical serve exited before printing its URL"
        if match := URL_LINE.search(line):
            return match.group(1), match.group(2)


async def until_streaming(api: ApiClient, session_id: str) -> dict:
    """Poll until the answer has streamed some text (the server is another process)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        items = (await api.get(f"/api/sessions/{session_id}/messages")).body["items"]
        answers = [m for m in items if m["role"] == "assistant" and parts(m, "text")]
        if answers:
            return answers[0]
    raise AssertionError("the answer never started streaming")


@pytest.fixture
def killed_run(io_loop, botical_settings, tmp_path):
    """A `botical serve` process SIGKILLed mid-answer: (token, session id, answer id)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}
    env["BOTICAL_DATABASE_URL"] = botical_settings.database_url
    proc = subprocess.Popen(
        [*SERVE, "--data-dir", botical_settings.data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )

    async def start_answer():
        url, token = await asyncio.wait_for(admin_url(proc), DEADLINE)
        api = ApiClient(url, token)
        project = await api.post("/api/projects", {"name": "P", "path": str(workspace)})
        session = await api.post(f"/api/projects/{project.body['id']}/sessions", {})
        sent = await api.post(f"/api/sessions/{session.body['id']}/messages", {"content": SLOW})
        assert sent.status == 202, sent.body
        answer = await until_streaming(api, session.body["id"])
        return token, session.body["id"], answer["id"]

    try:
        result = io_loop.run_sync(start_answer, timeout=DEADLINE * 2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=DEADLINE)
        proc.stdout.close()
    return result


@pytest.mark.gen_test(timeout=30)
async def test_run_killed_with_the_server_is_interrupted(killed_run, botical_settings):
    token, session_id, answer_id = killed_run
    restarted = await start_app(botical_settings)
    try:
        api = ApiClient(restarted.url, token)
        messages = (await api.get(f"/api/sessions/{session_id}/messages")).body["items"]
    finally:
        await restarted.stop()
    (answer,) = [m for m in messages if m["id"] == answer_id]
    assert answer["status"] == "interrupted"
    assert {p["status"] for p in parts(answer, "text")} == {"interrupted"}
