"""`botical chat` as a real subprocess against a real `botical serve`: stdin on a pipe (and on
a pseudo-terminal for Ctrl-C). Every wait reads output up to a deadline; nothing sleeps."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.client.helpers import ChatProcess, ServeProcess, free_port

SESSION_LINE = r"session (sess_\w+) in project (prj_\w+)"
SLOW_WORDS = " ".join(f"w{n:02d}" for n in range(40))  # 40 deltas, 50 ms apart
TODOS = [
    {"content": "Read the issue", "status": "completed"},
    {"content": "Write the client", "activeForm": "Writing the client", "status": "in_progress"},
    {"content": "Ship it", "status": "pending"},
]


def _workspace_project(server: ServeProcess, tmp_path: Path) -> tuple[str, Path]:
    """A project (made by the admin over REST) whose directory is a fresh tmp dir."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    project = server.http("POST", "/api/projects", {"name": "ws", "path": str(workspace)})
    return project["id"], workspace


def _answers(server: ServeProcess, session_id: str) -> list[dict]:
    """The session's stored assistant messages, oldest first."""
    listed = server.http("GET", f"/api/sessions/{session_id}/messages?limit=200")["items"]
    return [m for m in listed if m["role"] == "assistant"]


def _quit_with_eof(chat) -> None:
    chat.end_input()
    assert chat.wait() == 0, chat.err.text


def test_chat_prints_the_streamed_answer_and_quits_on_eof(chat, server):
    process = chat()
    session_id, project_id = process.err.expect(SESSION_LINE).groups()
    process.send("hello from the terminal\n")
    process.out.expect(r"^hello from the terminal$")
    _quit_with_eof(process)
    # the first project, which `botical serve` made on its first start, with a workspace
    projects = server.http("GET", "/api/projects")["items"]
    assert [(p["id"], p["name"]) for p in projects] == [(project_id, "My project")]
    assert Path(projects[0]["path"]) == server.data_dir.resolve() / "workspaces" / project_id
    # and the session is titled after its first message
    assert server.http("GET", f"/api/sessions/{session_id}")["title"] == "hello from the terminal"


def test_a_refused_token_exits_1(server, tmp_path):
    process = ChatProcess(["--url", server.ws_url, "--token", "not-a-token"], tmp_path)
    try:
        assert process.wait() == 1
        assert "UNAUTHORIZED" in process.err.text
        assert process.out.text == ""
    finally:
        process.kill()


def test_without_a_project_chat_makes_one(chat, server):
    first = server.http("GET", "/api/projects")["items"][0]
    server.http("DELETE", f"/api/projects/{first['id']}")
    process = chat()
    project_id = process.err.expect(SESSION_LINE).group(2)
    _quit_with_eof(process)
    projects = server.http("GET", "/api/projects")["items"]
    assert [(p["id"], p["name"]) for p in projects] == [(project_id, "chat")]


def test_an_approved_tool_call_writes_the_file(chat, server, tmp_path):
    project_id, workspace = _workspace_project(server, tmp_path)
    process = chat("--project", project_id)
    process.err.expect(SESSION_LINE)
    process.send('/tool write {"path": "notes.txt", "content": "hi"}\n')
    process.out.expect(r'^\[tool\] write \{"path": "notes.txt", "content": "hi"\}$')
    process.out.expect(re.escape('Approve write {"path": "notes.txt", "content": "hi"}? [y/s/N] '))
    process.send("y\n")
    process.out.expect(r"^\[tool\] write -> Wrote 2 bytes to notes.txt$")
    process.out.expect(r"^Tool write returned: Wrote 2 bytes to notes.txt$")
    assert (workspace / "notes.txt").read_text() == "hi"
    _quit_with_eof(process)


def test_a_rejected_tool_call_writes_nothing(chat, server, tmp_path):
    project_id, workspace = _workspace_project(server, tmp_path)
    process = chat("--project", project_id)
    process.err.expect(SESSION_LINE)
    process.send('/tool write {"path": "notes.txt", "content": "hi"}\n')
    process.out.expect(re.escape("? [y/s/N] "))
    process.send("n\n")
    process.out.expect(r"^\[tool\] write: rejected$")
    process.out.expect(r"^Tool write failed: The user did not approve")
    assert not (workspace / "notes.txt").exists()
    _quit_with_eof(process)


def test_the_todo_list_is_printed_when_it_changes(chat):
    process = chat()
    process.err.expect(SESSION_LINE)
    process.send(f"/tool todowrite {json.dumps({'todos': TODOS})}\n")
    process.out.expect(
        r"^\[todo\]\n  \[x\] Read the issue\n  \[>\] Writing the client\n  \[ \] Ship it$"
    )
    process.out.expect(r"^Tool todowrite returned: Todo list saved: 3 items, 1 completed$")
    _quit_with_eof(process)


def test_chat_continues_the_given_session(chat, server):
    first = chat()
    session_id, _ = first.err.expect(SESSION_LINE).groups()
    first.send("remember me\n")
    first.out.expect(r"^remember me$")
    _quit_with_eof(first)
    second = chat("--session", session_id)
    assert second.err.expect(SESSION_LINE).group(1) == session_id
    second.send("me again\n")
    second.out.expect(r"^me again$")
    _quit_with_eof(second)


