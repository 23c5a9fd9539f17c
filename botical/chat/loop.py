"""The conversation loop of `botical chat`: read a line when input is wanted (a message when
idle, or on a terminal also during an answer, when it waits in the queue; y/s/N when a tool
call asks; a `:command`), send it, and let the session's events move the `Turn` and keep the
`Conversation` (the active path and the queue) the commands refer to."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

from botical.chat.commands import Commands, parse
from botical.chat.render import Printer, explain, message_text
from botical.chat.turn import BUSY, WANTS_INPUT, State, Turn
from botical.client import (
    SYNCED,
    BoticalClient,
    ClientError,
    Conflict,
    ConnectionLost,
    ConnectionState,
    Conversation,
    Event,
    Subscription,
)

PROMPT = "> "  # on a terminal, when chat waits for a message
REJECTED = "Rejected in botical chat"


class Chat:
    """One conversation in one session: its Turn, its Printer, and the tasks around them."""

    def __init__(self, printer: Printer, interactive: bool) -> None:
        self.printer = printer
        self.interactive = interactive  # stdin is a terminal: show a prompt
        self.turn = Turn()
        self.conversation = Conversation()
        self.commands = Commands(self)
        self.waiting: list[tuple[str, str]] = []  # (message id, run id) this chat queued
        self.exit_code = 0
        self.client: BoticalClient | None = None
        self.session_id = ""
        self._events: Subscription | None = None
        self._synced_seq = 0  # events at or below it are in the conversation already
        self._away = False  # the connection dropped and is not back yet
        self._changed = asyncio.Event()  # set whenever the turn may have moved
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(
        self, client: BoticalClient, session_id: str, events: Subscription, synced: dict[str, Any]
    ) -> int:
        """Converse until Ctrl-C, end of input or a lost credential; return the exit code.
        `synced` is the session's `sessions.sync`, taken once subscribed."""
        self.client, self.session_id, self._events = client, session_id, events
        self._load(synced)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.interrupt)
        loop.add_signal_handler(signal.SIGTERM, self.quit)
        start_stdin_reader(loop, self._lines)
        self._spawn(self._render(events))
        try:
            while (asked := await self._prompt()) is not None:
                line = await self._next_line(asked.get("id"), self.turn.state)
                if line is None:
                    break
                if self.interactive:
                    self.printer.at_line_start = True  # the terminal echoed the newline
                await self._handle(asked, line)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
            for task in self._tasks:
                task.cancel()
        self.printer.end_line()
        return self.exit_code

    # -- input ----------------------------------------------------------------------------

    async def _prompt(self) -> dict[str, Any] | None:
        """Wait until input is wanted and ask for it: the approval asked about, `{}` for a
        message, or None when chat is done."""
        await self._until(lambda: self.turn.state in self._wants_input)
        if self.turn.state is State.DONE:
            return None
        if (approval := self.turn.asking) is not None:
            self.printer.question(approval)
            return approval
        if self.interactive and self.turn.state is State.IDLE:
            self.printer.end_line()
            self.printer.write(PROMPT)
        return {}

    @property
    def _wants_input(self) -> tuple[State, ...]:
        # On a terminal a line typed during an answer is queued; piped input waits for it.
        return (*WANTS_INPUT, State.STREAMING) if self.interactive else WANTS_INPUT

    async def _next_line(self, asked_id: str | None, state: State) -> str | None:
        """The next line; None at the end of input or when chat is done. A question that is
        answered elsewhere meanwhile, or a change of state, gives "" (the loop asks again)."""
        line = asyncio.ensure_future(self._lines.get())
        gone = asyncio.ensure_future(self._until(lambda: self._stale(asked_id, state)))
        await asyncio.wait({line, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if line.done():
            return line.result()
        line.cancel()
        return None if self.turn.state is State.DONE else ""

    def _stale(self, asked_id: str | None, state: State) -> bool:
        """Whether the question a line was waited for is gone: chat is done or in another
        state (an answer ended, an approval is to be asked), or the approval was answered
        elsewhere."""
        if self.turn.state is not state:
            return True
        asking = self.turn.asking
        return asked_id is not None and (asking is None or asking["id"] != asked_id)

    async def _handle(self, asked: dict[str, Any], line: str) -> None:
        if asked:
            if self.turn.asking is not None and self.turn.asking["id"] == asked["id"]:
                await self._answer(asked, line)
        elif (command := parse(line.strip())) is not None:
            await self.commands.run(*command)
        elif line.strip():
            if self.turn.send():
                await self._send(line)
            elif self.turn.state in BUSY:
                await self.send_busy(line, "queue")
            else:
                self.printer.line("[busy] an answer is running; send it again when it ends")

    async def request(self, method: str, **params: Any) -> Any:
        """A request about this chat's session (raises the client's errors)."""
        assert self.client is not None
        return await self.client.request(method, sessionId=self.session_id, **params)

    async def start(self, method: str, **params: Any) -> None:
        """Start a run other than by a message (an edit, a retry) and follow it."""
        if not self.turn.send():
            self.printer.line("[busy] an answer is running; wait for it to end")
            return
        try:
            started = await self.request(method, **params)
        except ClientError as exc:
            self.printer.line(f"[error] {explain(exc)}")
            self.turn.refused()
        else:
            if self.turn.sent(started["runId"]):
                self._spawn(self._cancel())
        self._changed.set()

    async def send_busy(self, content: str, if_busy: str) -> None:
        """Send a message while an answer runs: it waits in the queue (`queue`), or stops the
        answer and is answered next (`interrupt`)."""
        try:
            sent = await self.request(
                "messages.send", content=content, ifBusy=if_busy, idempotencyKey=uuid.uuid4().hex
            )
        except ClientError as exc:
            self.printer.line(f"[error] {explain(exc)}")
            return
        message, run_id = sent["message"], sent["runId"]
        if message["status"] != "queued" and self.turn.send():  # the answer had just ended
            self.turn.sent(run_id)
        else:
            self.waiting.append((message["id"], run_id))
            self.turn.queued(run_id, first=if_busy == "interrupt")
            count = len(self.conversation.queue) or len(self.waiting)
            verb = "interrupting" if if_busy == "interrupt" else f"queued ({count} waiting)"
            self.printer.line(f"[{verb}] {content.strip()}")
        self._changed.set()

    def forget_waiting(self, message_id: str, run_id: str) -> None:
        self.waiting = [w for w in self.waiting if w[0] != message_id]
        self.turn.unqueued(run_id)

    async def _send(self, content: str) -> None:
        sent = await self._send_once(content, uuid.uuid4().hex)
        if sent is None:
            self.turn.refused()
        elif self.turn.sent(sent["runId"]):  # Ctrl-C came while the message was on its way
            self._spawn(self._cancel())
        self._changed.set()

    async def _send_once(self, content: str, key: str) -> dict[str, Any] | None:
        assert self.client is not None
        while True:  # the idempotency key makes a resend after a lost connection safe
            try:
                return await self.client.request(
                    "messages.send", sessionId=self.session_id, content=content, idempotencyKey=key
                )
            except ConnectionLost:
                continue  # request() waits for the next connection
            except Conflict as exc:
                self.printer.line(f"[busy] {exc.message}")
            except ClientError as exc:
                self.printer.line(f"[error] {explain(exc)}")
            return None

    async def _answer(self, approval: dict[str, Any], line: str) -> None:
        """y approves once, s approves this tool for the rest of the session, else reject."""
        assert self.client is not None
        if not self.interactive:
            self.printer.write(line + "\n")  # so a transcript shows the answer
        self.turn.approval_gone(approval["id"])
        self._changed.set()
        answer, approval_id = line.strip().lower(), approval["id"]
        try:
            if answer in ("y", "yes", "s", "session"):
                scope = "session" if answer.startswith("s") else "once"
                await self.client.request("tools.approve", approvalId=approval_id, scope=scope)
            else:
                await self.client.request("tools.reject", approvalId=approval_id, reason=REJECTED)
        except ClientError as exc:
            self.printer.line(f"[error] {explain(exc)}")

    # -- signals and connection -----------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C: cancel the running answer; when there is none, or again, quit."""
        cancel_now = self.turn.interrupt()
        if self.turn.state is State.DONE:
            self.quit()
            return
        self.printer.line("^C cancelling the answer (Ctrl-C again quits)")
        if cancel_now:
            self._spawn(self._cancel())
        self._changed.set()

    async def _cancel(self) -> None:
        assert self.client is not None
        try:
            await self.client.request("messages.cancel", sessionId=self.session_id)
        except ClientError as exc:
            self.printer.line(f"[error] cancelling: {explain(exc)}")

    def quit(self) -> None:
        self.turn.quit()
        self._changed.set()

    def on_state(self, state: ConnectionState, detail: str) -> None:
        """Tell the user when the connection drops and comes back."""
        if state is ConnectionState.RECONNECTING and not self._away:
            self._away = True
            self.printer.notice(f"connection lost ({detail}); reconnecting...")
        elif state is ConnectionState.CONNECTED and self._away:
            self._away = False
            self.printer.notice("reconnected")
        elif state is ConnectionState.CLOSED and self.client and self.client.error:
            self.printer.notice(f"connection closed for good: {explain(self.client.error)}")
            self.exit_code = 1
            self.quit()

    # -- events ---------------------------------------------------------------------------

    async def _render(self, events: Subscription) -> None:
        try:
            async for event in events:
                self.show(event)
        except ClientError as exc:
            self.printer.notice(f"subscription lost: {explain(exc)}")
            self.exit_code = 1
        if events is self._events:  # not the session left for a fork
            self.quit()

    async def switch(self, session: dict[str, Any]) -> None:
        """Go on in another session (a fork of this one)."""
        assert self.client is not None
        left, self.session_id = self.session_id, session["id"]
        self.waiting, self.turn.waiting = [], []
        self._events = events = await self.client.subscribe(f"session:{session['id']}")
        await self.client.unsubscribe(f"session:{left}")
        self._load(await self.request("sessions.sync"))
        self._spawn(self._render(events))
        self.printer.notice(f"forked: now in session {session['id']} (from {left})")

    def _load(self, synced: dict[str, Any]) -> None:
        self.conversation.load(synced)
        self._synced_seq = synced["seq"]

    def show(self, event: Event) -> None:
        """Print one session event, keep the conversation, and move the turn on."""
        name, data, printer = event.event, event.data, self.printer
        if name == SYNCED:
            self._load(data)
        elif event.seq > self._synced_seq:
            self._follow(name, data)
        if name == "message.created":
            printer.message_created(data["message"])
        elif name == "message.updated":
            printer.message_updated(data["message"])
        elif name == "part.created":
            printer.part_created(data["part"])
        elif name == "part.updated":
            printer.part_updated(data["part"], data.get("delta"))
        elif name == "todo.updated":
            printer.todos(data["todos"])
        elif name == "tool.approval_required":
            self.turn.approval_required(data["approval"])
        elif name == "tool.approval_resolved":
            if self.turn.approval_gone(data["approval"]["id"]):
                printer.line(f"(no longer asking: {data['approval']['status']})")
        elif name == "agent.status_changed" and data["status"] in ("idle", "error"):
            self._ended(data["runId"])
        elif name == SYNCED:
            self._synced(data)
        self._changed.set()

    def _follow(self, name: str, data: dict[str, Any]) -> None:
        """Apply an event to the conversation; say which waiting message is answered now."""
        waiting = {message_id for message_id, _ in self.waiting}
        message = data.get("message") or {}
        started = message.get("id") in waiting and message.get("status") != "queued"
        if name == "message.updated" and started:
            asked = self.conversation.find(message["id"]) or {}
            self.printer.line(f"[next] {message_text(asked)}")
        if name == "message.deleted" and data["messageId"] in waiting:
            self.waiting = [w for w in self.waiting if w[0] != data["messageId"]]
        self.conversation.apply_data(name, data)

    def _synced(self, data: dict[str, Any]) -> None:
        """After a resync: show what was missed, and learn whether the answer is over."""
        self.printer.synced(data["messages"], self.turn.run_id)
        for approval in data["pendingApprovals"]:
            self.turn.approval_required(approval)
        status, run_id = data["status"], self.turn.run_id
        if run_id and (status["status"] != "running" or status["runId"] != run_id):
            self._ended(run_id)

    def _ended(self, run_id: str) -> None:
        if self.turn.ended(run_id):
            self.printer.end_line()

    # -- plumbing -------------------------------------------------------------------------

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            self._changed.clear()
            await self._changed.wait()

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
