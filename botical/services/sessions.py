"""Sessions: create, list, get, update, archive; usage totals; parent sessions for sub-agents.
Forks are made in `services.branches`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import RUN_OF_SESSION, SESSION_BY_ID, Session
from botical.errors import Conflict, NotFound, ValidationError
from botical.ids import new_id
from botical.jsonout import JSONText, dumps
from botical.services.messages import conversation, usage_dict
from botical.services.pagination import page
from botical.services.readcache import ReadCache

if TYPE_CHECKING:
    from botical.websocket.broadcaster import ChannelRouter

EDITABLE = ("title", "agent", "model")
TITLE_LENGTH = 60  # a title taken from the first message: its first line, this long at most
Check = Callable[[str, dict[str, Any]], Awaitable[None]]


def session_to_dict(session: Session | Any) -> dict[str, Any]:
    """A session (a model instance or a prepared row) as the API shows it."""
    return {
        "id": session.id,
        "projectId": session.project_id,
        "parentId": session.parent_id,
        "createdBy": session.created_by_id,
        "title": session.title,
        "agent": session.agent,
        "model": session.model,
        "status": session.status,
        "usage": usage_dict(session),
        "forkedFrom": (
            {"sessionId": session.forked_from, "messageId": session.forked_at}
            if session.forked_from
            else None
        ),
        "createdAt": session.created_at,
        "updatedAt": session.updated_at,
        "archivedAt": session.archived_at,
    }


def run_status(session_id: str) -> dict[str, Any]:
    """`{status: running|idle, runId}` of a session, whichever node runs it (on the executor)."""
    rows = RUN_OF_SESSION.rows(session_id)
    return {"status": "running", "runId": rows[0].id} if rows else {"status": "idle", "runId": None}


def message_title(content: str) -> str:
    """A session title from a message: its first non-blank line, whitespace collapsed."""
    line = next((line for line in content.splitlines() if line.strip()), "")
    title = " ".join(line.lstrip(" #>").split())  # a markdown heading or quote: its text
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1].rstrip() + "…"


def _read(session_id: str, include_messages: bool) -> dict[str, Any]:
    rows = SESSION_BY_ID.rows(session_id)
    if not rows:
        raise NotFound("Session not found")
    data = session_to_dict(rows[0])
    data["run"] = run_status(session_id)
    if include_messages:
        data["messages"], data["queue"] = conversation(session_id, rows[0].head_id)
    return data


class SessionService:
    """Sessions, and their encoded reads kept until they change.

    A kept read is dropped by this node's own events at once; with nodes that share the bus
    (`channels` given), by the publications of other nodes on the session's channel, which
    this node watches from before the read until the read is dropped.
    """

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        check: Check | None = None,
        cache_bytes: int = 0,
        channels: ChannelRouter | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._check = check  # validates agent and model names against a project
        self._cache = ReadCache(cache_bytes, self._dropped)
        self._channels = channels
        self._watched: set[str] = set()
        bus.subscribe("*", self.changed)
        bus.subscribe("project.deleted", lambda event: self._cache.clear(), cluster=True)
        # The shared bus was lost: changes of other nodes may have gone unheard meanwhile.
        bus.subscribe("bus.unavailable", lambda event: self._cache.clear())
        if channels is not None:
            channels.listeners.append(self._published)

    def text_stored(self, session_id: str) -> None:
        """Streamed text was written without an event of its own (see `agent.stream`)."""
        self._cache.changed(session_id)

    def publish(self, name: str, session: dict[str, Any]) -> None:
        self._bus.publish(
            Event(
                name,
                {"session": session},
                project_id=session["projectId"],
                session_id=session["id"],
                user_id=session["createdBy"],
            )
        )

    async def create(
        self,
        project_id: str,
        user_id: str | None,
        title: str = "",
        agent: str = "default",
        model: str | None = None,
        parent_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a session in a project; a parent must be in the same project."""
        if self._check:
            await self._check(project_id, {"agent": agent, "model": model})

        def insert() -> Session:
            if (
                parent_id
                and not Session.select()
                .where(Session.id == parent_id, Session.project == project_id)
                .exists()
            ):
                raise ValidationError(details={"parentId": ["No such session in this project."]})
            return Session.create(
                id=new_id("sess"),
                project=project_id,
                parent=parent_id,
                created_by=user_id,
                title=title,
                agent=agent,
                model=model,
            )

        data = session_to_dict(await self._db.atomic(insert))
        self.publish("session.created", data)
        return data

    async def list(
        self,
        project_id: str,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Sessions of a project, newest first."""

        def select() -> dict[str, Any]:
            query = Session.select().where(Session.project == project_id)
            if status:
                query = query.where(Session.status == status)
            return page(
                query, Session.id, "sess", limit, cursor, session_to_dict, newest_first=True
            )

        return await self._db.run(select)

    async def get(self, session_id: str, include_messages: bool = False) -> dict[str, Any]:
        """A session with its run status, and its messages and their parts when asked (a
        fresh dict each call)."""
        return await self._db.run(_read, session_id, include_messages)

    def cached_json(self, session_id: str, include_messages: bool = False) -> JSONText | None:
        """What `get_json` would return, if the read cache holds it (no database access)."""
        return self._cache.get(session_id, include_messages)

    async def get_json(self, session_id: str, include_messages: bool = False) -> JSONText:
        """What `get` returns, encoded, from the read cache while the session is unchanged."""
        cached = self._cache.get(session_id, include_messages)
        if cached is not None:
            return cached
        channel = f"session:{session_id}"
        if self._channels is not None:  # from before the read: no change can slip by
            try:
                await self._channels.watch(channel)
            except Exception:  # the shared bus is away: read, but keep nothing
                return JSONText(dumps(await self.get(session_id, include_messages)))
        started = self._cache.begin()
        try:
            text = JSONText(dumps(await self.get(session_id, include_messages)))
        except BaseException:
            self._unwatch(channel)
            raise
        kept = self._cache.store(session_id, include_messages, text, started)
        if self._channels is not None:
            if kept and session_id not in self._watched:
                self._watched.add(session_id)  # until the cache drops the session
            else:
                self._unwatch(channel)
        return text

    def _published(self, channel: str) -> None:
        if channel.startswith("session:"):
            self._cache.changed(channel[8:])

    def _dropped(self, session_id: str) -> None:
        if session_id in self._watched:
            self._watched.discard(session_id)
            self._unwatch(f"session:{session_id}")

    def _unwatch(self, channel: str) -> None:
        if self._channels is not None:
            self._channels.unwatch(channel)

    def changed(self, event: Event) -> None:
        """Bus subscriber (every event of this node): a session's events mean its stored
        state changed."""
        if event.session_id is not None:
            self._cache.changed(event.session_id)

    async def update(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change title, agent or model of an active session."""
        current = await self.get(session_id)
        if self._check and ({"agent", "model"} & changes.keys()):
            await self._check(current["projectId"], changes)

        def apply() -> Session:
            session = Session.get_by_id(session_id)
            if session.status == "archived":
                raise Conflict("Session is archived")
            for key in EDITABLE:
                if key in changes:
                    setattr(session, key, changes[key])
            session.updated_at = now_ms()
            session.save()
            return session

        data = session_to_dict(await self._db.atomic(apply))
        self.publish("session.updated", data)
        return data

    async def title_from(self, session_id: str, content: str) -> None:
        """Title an untitled session after its first message (its first line, shortened)."""
        title = message_title(content)

        def apply() -> Session | None:
            updated = (
                Session.update(title=title, updated_at=now_ms())
                .where(Session.id == session_id, Session.title == "")
                .execute()
            )
            return Session.get_by_id(session_id) if updated else None

        if title and (session := await self._db.atomic(apply)) is not None:
            self.publish("session.updated", session_to_dict(session))

    async def archive(self, session_id: str) -> dict[str, Any]:
        """Archive a session: it stays readable but takes no new messages."""

        def apply() -> Session:
            session = Session.get_or_none(Session.id == session_id)
            if session is None:
                raise NotFound("Session not found")
            if session.status != "archived":
                session.status, session.archived_at = "archived", now_ms()
                session.updated_at = session.archived_at
                session.save()
            return session

        data = session_to_dict(await self._db.atomic(apply))
        self.publish("session.updated", data)
        return data

    async def add_usage(self, session_id: str, usage: dict[str, Any]) -> dict[str, Any]:
        """Add a run's usage (`{inputTokens, outputTokens, cachedTokens, cost}`) to the
        session's totals."""

        def apply() -> Session:
            Session.update(
                input_tokens=Session.input_tokens + usage["inputTokens"],
                output_tokens=Session.output_tokens + usage["outputTokens"],
                cached_tokens=Session.cached_tokens + usage["cachedTokens"],
                cost=Session.cost + usage["cost"],
                updated_at=now_ms(),
            ).where(Session.id == session_id).execute()
            return Session.get_by_id(session_id)

        data = session_to_dict(await self._db.atomic(apply))
        self.publish("session.updated", data)
        return data
