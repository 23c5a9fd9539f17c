"""Sending while a session is busy, decided in the database.

A message sent while the session has a run either is refused (`reject`, the default) or waits
as a queued message (`status: "queued"`, with the run id it will have): `queue` waits its turn,
`interrupt` and `rollback` go before the plain queue and stop the current run. When a run ends,
the node that owns its row in `runs` hands the session over in one transaction: it deletes
that row and, if a message waits, claims the run of the first one (interrupts and rollbacks
first, then the queue, each in arrival order) and puts it on the active path. A node that dies
stops renewing its runs' leases; the node that reaps one of them adopts its row and hands the
session over exactly like a run ending at home. Every step takes the session's row lock first
(`models.locked_session`), so each race between tabs or nodes is decided once.

Every function here runs inside a transaction on the database executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botical.agent.runs import RunLeases
from botical.db.models import Message, Part, Run, Session, User
from botical.errors import Conflict
from botical.services.branches import roll_back
from botical.services.messages import (
    insert_user_message,
    lock_session,
    user_message_dict,
)
from botical.services.tree import FRONT, QUEUED, queue_order

MODES = ("reject", "queue", "interrupt", "rollback")
MAX_QUEUED = 32  # messages waiting in one session


@dataclass(frozen=True)
class SendRequest:
    session_id: str
    project_id: str
    user_id: str
    content: str
    run_id: str
    agent: str
    model: str
    idempotency_key: str | None = None
    if_busy: str = "reject"


@dataclass
class Admitted:
    """What became of a message sent: `started` (its run was claimed), or waiting."""

    message: dict[str, Any]
    project_id: str
    created: bool = True
    started: bool = False
    stop: str | None = None  # the run an interrupt or a rollback stops


@dataclass
class Handover:
    """What a session does after a run ended: the message whose run starts now (if any), and
    what changed on the way (queued messages dropped, answers rolled back)."""

    project_id: str
    start: dict[str, Any] | None = None
    user: dict[str, Any] | None = None  # who sent `start`: the run acts as them
    dropped: list[Message] = field(default_factory=list)
    removed: list[Message] = field(default_factory=list)
    path: tuple[str, list[dict[str, Any]]] | None = None  # (after, messages), see roll_back


def admit(leases: RunLeases, request: SendRequest) -> Admitted:
    """Store a message sent to a session: started at once when the session is free, else
    handled as `if_busy` says (CONFLICT for `reject` or a full queue)."""
    session = lock_session(request.session_id)
    if request.idempotency_key:
        found = Message.get_or_none(
            Message.session == request.session_id,
            Message.idempotency_key == request.idempotency_key,
        )
        if found is not None:
            message = user_message_dict(found, list(found.parts.order_by(Part.position)))
            return Admitted(message, session.project_id, created=False)
    current = Run.get_or_none(Run.session == request.session_id)
    if current is None:
        leases.insert(request.run_id, request.session_id, session.project_id)
        message = _insert(request, session.head_id)
        return Admitted(message, session.project_id, started=True)
    if request.if_busy == "reject":
        raise Conflict("A run is already in progress in this session")
    waiting = Message.select().where(
        Message.session == request.session_id, Message.status == QUEUED
    )
    if waiting.count() >= MAX_QUEUED:
        raise Conflict(f"The session already has {MAX_QUEUED} messages waiting")
    stop = current.id if request.if_busy in FRONT else None
    message = _insert(request, None, request.if_busy, stop)
    return Admitted(message, session.project_id, stop=stop)


def _insert(
    request: SendRequest, parent: str | None, mode: str | None = None, stop: str | None = None
) -> dict[str, Any]:
    message, parts = insert_user_message(
        request.session_id,
        request.user_id,
        request.content,
        request.run_id,
        request.agent,
        request.model,
        parent,
        request.idempotency_key,
        mode,
        stop,
    )
    return user_message_dict(message, parts)


def hand_over(leases: RunLeases, run_id: str, session_id: str, start: bool = True) -> Handover:
    """The run ended: free the session, or give it to the first message waiting (dropping
    the queue of an archived session). With `start` false (this node is stopping) a waiting
    queue is left to whichever node next reaps the run, at once: its lease is ended."""
    session = lock_session(session_id, active=False)
    outcome = Handover(session.project_id)
    waiting = sorted(
        Message.select().where(Message.session == session_id, Message.status == QUEUED),
        key=queue_order,
    )
    if not start and waiting and session.status != "archived":
        Run.update(lease_until=0).where(Run.id == run_id).execute()
        return outcome
    Run.delete().where(Run.id == run_id, Run.node == leases.node).execute()
    if Run.select().where(Run.session == session_id).exists():
        return outcome  # another node's now: a reaper adopted this run, and ends it itself
    if session.status == "archived":
        waiting, outcome.dropped = [], waiting
    ids = [m.created_by_id for m in waiting]
    senders: dict[str | None, User] = {u.id: u for u in User.select().where(User.id.in_(ids))}
    while waiting and waiting[0].created_by_id not in senders:  # its sender was deleted
        outcome.dropped.append(waiting.pop(0))
    Message.delete().where(Message.id.in_([m.id for m in outcome.dropped])).execute()
    if not waiting:
        return outcome
    _start(leases, session, waiting[0], outcome)
    sender = senders[waiting[0].created_by_id]
    outcome.user = {
        "id": sender.id,
        "name": sender.name,
        "isAdmin": sender.is_admin,
        "canExecuteCode": sender.can_execute_code,
    }
    return outcome


def _start(leases: RunLeases, session: Session, message: Message, outcome: Handover) -> None:
    """Claim the run of a waiting message and put the message on the active path."""
    if message.queue_mode == "rollback" and message.target_run:
        outcome.removed, after, below = roll_back(session, message.target_run)
        if after is not None:
            outcome.path = (after, below)
        session = Session.get_by_id(session.id)
    leases.insert(str(message.run_id), session.id, session.project_id)
    Message.update(status="completed", parent_id=session.head_id).where(
        Message.id == message.id
    ).execute()
    Session.update(head_id=message.id).where(Session.id == session.id).execute()
    started = Message.get_by_id(message.id)
    outcome.start = user_message_dict(started, list(started.parts.order_by(Part.position)))


def unqueue(session_id: str, message_id: str) -> tuple[Message | None, str | None, str]:
    """Take a waiting message out of the queue: `(message, None, project)`; or, when it runs
    already, `(None, its run id, project)`; `(None, None, project)` when neither."""
    session = lock_session(session_id, active=False)
    message = Message.get_or_none(Message.id == message_id, Message.session == session_id)
    if message is None:
        return None, None, session.project_id
    if message.status == QUEUED:
        Message.delete().where(Message.id == message_id).execute()
        return message, None, session.project_id
    running = Run.get_or_none(Run.session == session_id, Run.id == message.run_id)
    return None, (running.id if running else None), session.project_id
