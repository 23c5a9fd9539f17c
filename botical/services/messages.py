"""Messages and their parts. The runner writes streamed parts through `agent.stream`."""

from __future__ import annotations

from typing import Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.database import Prepared
from botical.db.models import Message, Part, Session
from botical.errors import Conflict, NotFound
from botical.ids import new_id
from botical.services.pagination import page_rows

PART_TYPES = ("text", "reasoning", "tool_call", "tool_result", "file", "step_start", "step_finish")
FINAL_STATUSES = ("completed", "error", "cancelled", "interrupted", "superseded")


def message_to_dict(message: Message | Any, parts: list[dict[str, Any]] | None = None):
    """A message (a model instance or a prepared row) as the API shows it."""
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
        "usage": {
            "inputTokens": message.input_tokens,
            "outputTokens": message.output_tokens,
            "cost": message.cost,
        },
        "createdAt": message.created_at,
        "updatedAt": message.updated_at,
    }
    if parts is not None:
        data["parts"] = parts
    return data


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


def session_messages(session_id: str) -> list[dict[str, Any]]:
    """A session's messages, oldest first, each with its parts (runs on the executor).

    Two prepared queries and plain rows: this is the read behind `sessions.get` and
    `sessions.sync`, about five times cheaper than going through model instances.
    """
    parts: dict[str, list[dict[str, Any]]] = {}
    for part in SESSION_PARTS.rows(session_id):
        parts.setdefault(part.message_id, []).append(part_to_dict(part))
    return [message_to_dict(m, parts.get(m.id, [])) for m in SESSION_MESSAGES.rows(session_id)]