def test_chat_survives_a_server_restart_mid_conversation(chat, server):
    process = chat()
    session_id = process.err.expect(SESSION_LINE).group(1)
    process.send("before the restart\n")
    process.out.expect(r"^before the restart$")
    process.send(f"/slow {SLOW_WORDS}\n")
    process.out.expect(r"^w00 w01 w02 ")
    server.restart()  # mid-answer: a new process, a new epoch, the answer interrupted
    process.err.expect(r"^\[connection lost \(closed with 1001: Server shutting down\); reconn")
    process.err.expect(r"^\[reconnected\]$")
    process.out.expect(r"^\[interrupted\]$")
    process.send("after the restart\n")
    process.out.expect(r"^after the restart$")
    _quit_with_eof(process)
    assert process.out.text.count("after the restart") == 1
    listed = server.http("GET", f"/api/sessions/{session_id}/messages?limit=200")["items"]
    assert [(m["role"], m["status"]) for m in listed] == [
        ("user", "completed"),
        ("assistant", "completed"),
        ("user", "completed"),
        ("assistant", "interrupted"),
        ("user", "completed"),
        ("assistant", "completed"),
    ]


def test_ctrl_c_cancels_the_answer_and_a_second_ctrl_c_quits(chat, server):
    process = chat(tty=True)
    session_id = process.out.expect(SESSION_LINE).group(1)
    process.out.expect(r"^> ")  # on a terminal, chat prompts when it waits for a message
    process.send(f"/slow {SLOW_WORDS}\n")
    started = process.out.expect(r"^w00 w01 w02 ")  # the answer, not the echoed input
    process.send("\x03")
    process.out.expect(r"^\^C cancelling the answer")
    ended = process.out.expect(r"^\[cancelled\]\r?$")
    assert "w39" not in process.out.text[started.start() : ended.start()]
    process.out.expect(r"^> ")  # the prompt: chat is idle again
    process.send("/slow still here\n")  # chat is still running: the next line is answered
    # answered, what it cost (echo counts 2 words in, 2 deltas out), and the prompt: idle
    process.out.expect(r"^still here\r\n\[usage\] 2 in · 2 out\r\n> ")
    process.send("\x03")  # idle: Ctrl-C quits
    assert process.wait() == 0, process.out.text
    answers = _answers(server, session_id)
    assert [(m["status"], m["finishReason"]) for m in answers] == [
        ("cancelled", "cancelled"),
        ("completed", "stop"),
    ]


def test_ctrl_c_twice_during_an_answer_quits(chat):
    process = chat(tty=True)
    process.out.expect(SESSION_LINE)
    process.out.expect(r"^> ")
    process.send(f"/slow {SLOW_WORDS}\n")
    process.out.expect(r"^w00 w01 w02 ")
    process.send("\x03")
    process.out.expect(r"cancelling the answer")
    process.send("\x03")
    assert process.wait() == 0, process.out.text


def test_approving_for_the_session_asks_once(chat, server, tmp_path):
    project_id, workspace = _workspace_project(server, tmp_path)
    process = chat("--project", project_id)
    process.err.expect(SESSION_LINE)
    process.send('/tool write {"path": "a.txt", "content": "one"}\n')
    process.out.expect(re.escape("? [y/s/N] "))
    process.send("s\n")
    process.out.expect(r"^Tool write returned: Wrote 3 bytes to a.txt$")
    process.send('/tool write {"path": "b.txt", "content": "two"}\n')
    process.out.expect(r"^Tool write returned: Wrote 3 bytes to b.txt$")
    _quit_with_eof(process)
    assert process.out.text.count("[y/s/N]") == 1
    assert (workspace / "b.txt").read_text() == "two"


def test_the_url_serve_printed_is_enough(server, tmp_path):
    printed = f"{server.base_url}/?token={server.token}"
    process = ChatProcess(["--url", printed], tmp_path)
    try:
        process.err.expect(SESSION_LINE)
        process.send("hi\n")
        process.out.expect(r"^hi$")
        _quit_with_eof(process)
    finally:
        process.kill()


def test_host_and_port_with_a_token(server, tmp_path):
    process = ChatProcess(["--url", f"127.0.0.1:{server.port}", "--token", server.token], tmp_path)
    try:
        process.err.expect(SESSION_LINE)
        _quit_with_eof(process)
    finally:
        process.kill()


def test_a_bad_url_or_a_server_that_is_not_there_is_one_line(server, tmp_path):
    for url, code in [
        ("ftp://nowhere", 2),
        ("127.0.0.1:99999", 2),
        (f"127.0.0.1:{free_port()}", 1),
    ]:
        process = ChatProcess(["--url", url, "--token", server.token], tmp_path)
        try:
            assert process.wait() == code, process.err.text
            assert len(process.err.text.splitlines()) == 1, process.err.text
            assert process.err.text.startswith("botical chat: ")
            assert "Traceback" not in process.err.text
        finally:
            process.kill()


def test_a_refused_message_shows_the_field_that_is_wrong(chat):
    process = chat()
    process.err.expect(SESSION_LINE)
    process.send("x" * 200_001 + "\n")
    process.out.expect(
        r"^\[error\] VALIDATION_ERROR: Invalid parameters \(content: Length must be between 1 and 2"
    )
    process.send("still fine\n")
    process.out.expect(r"^still fine$")
    _quit_with_eof(process)
