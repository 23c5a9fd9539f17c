"""The commands of `botical chat`: a line that starts with `:` and a known name. Messages are
named by their number in `:history` (the active path, first message 1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from botical.chat.render import explain, usage_text
from botical.chat.turn import State
from botical.client import ClientError

if TYPE_CHECKING:
    from botical.chat.loop import Chat

HELP = """\
:history            the conversation, numbered, with versions <i/n> and what answers cost
:edit N TEXT        send TEXT as a new version of your message #N, and answer it
:retry [N]          answer again: a new version of answer #N (default: the last question)
:prev N / :next N   show the previous / next version of message #N
:fork [N]           continue in a new session holding the conversation up to #N (default: all)
:usage              tokens and cost of this session and its project
:interrupt TEXT     during an answer: stop it (what it said stays) and send TEXT now
:unqueue            take back the last message waiting to be answered
During an answer, a line you type waits in the queue and is answered next; Ctrl-C stops the
answer (the queue goes on)."""
IDLE_ONLY = ("edit", "retry", "prev", "next", "fork")
BUSY_ONLY = ("interrupt",)


def parse(line: str) -> tuple[str, str] | None:
    """`(name, argument)` of a command line, or None for a message."""
    if not line.startswith(":"):
        return None
    name, _, rest = line[1:].partition(" ")
    return (name, rest.strip()) if name in Commands.NAMES else None


class Commands:
    """Runs the commands against a chat's session."""

    NAMES = (
        "help",
        "history",
        "edit",
        "retry",
        "prev",
        "next",
        "fork",
        "usage",
        "interrupt",
        "unqueue",
    )

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.printer = chat.printer

    async def run(self, name: str, argument: str) -> None:
        idle = self.chat.turn.state is State.IDLE
        if name in IDLE_ONLY and not idle:
            self.printer.line(f"[busy] :{name} waits for the answer to end (or Ctrl-C)")
            return
        if name in BUSY_ONLY and idle:
            self.printer.line("[idle] nothing to interrupt: type the message itself")
            return
        handler: Callable[[str], Awaitable[None]] = getattr(self, f"_{name}")
        try:
            await handler(argument)
        except ClientError as exc:
            self.printer.line(f"[error] {explain(exc)}")

    async def _help(self, argument: str) -> None:
        for line in HELP.splitlines():
            self.printer.line(line)

    async def _history(self, argument: str) -> None:
        conversation = self.chat.conversation
        self.printer.history(conversation.path, conversation.queue)

    async def _edit(self, argument: str) -> None:
        number, _, text = argument.partition(" ")
        message = self._numbered(number, "user")
        if message is not None and text.strip():
            await self.chat.start("messages.edit", messageId=message["id"], content=text.strip())
        elif message is not None:
            self.printer.line("[edit] give the new text after the number: :edit N TEXT")

    async def _retry(self, argument: str) -> None:
        if not argument:
            await self.chat.start("messages.retry")
        elif (message := self._numbered(argument)) is not None:
            await self.chat.start("messages.retry", messageId=message["id"])

    async def _prev(self, argument: str) -> None:
        await self._switch(argument, -1)

    async def _next(self, argument: str) -> None:
        await self._switch(argument, 1)

    async def _switch(self, argument: str, step: int) -> None:
        message = self._numbered(argument)
        if message is None:
            return
        other = self.chat.conversation.other_version(message["id"], step)
        if other is None:
            which = "earlier" if step < 0 else "later"
            self.printer.line(f"[versions] #{argument} has no {which} version")
            return
        change = await self.chat.request("messages.select", messageId=other)
        self.chat.conversation.apply_data("path.changed", change)  # its event may come later
        await self._history("")

    async def _fork(self, argument: str) -> None:
        path = self.chat.conversation.path
        message = self._numbered(argument) if argument else (path[-1] if path else None)
        if message is None:
            self.printer.line("[fork] nothing to fork yet" if not argument else "")
            return
        session = await self.chat.request("sessions.fork", messageId=message["id"])
        await self.chat.switch(session)

    async def _usage(self, argument: str) -> None:
        session = await self.chat.request("sessions.get")
        assert self.chat.client is not None
        project = await self.chat.client.request("projects.usage", projectId=session["projectId"])
        self.printer.line(f"[usage] this session: {usage_text(session['usage']) or 'nothing'}")
        for model in project["byModel"]:
            spent = usage_text(model)
            self.printer.line(
                f"[usage] project, {model['model']}: {model['answers']} answers, {spent}"
            )

    async def _interrupt(self, argument: str) -> None:
        if argument:
            await self.chat.send_busy(argument, "interrupt")
        else:
            self.printer.line("[interrupt] give the message to send: :interrupt TEXT")

    async def _unqueue(self, argument: str) -> None:
        waiting = self.chat.waiting
        if not waiting:
            self.printer.line("[queue] nothing of yours is waiting")
            return
        message_id, run_id = waiting[-1]
        taken = await self.chat.request("messages.cancel", messageId=message_id)
        self.chat.forget_waiting(message_id, run_id)
        self.printer.line(
            "[queue] taken back" if taken["cancelled"] else "[queue] already answered"
        )

    def _numbered(self, number: str, role: str | None = None) -> dict[str, Any] | None:
        """Message #number of the path (of `role`, when given); None, said, if there is none."""
        path = self.chat.conversation.path
        if not number.isdigit() or not 1 <= int(number) <= len(path):
            self.printer.line(f"[history] no message #{number}; :history numbers them")
            return None
        message = path[int(number) - 1]
        if role is not None and message["role"] != role:
            self.printer.line(f"[history] #{number} is not one of your messages")
            return None
        return message
