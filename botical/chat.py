"""`botical chat`: a plain-text terminal client built on `botical.client` (docs/client.md).

Each line read from stdin is sent to the session; the answer is printed as it streams, with
tool calls, approval prompts and the todo list. Ctrl-C during an answer cancels it; Ctrl-C
again (or when idle), or end of input, quits with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import uuid
from typing import Any, TextIO

from botical.client import (
    BoticalClient,
    ClientError,
    Conflict,
    ConnectionLost,
    ConnectionState,
    Event,
    Subscription,
)

SUMMARY_LIMIT = 200
TODO_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
PROMPT = "> "  # on a terminal, when chat waits for a message
QUIET_TOOL_STATUSES = ("pending", "waiting_approval")  # the call line and the prompt say it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `botical chat`."""
    parser.add_argument("--url", default="ws://127.0.0.1:4096/ws", help="the server's /ws URL")
    parser.add_argument("--token", help="access token or API key (or BOTICAL_TOKEN)")
    parser.add_argument("--project", help="project id (default: your first, or a new one)")
    parser.add_argument("--session", help="session id to continue (default: a new session)")


def main(args: argparse.Namespace) -> int:
    """Run `botical chat`; return the exit code."""
    token = args.token or os.environ.get("BOTICAL_TOKEN")
    if not token:
        print("botical chat: give --token (or set BOTICAL_TOKEN)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_chat(args.url, token, args.project, args.session))
    except KeyboardInterrupt:  # Ctrl-C before the conversation started
        return 130


async def _chat(url: str, token: str, project_id: str | None, session_id: str | None) -> int:
    chat = Chat(sys.stdout, sys.stderr, sys.stdin.isatty())
    client = BoticalClient(url, token, on_state=chat.on_state)
    try:
        await client.connect()
        session = await open_session(client, project_id, session_id)
        events = await client.subscribe(f"session:{session['id']}")
    except ClientError as exc:
        print(f"botical chat: {exc}", file=sys.stderr)
        await client.close()
        return 1
    chat.notice(
        f"session {session['id']} in project {session['projectId']}; type a message "
        "(Ctrl-C cancels an answer, Ctrl-C again or Ctrl-D quits)"
    )
    try:
        return await chat.run(client, session["id"], events)
    finally:
        await client.close()


async def open_session(
    client: BoticalClient, project_id: str | None, session_id: str | None
) -> dict[str, Any]:
    """The session to talk in: the one given, else a new one in the given or first project
    (projects are REST-only; a project named "chat" is created when the user has none)."""
    if session_id:
        return await client.request("sessions.get", sessionId=session_id)
    if not project_id:
        listed = await client.rest("GET", "/api/projects")
        if listed["items"]:
            project_id = listed["items"][0]["id"]
        else:
            project_id = (await client.rest("POST", "/api/projects", {"name": "chat"}))["id"]
    return await client.request("sessions.create", projectId=project_id, title="chat")


class Chat:
    """One conversation: reads lines, sends them, and renders the session's events."""

    def __init__(self, out: TextIO, err: TextIO, interactive: bool) -> None:
        self.out, self.err = out, err
        self.interactive = interactive  # stdin is a terminal: show a prompt
        self.exit_code = 0
        self.run_id: str | None = None  # the answer being waited for
        self.ended_runs: set[str] = set()
        self.cancelling = False
        self.sending = False
        self.approvals: list[dict[str, Any]] = []  # pending, to ask in order
        self.asking: dict[str, Any] | None = None
        self.printed: dict[str, str] = {}  # text part id -> text shown so far
        self.assistant_messages: set[str] = set()
        self.reported: set[str] = set()  # assistant messages whose ending was printed
        self._at_line_start = True
        self._away = False
        self._quit = asyncio.Event()
        self._changed = asyncio.Event()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.client: BoticalClient | None = None
        self.session_id = ""

    # -- the loop --------------------------------------------------------------------------

    async def run(self, client: BoticalClient, session_id: str, events: Subscription) -> int:
        """Converse until Ctrl-C, end of input or a lost credential; return the exit code."""
        self.client, self.session_id = client, session_id
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.interrupt)
        loop.add_signal_handler(signal.SIGTERM, self.quit)
        start_stdin_reader(loop, self._lines)
        self._spawn(self._render(events))
        try:
            while await self._wait_for_turn():
                if self.interactive and self.asking is None:
                    self._end_line()
                    self.write(PROMPT)
                line = await self._next_line()
                if line is None:
                    break
                if self.interactive:
                    self._at_line_start = True  # the terminal echoed the newline
                await self._handle(line)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
            for task in self._tasks:
                task.cancel()
        self._end_line()
        return self.exit_code

    async def _wait_for_turn(self) -> bool:
        """Wait until input is wanted (no answer running, or an approval to ask)."""
        while not self._quit.is_set():
            if self.approvals and self.asking is None:
                self._ask(self.approvals[0])
            if self.asking is not None or self.run_id is None:
                return True
            self._changed.clear()
            await self._changed.wait()
        return False

    async def _next_line(self) -> str | None:
        line = asyncio.ensure_future(self._lines.get())
        quit_ = asyncio.ensure_future(self._quit.wait())
        await asyncio.wait({line, quit_}, return_when=asyncio.FIRST_COMPLETED)
        quit_.cancel()
        if not line.done():
            line.cancel()
            return None
        return line.result()

    async def _handle(self, line: str) -> None:
        if self.asking is not None:
            await self._answer(self.asking, line)
        elif line.strip():
            await self._send(line)

    async def _send(self, content: str) -> None:
        assert self.client is not None
        key = uuid.uuid4().hex  # a resend after a lost connection cannot run twice
        self.sending = True
        try:
            sent = await self._send_once(content, key)
        finally:
            self.sending = False
        if sent is None:
            self.cancelling = False
            return
        self.run_id = sent["runId"]
        if self.run_id in self.ended_runs:
            self._run_over()
        elif self.cancelling:  # Ctrl-C came while the message was on its way
            self._spawn(self._cancel())

    async def _send_once(self, content: str, key: str) -> dict[str, Any] | None:
        assert self.client is not None
        while True:
            try:
                return await self.client.request(
                    "messages.send", sessionId=self.session_id, content=content, idempotencyKey=key
                )
            except ConnectionLost:
                continue  # request() waits for the next connection
            except Conflict as exc:
                self.line(f"[busy] {exc.message}")
            except ClientError as exc:
                self.line(f"[error] {exc}")
            return None

    def _ask(self, approval: dict[str, Any]) -> None:
        self.asking = approval
        args = _short(json.dumps(approval["arguments"], ensure_ascii=False))
        self._end_line()
        self.write(f"Approve {approval['tool']} {args}? [y/N] ")

    async def _answer(self, approval: dict[str, Any], line: str) -> None:
        assert self.client is not None
        if not self.interactive:
            self.write(line + "\n")  # so a transcript shows the answer
        self.asking = None
        self.approvals = [a for a in self.approvals if a["id"] != approval["id"]]
        try:
            if line.strip().lower() in ("y", "yes"):
                await self.client.request("tools.approve", approvalId=approval["id"])
            else:
                reason = "Rejected in botical chat"
                await self.client.request("tools.reject", approvalId=approval["id"], reason=reason)
        except ClientError as exc:
            self.line(f"[error] {exc}")

    # -- signals and connection ------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C: cancel the running answer; when there is none, or again, quit."""
        if (self.run_id is None and not self.sending) or self.cancelling:
            self.quit()
            return
        self.cancelling = True
        self.line("^C cancelling the answer (Ctrl-C again quits)")
        if self.run_id is not None:
            self._spawn(self._cancel())

    async def _cancel(self) -> None:
        assert self.client is not None
        try:
            await self.client.request("messages.cancel", sessionId=self.session_id)
        except ClientError as exc:
            self.line(f"[error] cancelling: {exc}")

    def quit(self) -> None:
        self._quit.set()
        self._changed.set()

    def on_state(self, state: ConnectionState, detail: str) -> None:
        """Tell the user when the connection drops and comes back."""
        if state is ConnectionState.RECONNECTING and not self._away:
            self._away = True
            self.notice(f"connection lost ({detail}); reconnecting...")
        elif state is ConnectionState.CONNECTED and self._away:
            self._away = False
            self.notice("reconnected")
        elif state is ConnectionState.CLOSED and self.client and self.client.error:
            self.notice(f"connection closed for good: {self.client.error}")
            self.exit_code = 1
            self.quit()

    # -- rendering -------------------------------------------------------------------------

    async def _render(self, events: Subscription) -> None:
        try:
            async for event in events:
                self.show(event)
        except ClientError as exc:
            self.notice(f"subscription lost: {exc}")
            self.exit_code = 1
        self.quit()

    def show(self, event: Event) -> None:
        """Print one session event."""
        handler = getattr(self, "_on_" + event.event.replace(".", "_"), None)
        if handler is not None:
            handler(event.data)

    def _on_message_created(self, data: dict[str, Any]) -> None:
        if data["message"]["role"] == "assistant":
            self.assistant_messages.add(data["message"]["id"])

    def _on_message_updated(self, data: dict[str, Any]) -> None:
        message = data["message"]
        if message["role"] != "assistant" or message["status"] in ("streaming", "completed"):
            return
        if message["id"] in self.reported:  # already told (by an event or by a resync)
            return
        self.reported.add(message["id"])
        if message["status"] == "error" and message.get("error"):
            self.line(f"[error] {message['error']['code']}: {message['error']['message']}")
        elif message["status"] in ("cancelled", "interrupted"):
            self.line(f"[{message['status']}]")

    def _on_part_created(self, data: dict[str, Any]) -> None:
        part = data["part"]
        if part["type"] == "text" and part["messageId"] in self.assistant_messages:
            self._show_text(part)
        elif part["type"] == "tool_call":
            args = _short(json.dumps(part["arguments"], ensure_ascii=False))
            self.line(f"[tool] {part['tool']} {args}")
        elif part["type"] == "tool_result":
            verb = "failed:" if part["isError"] else "->"
            self.line(f"[tool] {part['tool']} {verb} {_summary(part['output'])}")

    def _on_part_updated(self, data: dict[str, Any]) -> None:
        part = data["part"]
        if "delta" in data:
            if part["type"] == "text":
                self.printed[part["id"]] = self.printed.get(part["id"], "") + data["delta"]
                self.write(data["delta"])
        elif part["type"] == "text" and part["messageId"] in self.assistant_messages:
            self._show_text(part)
            if part["status"] != "streaming":
                self._end_line()
        elif part["type"] == "tool_call" and part["status"] not in QUIET_TOOL_STATUSES:
            self.line(f"[tool] {part['tool']}: {part['status']}")

    def _show_text(self, part: dict[str, Any]) -> None:
        """Print what of the part's text has not been shown yet; reprint it whole if what was
        shown diverged (events were missed and the deltas since do not line up)."""
        text, shown = part.get("text", ""), self.printed.get(part["id"], "")
        if not shown:
            self._end_line()
        if text.startswith(shown):
            self.write(text[len(shown) :])
        elif shown.startswith(text):
            return  # a resync's stored text lags behind the deltas (it is saved in batches)
        else:
            self.write("\n" + text)
        self.printed[part["id"]] = text

    def _on_tool_approval_required(self, data: dict[str, Any]) -> None:
        approval = data["approval"]
        if approval["status"] == "pending" and all(
            a["id"] != approval["id"] for a in self.approvals
        ):
            self.approvals.append(approval)
            self._changed.set()

    def _on_tool_approval_resolved(self, data: dict[str, Any]) -> None:
        approval = data["approval"]
        self.approvals = [a for a in self.approvals if a["id"] != approval["id"]]
        if self.asking is not None and self.asking["id"] == approval["id"]:
            self.asking = None
            self.line(f"(no longer asking: {approval['status']})")
        self._changed.set()

    def _on_agent_status_changed(self, data: dict[str, Any]) -> None:
        if data["status"] in ("idle", "error"):
            self.ended_runs.add(data["runId"])
            if data["runId"] == self.run_id:
                self._run_over()

    def _on_todo_updated(self, data: dict[str, Any]) -> None:
        self.line("[todo]")
        for todo in data["todos"]:
            label = todo["activeForm"] if todo["status"] == "in_progress" else ""
            self.line(f"  {TODO_MARKS.get(todo['status'], '[?]')} {label or todo['content']}")

    def _on_session_synced(self, data: dict[str, Any]) -> None:
        """After a resync: show what was missed, and learn whether the answer is over."""
        for message in data["messages"]:
            if message["role"] != "assistant":
                continue
            self.assistant_messages.add(message["id"])
            if message["runId"] == self.run_id:
                for part in message["parts"]:
                    if part["type"] == "text" and part["text"]:
                        self._show_text(part)
                self._on_message_updated({"message": message})
        for approval in data["pendingApprovals"]:
            self._on_tool_approval_required({"approval": approval})
        status = data["status"]
        if self.run_id and (status["status"] != "running" or status["runId"] != self.run_id):
            self._run_over()

    def _run_over(self) -> None:
        self._end_line()
        self.run_id, self.cancelling = None, False
        self.asking = None
        self.approvals = []
        self._changed.set()

    # -- output ----------------------------------------------------------------------------

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self._at_line_start = text.endswith("\n")

    def line(self, text: str) -> None:
        self._end_line()
        self.write(text + "\n")

    def _end_line(self) -> None:
        if not self._at_line_start:
            self.write("\n")

    def notice(self, text: str) -> None:
        """A message about the chat itself, on stderr."""
        self._end_line()
        self.err.write(f"[{text}]\n")
        self.err.flush()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def start_stdin_reader(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Read stdin on a daemon thread (any kind of stdin: tty, pipe or file) into `lines`;
    None marks the end. Raw reads keep the thread off the buffered stdin's lock."""

    def put(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, item)
        except RuntimeError:  # the loop is closed: chat is over
            return False
        return True

    def read() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(sys.stdin.fileno(), 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                if not put(raw.decode(errors="replace").rstrip("\r")):
                    return
        if pending:
            put(pending.decode(errors="replace"))
        put(None)

    threading.Thread(target=read, name="botical-chat-stdin", daemon=True).start()


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 3] + "..."


def _summary(output: str) -> str:
    lines = output.strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return _short(lines[0]) + more
