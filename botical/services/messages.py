"""Messages and their parts. The runner writes streamed parts through `agent.stream`."""

from __future__ import annotations

from typing import Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.database import Prepared
from botical.db.models import Message, Part, Session, UsageRecord, locked_session
from botical.errors import Conflict, NotFound
from botical.ids import new_id
from botical.services.pagination import page_rows
from botical.services.tree import QUEUED, Tree, attach_versions, versions_of
from botical.services.usage import Pricing

PART_TYPES = ("text", "reasoning", "tool_call", "tool_result", "file", "step_start", "step_finish")


def message_to_dict(
    message: Message | Any,
    parts: list[dict[str, Any]] | None = None,
    versions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message (a model instance or a prepared row) as the API shows it; `versions` is
    `{index, count, ids}` (see `services.tree`)."""
    data: dict[str, Any] = {
        "id": message.id,
        "sessionId": message.session_id,
        "role": message.role,
        "parentId": message.parent_id,
        "createdBy": message.created_by_id,
        "agent": message.agent,
        "model": message.model,
        "runId": message.run_id,
        "status": message.status,
        "finishReason": message.finish_reason,
        "error": message.error,
        "usage": usage_dict(message),
        "createdAt": message.created_at,
        "updatedAt": message.updated_at,
    }
    if versions is not None:
        data["versions"] = versions
    if parts is not None:
        data["parts"] = parts
    return data


def usage_dict(row: Any) -> dict[str, Any]:
    """`{inputTokens, outputTokens, cachedTokens, cost}` of an answer, a session or a total."""
    return {
        "inputTokens": row.input_tokens,
        "outputTokens": row.output_tokens,
        "cachedTokens": row.cached_tokens,
        "cost": row.cost,
    }


def part_to_dict(part: Part | Any) -> dict[str, Any]:
    """A part (a model instance or a prepared row) as the API shows it."""
    return {
        "id": part.id,
        "messageId": part.message_id,
        "sessionId": part.session_id,
        "type": part.type,
        "position": part.position,
        "status": part.status,
        **part.content,
        "createdAt": part.created_at,
        "updatedAt": part.updated_at,
    }


SESSION_MESSAGES = Prepared(
    Message,
    lambda session_id: Message.select().where(Message.session == session_id).order_by(Message.id),
    1,
)
SESSION_PARTS = Prepared(
    Part,
    lambda session_id: (
        Part.select().where(Part.session == session_id).order_by(Part.message, Part.position)
    ),
    1,
)


def conversation(session_id: str, head: str | None) -> tuple[list[dict], list[dict]]:
    """The active path ending at `head` (each message with its parts and versions) and the
    queue, in the order it will run (each queued message with its parts); on the executor.

    Two prepared queries and plain rows: this is the read behind `sessions.get` and
    `sessions.sync`, about five times cheaper than going through model instances.
    """
    tree = Tree(SESSION_MESSAGES.rows(session_id))
    parts: dict[str, list[dict[str, Any]]] = {}
    for part in SESSION_PARTS.rows(session_id):
        parts.setdefault(part.message_id, []).append(part_to_dict(part))
    path = [
        message_to_dict(tree.rows[i], parts.get(i, []), tree.versions(i)) for i in tree.path(head)
    ]
    return path, [message_to_dict(row, parts.get(row.id, [])) for row in tree.queued]


def with_parts(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as dicts, each with its parts in order (runs on the executor)."""
    parts: dict[str, list[dict[str, Any]]] = {m.id: [] for m in messages}
    if messages:
        rows = Part.select().where(Part.message.in_(list(parts))).order_by(Part.position)
        for part in rows:
            parts[part.message_id].append(part_to_dict(part))
    return [message_to_dict(m, parts[m.id]) for m in messages]


def lock_session(session_id: str, active: bool = True) -> Session:
    """The session, locked for this transaction (`models.locked_session`); NOT_FOUND if there
    is none, CONFLICT if `active` is asked and it is archived."""
    session = locked_session(session_id)
    if session is None:
        raise NotFound("Session not found")
    if active and session.status == "archived":
        raise Conflict("Session is archived")
    return session


def insert_user_message(
    session_id: str,
    user_id: str,
    content: str,
    run_id: str,
    agent: str | None,
    model: str | None,
    parent_id: str | None,
    idempotency_key: str | None = None,
    queue_mode: str | None = None,
    target_run: str | None = None,
) -> tuple[Message, list[Part]]:
    """Store a user message and its text part (inside the caller's transaction): on the
    active path after `parent_id`, which becomes the head, or queued when `queue_mode`."""
    message = Message.create(
        id=new_id("msg"),
        session=session_id,
        role="user",
        parent_id=parent_id,
        created_by=user_id,
        agent=agent,
        model=model,
        run_id=run_id,
        status=QUEUED if queue_mode else "completed",
        idempotency_key=idempotency_key,
        queue_mode=queue_mode,
        target_run=target_run,
    )
    part = Part.create(
        id=new_id("part"),
        message=message.id,
        session=session_id,
        type="text",
        position=0,
        status="completed",
        content={"text": content},
    )
    changes: dict[str, Any] = {"updated_at": now_ms()}
    if not queue_mode:
        changes["head_id"] = message.id
    Session.update(**changes).where(Session.id == session_id).execute()
    return message, [part]


def move_head(session_id: str, message_id: str | None) -> None:
    """Make `message_id` the last message of the active path (inside a transaction)."""
    Session.update(head_id=message_id, updated_at=now_ms()).where(
        Session.id == session_id
    ).execute()


def user_message_dict(message: Message, parts: list[Part]) -> dict[str, Any]:
    """A stored user message with its parts and, unless it is queued, its versions."""
    return message_to_dict(message, [part_to_dict(p) for p in parts], versions_of(message))


class MessageService:
    def __init__(self, db: Database, bus: EventBus, pricing: Pricing | None = None) -> None:
        self._db = db
        self._bus = bus
        self.pricing = pricing or Pricing()

    def publish(self, name: str, data: dict[str, Any], project_id: str | None, session_id: str):
        self._bus.publish(Event(name, data, project_id=project_id, session_id=session_id))

    def announce(self, message: dict[str, Any], project_id: str, created: bool = True) -> None:
        """Publish a new (or newly started) message and, for a new one, its parts."""
        head = {k: v for k, v in message.items() if k != "parts"}
        name = "message.created" if created else "message.updated"
        self.publish(name, {"message": head}, project_id, message["sessionId"])
        if created:
            for part in message.get("parts", []):
                self.publish("part.created", {"part": part}, project_id, message["sessionId"])

    def deleted(self, message: Message | Any, project_id: str) -> None:
        """Publish that a message is gone (with its parts)."""
        data = {"sessionId": message.session_id, "messageId": message.id}
        self.publish("message.deleted", data, project_id, message.session_id)

    def path_changed(
        self, session_id: str, project_id: str, after: str | None, messages: list[dict]
    ) -> None:
        """Publish that the active path is now: up to `after` (None: nothing), then `messages`."""
        data = {"sessionId": session_id, "after": after, "messages": messages}
        self.publish("path.changed", data, project_id, session_id)

    async def list(
        self,
        session_id: str,
        after: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Every message of a session (all versions and the queue), oldest first, each with
        its parts and (unless queued) its versions."""

        def select() -> dict[str, Any]:
            query = Message.select().where(Message.session == session_id)
            if after:
                query = query.where(Message.id > after)
            rows, next_cursor = page_rows(query, Message.id, "msg", limit, cursor)
            items = attach_versions(session_id, with_parts(rows))
            return {"items": items, "nextCursor": next_cursor}

        return await self._db.run(select)

    async def create_user_message(
        self,
        session_id: str,
        user_id: str,
        content: str,
        run_id: str,
        agent: str | None,
        model: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """Store a user message after the head of an active session (no run is started)."""

        def insert() -> tuple[dict[str, Any], str]:
            session = lock_session(session_id)
            message, parts = insert_user_message(
                session_id, user_id, content, run_id, agent, model, session.head_id
            )
            return user_message_dict(message, parts), session.project_id

        data, project_id = await self._db.atomic(insert)
        self.announce(data, project_id)
        return data, True

    async def get(self, message_id: str) -> dict[str, Any]:
        def select() -> dict[str, Any]:
            message = Message.get_or_none(Message.id == message_id)
            if message is None:
                raise NotFound("Message not found")
            parts = [part_to_dict(p) for p in message.parts.order_by(Part.position)]
            return message_to_dict(message, parts, versions_of(message))

        return await self._db.run(select)

    async def find_by_key(self, session_id: str, key: str) -> dict[str, Any] | None:
        """The user message sent earlier with this idempotency key, if any."""

        def select() -> dict[str, Any] | None:
            message = Message.get_or_none(
                Message.session == session_id, Message.idempotency_key == key
            )
            return user_message_dict(message, list(message.parts)) if message else None

        return await self._db.run(select)

    async def create_assistant(
        self, project_id: str, session_id: str, parent_id: str, run_id: str, agent: str, model: str
    ) -> dict[str, Any]:
        """Start the assistant message a run writes into: a new version below its question,
        and the head of the active path."""

        def insert() -> dict[str, Any]:
            message = Message.create(
                id=new_id("msg"),
                session=session_id,
                role="assistant",
                parent_id=parent_id,
                run_id=run_id,
                agent=agent,
                model=model,
                status="streaming",
            )
            move_head(session_id, message.id)
            return message_to_dict(message, None, versions_of(message))

        data = await self._db.atomic(insert)
        self.publish("message.created", {"message": data}, project_id, session_id)
        return data

    async def finish_assistant(
        self,
        project_id: str,
        message_id: str,
        status: str,
        finish_reason: str,
        usage: dict[str, Any],
        error: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Record how the answer ended (status, finish reason, usage and its cost, error) and
        what the run cost in the usage ledger, in one transaction."""

        def apply() -> dict[str, Any]:
            message = Message.get_by_id(message_id)
            cost = self.pricing.cost(message.model or "", usage)
            Message.update(
                status=status,
                finish_reason=finish_reason,
                error=error,
                input_tokens=usage["inputTokens"],
                output_tokens=usage["outputTokens"],
                cached_tokens=usage["cachedTokens"],
                cost=cost,
                updated_at=now_ms(),
            ).where(Message.id == message_id).execute()
            message = Message.get_by_id(message_id)
            record_usage(message, project_id)
            return message_to_dict(message, None, versions_of(message))

        data = await self._db.atomic(apply)
        self.publish("message.updated", {"message": data}, project_id, data["sessionId"])
        return data

    async def mark_interrupted(self, runs: dict[str, str] | None = None) -> int:
        """Mark answers and parts left streaming as interrupted: those of `runs` (run id ->
        project id, runs whose node died), announced; or, at the start of a single process,
        every one, unannounced (nobody is connected yet). Returns how many answers."""
        open_parts = ("streaming", "pending", "waiting_approval", "running")

        def apply() -> tuple[int, list[dict[str, Any]], list[Part]]:
            messages = Message.select().where(Message.status.in_(("streaming", "pending")))
            if runs is not None:
                messages = messages.where(Message.run_id.in_(list(runs)))
            found = list(messages)
            parts = Part.select().where(Part.status.in_(open_parts))
            if runs is not None:
                parts = parts.where(Part.message.in_([m.id for m in found]))
            changed = list(parts)
            now = now_ms()
            Part.update(status="interrupted", updated_at=now).where(
                Part.id.in_([p.id for p in changed])
            ).execute()
            Message.update(status="interrupted", finish_reason="interrupted", updated_at=now).where(
                Message.id.in_([m.id for m in found])
            ).execute()
            for message in found:
                message.status, message.updated_at = "interrupted", now
                message.finish_reason = "interrupted"
            for part in changed:
                part.status, part.updated_at = "interrupted", now
            if runs is None:  # nobody to tell
                return len(found), [], []
            return len(found), [message_to_dict(m, None, versions_of(m)) for m in found], changed

        count, messages, parts = await self._db.atomic(apply)
        if runs is not None:
            project_of = {m["id"]: runs[str(m["runId"])] for m in messages}
            for message in messages:
                data = {"message": message}
                self.publish(
                    "message.updated", data, project_of[message["id"]], message["sessionId"]
                )
            for part in parts:
                data = {"part": part_to_dict(part)}
                self.publish("part.updated", data, project_of[part.message_id], part.session_id)
        return count


def record_usage(message: Message, project_id: str) -> None:
    """The ledger row of the run that wrote this answer (inside the caller's transaction)."""
    if message.run_id is None:
        return
    UsageRecord.insert(
        id=message.run_id,
        session=message.session_id,
        project_id=project_id,
        message_id=message.id,
        model=message.model or "",
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        cached_tokens=message.cached_tokens,
        cost=message.cost,
    ).on_conflict_ignore().execute()
