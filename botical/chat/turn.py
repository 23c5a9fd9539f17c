"""Where a `botical chat` conversation stands: a small state machine.

    IDLE --send--> SENDING --sent--> STREAMING --ended--> IDLE
                      |  (refused, or ended first: IDLE)
                      |                 |   ^
                      |          approval   answered (when no approval is left to ask)
                      |                 v   |
                      |           AWAITING_APPROVAL --ended--> IDLE
                      |
    SENDING, STREAMING, AWAITING_APPROVAL --interrupt--> CANCELLING --ended/refused--> IDLE
    IDLE, CANCELLING --interrupt--> DONE;  any state --quit--> DONE

On a terminal, lines typed while an answer runs are sent to wait in the session's queue
(or to interrupt it); their runs are `waiting`, and when the run being followed ends while
one of them waits, the turn follows that one instead of going idle (`next`):

    STREAMING, AWAITING_APPROVAL, CANCELLING --next--> STREAMING

Every change of state goes through `Turn._fire` and the TRANSITIONS table; a trigger that a
state does not list changes nothing (a late event about a run that is already over, say).
"""

from __future__ import annotations

import enum
from typing import Any


class State(enum.Enum):
    IDLE = "idle"  # waiting for the user's next message
    SENDING = "sending"  # messages.send is on its way: the run's id is not known yet
    STREAMING = "streaming"  # the answer is running
    AWAITING_APPROVAL = "awaiting approval"  # a tool call of the run waits for y/N
    CANCELLING = "cancelling"  # Ctrl-C: the answer is being cancelled
    DONE = "done"  # quitting


S = State
TRANSITIONS: dict[State, dict[str, State]] = {
    S.IDLE: {"send": S.SENDING, "approval": S.AWAITING_APPROVAL, "interrupt": S.DONE},
    S.SENDING: {
        "sent": S.STREAMING,
        "ended": S.IDLE,  # the run was over before messages.send answered
        "refused": S.IDLE,
        "interrupt": S.CANCELLING,
    },
    S.STREAMING: {
        "approval": S.AWAITING_APPROVAL,
        "ended": S.IDLE,
        "next": S.STREAMING,
        "interrupt": S.CANCELLING,
    },
    S.AWAITING_APPROVAL: {
        "answered": S.STREAMING,
        "ended": S.IDLE,
        "next": S.STREAMING,
        "interrupt": S.CANCELLING,
    },
    S.CANCELLING: {"refused": S.IDLE, "ended": S.IDLE, "next": S.STREAMING, "interrupt": S.DONE},
    S.DONE: {},
}
WANTS_INPUT = (S.IDLE, S.AWAITING_APPROVAL, S.DONE)
BUSY = (S.STREAMING, S.AWAITING_APPROVAL, S.CANCELLING)  # a run is being followed


class Turn:
    """The state, the run being waited for, the approvals it asked for, oldest first, and
    this chat's runs waiting in the session's queue, in the order they will run."""

    def __init__(self) -> None:
        self.state = S.IDLE
        self.run_id: str | None = None
        self.approvals: list[dict[str, Any]] = []  # the first is the one being asked
        self.waiting: list[str] = []
        self._ended: set[str] = set()  # a run's end may come before messages.send's answer

    @property
    def asking(self) -> dict[str, Any] | None:
        """The approval the user is asked about, if any."""
        return self.approvals[0] if self.state is S.AWAITING_APPROVAL else None

    def _fire(self, trigger: str) -> bool:
        target = S.DONE if trigger == "quit" else TRANSITIONS[self.state].get(trigger)
        if target is None:
            return False
        self.state = target
        if target in (S.IDLE, S.DONE):
            self.run_id, self.approvals = None, []
        if target is S.DONE:
            self.waiting = []
        return True

    def send(self) -> bool:
        """The user typed a message: tell whether to send it (only when idle)."""
        return self._fire("send")

    def sent(self, run_id: str) -> bool:
        """messages.send answered with the run; tell whether it must be cancelled now (Ctrl-C
        came while the message was on its way)."""
        self.run_id = run_id
        if run_id in self._ended:
            self._fire("ended")
            return False
        if self.state is S.CANCELLING:
            return True
        self._fire("sent")
        if self.approvals:
            self._fire("approval")
        return False

    def refused(self) -> None:
        """messages.send failed: nothing runs."""
        self._fire("refused")

    def approval_required(self, approval: dict[str, Any]) -> None:
        """A tool call asks; when idle, it belongs to a run started elsewhere, which chat now
        waits for."""
        if approval["status"] != "pending" or any(
            a["id"] == approval["id"] for a in self.approvals
        ):
            return
        if self.state is S.IDLE:
            self.run_id = approval["runId"]
        self.approvals.append(approval)
        if self.state in (S.IDLE, S.STREAMING):
            self._fire("approval")

    def approval_gone(self, approval_id: str) -> bool:
        """The user answered, or the approval was resolved elsewhere; tell whether it was the
        one being asked."""
        asked = self.asking is not None and self.asking["id"] == approval_id
        self.approvals = [a for a in self.approvals if a["id"] != approval_id]
        if asked and not self.approvals:
            self._fire("answered")
        return asked

    def queued(self, run_id: str, first: bool = False) -> None:
        """A message of this chat waits in the queue (`first`: ahead of the others, as an
        interrupt does); its run is followed when the one before it ends."""
        if run_id in self._ended or run_id == self.run_id:
            return
        if first:
            self.waiting.insert(0, run_id)
        else:
            self.waiting.append(run_id)

    def unqueued(self, run_id: str) -> None:
        """A waiting message was taken back: its run will not come."""
        self.waiting = [r for r in self.waiting if r != run_id]

    def ended(self, run_id: str) -> bool:
        """A run ended; tell whether it was the one chat waited for (then the next run of
        this chat waiting in the queue is followed, or chat is idle)."""
        self._ended.add(run_id)
        self.unqueued(run_id)
        if run_id != self.run_id:
            return False
        if self.waiting and self._fire("next"):
            self.run_id, self.approvals = self.waiting.pop(0), []
            return True
        return self._fire("ended")

    def interrupt(self) -> bool:
        """Ctrl-C; tell whether a messages.cancel must be sent now (the run's id is known)."""
        return self._fire("interrupt") and self.state is S.CANCELLING and self.run_id is not None

    def quit(self) -> None:
        self._fire("quit")