def with_parts(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as dicts, each with its parts in order (runs on the executor)."""
    parts: dict[str, list[dict[str, Any]]] = {m.id: [] for m in messages}
    if messages:
        rows = Part.select().where(Part.message.in_(list(parts))).order_by(Part.position)
        for part in rows:
            parts[part.message_id].append(part_to_dict(part))
    return [message_to_dict(m, parts[m.id]) for m in messages]


class MessageService:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db = db
        self._bus = bus

    def publish(self, name: str, data: dict[str, Any], project_id: str | None, session_id: str):
        self._bus.publish(Event(name, data, project_id=project_id, session_id=session_id))

    async def list(
        self,
        session_id: str,
        after: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Messages of a session, oldest first, each with its parts."""

        def select() -> dict[str, Any]:
            query = Message.select().where(Message.session == session_id)
            if after:
                query = query.where(Message.id > after)
            rows, next_cursor = page_rows(query, Message.id, "msg", limit, cursor)
            return {"items": with_parts(rows), "nextCursor": next_cursor}

        return await self._db.run(select)

    async def create_user_message(
        self,
        session_id: str,
        user_id: str,
        content: str,
        run_id: str,
        agent: str | None,
        model: str | None,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store a user message and its text part in one transaction; return (message, created).

        A repeated `idempotency_key` returns the message stored the first time.
        """

        def insert() -> tuple[Message, list[Part], bool, str]:
            session = Session.get_or_none(Session.id == session_id)
            if session is None:
                raise NotFound("Session not found")
            if session.status == "archived":
                raise Conflict("Session is archived")
            if idempotency_key:
                found = Message.get_or_none(
                    Message.session == session_id, Message.idempotency_key == idempotency_key
                )
                if found:
                    return (
                        found,
                        list(found.parts.order_by(Part.position)),
                        False,
                        session.project_id,
                    )
            message = Message.create(
                id=new_id("msg"),
                session=session_id,
                role="user",
                created_by=user_id,
                agent=agent,
                model=model,
                run_id=run_id,
                status="completed",
                idempotency_key=idempotency_key,
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
            Session.update(updated_at=now_ms()).where(Session.id == session_id).execute()
            return message, [part], True, session.project_id

        message, parts, created, project_id = await self._db.atomic(insert)
        part_dicts = [part_to_dict(p) for p in parts]
        data = message_to_dict(message, part_dicts)
        if created:
            self.publish(
                "message.created", {"message": message_to_dict(message)}, project_id, session_id
            )
            for part in part_dicts:
                self.publish("part.created", {"part": part}, project_id, session_id)
        return data, created

    async def get(self, message_id: str) -> dict[str, Any]:
        def select() -> dict[str, Any]:
            message = Message.get_or_none(Message.id == message_id)
            if message is None:
                raise NotFound("Message not found")
            parts = [part_to_dict(p) for p in message.parts.order_by(Part.position)]
            return message_to_dict(message, parts)

        return await self._db.run(select)

    async def find_by_key(self, session_id: str, key: str) -> dict[str, Any] | None:
        """The user message sent earlier with this idempotency key, if any."""

        def select() -> dict[str, Any] | None:
            message = Message.get_or_none(
                Message.session == session_id, Message.idempotency_key == key
            )
            return with_parts([message])[0] if message else None

        return await self._db.run(select)

    async def create_assistant(
        self, project_id: str, session_id: str, parent_id: str, run_id: str, agent: str, model: str
    ) -> dict[str, Any]:
        """Start the assistant message a run writes into."""

        def insert() -> Message:
            return Message.create(
                id=new_id("msg"),
                session=session_id,
                role="assistant",
                parent_id=parent_id,
                run_id=run_id,
                agent=agent,
                model=model,
                status="streaming",
            )

        data = message_to_dict(await self._db.atomic(insert))
        self.publish("message.created", {"message": data}, project_id, session_id)
        return data

    async def finish_assistant(
        self,
        project_id: str,
        message_id: str,
        status: str,
        finish_reason: str,
        usage: dict[str, int],
        error: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Record how the answer ended: status, finish reason, usage, error."""

        def apply() -> Message:
            Message.update(
                status=status,
                finish_reason=finish_reason,
                error=error,
                input_tokens=usage["inputTokens"],
                output_tokens=usage["outputTokens"],
                updated_at=now_ms(),
            ).where(Message.id == message_id).execute()
            return Message.get_by_id(message_id)

        message = await self._db.atomic(apply)
        data = message_to_dict(message)
        self.publish("message.updated", {"message": data}, project_id, message.session_id)
        return data

    async def retry_point(
        self, session_id: str, message_id: str | None, project_id: str
    ) -> dict[str, Any]:
        """The user message to answer again (the last by default); later ones are superseded."""

        def apply() -> tuple[dict[str, Any], list[Message]]:
            session = Session.get_or_none(Session.id == session_id)
            if session is None:
                raise NotFound("Session not found")
            if session.status == "archived":
                raise Conflict("Session is archived")
            query = Message.select().where(
                Message.session == session_id,
                Message.role == "user",
                Message.status != "superseded",
            )
            if message_id:
                query = query.where(Message.id == message_id)
            target = query.order_by(Message.id.desc()).first()
            if target is None:
                raise NotFound("No user message to retry")
            later = Message.session == session_id, Message.id > target.id
            Message.update(status="superseded", updated_at=now_ms()).where(
                *later, Message.status != "superseded"
            ).execute()
            changed = list(Message.select().where(*later, Message.status == "superseded"))
            return with_parts([target])[0], changed

        target, superseded = await self._db.atomic(apply)
        for message in superseded:
            self.publish(
                "message.updated", {"message": message_to_dict(message)}, project_id, session_id
            )
        return target

    async def mark_interrupted(self, runs: dict[str, str] | None = None) -> int:
        """Mark answers and parts left streaming as interrupted: those of `runs` (run id ->
        project id, runs whose node died), announced; or, at the start of a single process,
        every one, unannounced (nobody is connected yet). Returns how many answers."""
        open_parts = ("streaming", "pending", "waiting_approval", "running")

        def apply() -> tuple[list[Message], list[Part]]:
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
            return found, changed

        messages, parts = await self._db.atomic(apply)
        if runs is not None:
            by_message = {m.id: runs[str(m.run_id)] for m in messages}
            for message in messages:
                data = {"message": message_to_dict(message)}
                self.publish("message.updated", data, by_message[message.id], message.session_id)
            for part in parts:
                data = {"part": part_to_dict(part)}
                self.publish("part.updated", data, by_message[part.message_id], part.session_id)
        return len(messages)
