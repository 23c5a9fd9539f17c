"""`botical chat` with a conversation's versions, queue and usage, as a real subprocess against
a real `botical serve`: `:commands` on a pipe, and on a pseudo-terminal lines typed during an
answer (queued), `:interrupt` and `:unqueue`. Every wait reads output up to a deadline."""

from __future__ import annotations

import re

from tests.integration.client.helpers import ServeProcess

SESSION_LINE = r"session (sess_\w+) in project (prj_\w+)"
SLOW = "/slow " + " ".join(f"w{n:02d}" for n in range(40))  # 40 deltas, 50 ms apart


def _path(server: ServeProcess, session_id: str) -> list[tuple[str, str, int]]:
    """The active path the server holds: (role, text, version index) per message."""
    session = server.http("GET", f"/api/sessions/{session_id}?includeMessages=true")
    return [
        (m["role"], "".join(p.get("text", "") for p in m["parts"]), m["versions"]["index"])
        for m in session["messages"]
    ]


def test_commands_edit_regenerate_switch_versions_and_show_usage(chat, server):
    process = chat()
    session_id = process.err.expect(SESSION_LINE).group(1)
    process.send("one two\n")
    process.out.expect(r"^one two\n\[usage\] 2 in · 2 out$")
    process.send(":edit 1 three\n")
    process.out.expect(r"^three\n")
    process.send(":history\n")
    process.out.expect(r"^#1 you <2/2>: three\n#2 echo: three  \[1 in · 1 out\]$")
    process.send(":prev 1\n")
    process.out.expect(r"^#1 you <1/2>: one two\n#2 echo: one two  \[2 in · 2 out\]$")
    assert _path(server, session_id) == [("user", "one two", 1), ("assistant", "one two", 1)]
    process.send(":retry 2\n")
    process.out.expect(r"^one two\n\[usage\] 2 in · 2 out$")
    process.send(":history\n")
    process.out.expect(r"^#2 echo <2/2>: one two")
    process.send(":next 2\n")
    process.out.expect(r"^\[versions\] #2 has no later version$")
    process.send(":prev 2\n:usage\n")
    process.out.expect(r"^#2 echo <1/2>: one two")
    process.out.expect(r"^\[usage\] this session: 5 in · 5 out$")
    process.out.expect(r"^\[usage\] project, echo: 3 answers, 5 in · 5 out$")
    process.send(":edit 2 not mine\n:nonsense stays a message\n")
    process.out.expect(r"^\[history\] #2 is not one of your messages$")
    process.out.expect(r"^:nonsense stays a message$")  # echo answered it
    process.end_input()
    assert process.wait() == 0, process.err.text


def test_fork_goes_on_in_the_new_session(chat, server):
    process = chat()
    session_id = process.err.expect(SESSION_LINE).group(1)
    process.send("first\nsecond\n")
    process.out.expect(r"^second\n")
    process.send(":fork 2\n")
    fork_id = process.err.expect(r"^\[forked: now in session (sess_\w+) \(from (sess_\w+)\)\]$")
    assert fork_id.group(2) == session_id
    process.send("in the fork\n")
    process.out.expect(r"^in the fork\n")
    process.end_input()
    assert process.wait() == 0, process.err.text
    assert [text for _, text, _ in _path(server, fork_id.group(1))] == [
        "first",
        "first",
        "in the fork",
        "in the fork",
    ]
    assert len(_path(server, session_id)) == 4  # the source goes on without them


def test_on_a_terminal_lines_typed_during_an_answer_wait_in_the_queue(chat, server):
    process = chat(tty=True)
    session_id = process.out.expect(SESSION_LINE).group(1)
    process.out.expect(r"^> ")
    process.send(f"{SLOW}\n")
    process.out.expect(r"^w00 w01 ")
    process.send("later\n")
    process.out.expect(r"^\[queued \(1 waiting\)\] later\r?$")
    process.send("never mind\n")
    process.out.expect(r"^\[queued \(2 waiting\)\] never mind\r?$")
    process.send(":unqueue\n")
    process.out.expect(r"^\[queue\] taken back\r?$")
    process.out.expect(r"^\[next\] later\r?$")  # when the slow answer ended
    process.out.expect(r"^later\r\n\[usage\] 1 in · 1 out\r\n> ")
    assert [text for role, text, _ in _path(server, session_id) if role == "user"] == [
        SLOW,
        "later",
    ]
    process.send("\x03")
    assert process.wait() == 0, process.out.text


def test_on_a_terminal_interrupt_stops_the_answer_and_sends_at_once(chat, server):
    process = chat(tty=True)
    session_id = process.out.expect(SESSION_LINE).group(1)
    process.out.expect(r"^> ")
    process.send(f"{SLOW}\n")
    started = process.out.expect(r"^w00 w01 ")
    process.send(":interrupt now please\n")
    process.out.expect(r"^\[interrupting\] now please\r?$")
    stopped = process.out.expect(r"^\[interrupted by the next message\]\r?$")
    assert "w39" not in process.out.text[started.start() : stopped.start()]
    process.out.expect(r"^\[next\] now please\r?$")
    process.out.expect(r"^now please\r\n\[usage\] 2 in · 2 out\r\n> ")
    process.send("\x03")
    assert process.wait() == 0, process.out.text
    answers = [
        m
        for m in server.http("GET", f"/api/sessions/{session_id}/messages")["items"]
        if m["role"] == "assistant"
    ]
    assert [(m["status"], m["finishReason"]) for m in answers] == [
        ("cancelled", "interrupted"),
        ("completed", "stop"),
    ]
    assert re.search(r"\[busy\]", process.out.text) is None
