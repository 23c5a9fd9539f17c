"""Project roles and the one place that answers "may this identity do X on this project"."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from botical.auth.identity import Identity
from botical.db import Database
from botical.db.database import Prepared
from botical.db.models import SESSION_BY_ID, ProjectMember
from botical.errors import Forbidden, NotFound, ValidationError


class Role(IntEnum):
    """Project roles, ordered: each includes what the ones below it may do."""

    VIEWER = 1
    MEMBER = 2
    ADMIN = 3
    OWNER = 4

    @classmethod
    def parse(cls, value: str) -> Role:
        """Role from its lower-case name."""
        try:
            return cls[value.upper()]
        except (KeyError, AttributeError):
            raise ValidationError(details={"role": [f"Must be one of {ROLE_NAMES}."]}) from None

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)

# What each kind of action needs; handlers name the action's role, never a raw number.
READ = Role.VIEWER
WRITE = Role.MEMBER
MANAGE = Role.ADMIN
OWN = Role.OWNER


CACHED_ENTRIES = 10_000  # roles, and sessions' projects, kept in memory at most


MEMBER = Prepared(
    ProjectMember,
    lambda project_id, user_id: ProjectMember.select().where(
        ProjectMember.project == project_id, ProjectMember.user == user_id
    ),
    2,
)


def _member_role(project_id: str, user_id: str) -> str | None:
    rows = MEMBER.rows(project_id, user_id)
    return rows[0].role if rows else None


def _session_project(session_id: str) -> str | None:
    rows = SESSION_BY_ID.rows(session_id)
    return rows[0].project_id if rows else None


class NotKept(Exception):
    """Raised by a lookup asked to answer from memory only (`cached_only`) that does not hold
    the answer: the caller then asks again without the flag."""


class Permissions:
    """Answers role questions; raises NOT_FOUND or FORBIDDEN.

    Roles read from the database are kept for `role_ttl` seconds (0: not kept). Membership
    changes made through this server apply at once: `membership_changed`, subscribed to
    `member.*` and `project.deleted`, drops every kept role, and a read that was in flight
    meanwhile is not kept. A session's project never changes, so it is kept without a limit
    in time. Absent members are never kept: a refusal always asks the database again.
    """

    def __init__(
        self, db: Database, role_ttl: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl = role_ttl
        self._clock = clock
        self._roles: OrderedDict[tuple[str, str], tuple[Role, float]] = OrderedDict()
        self._projects: OrderedDict[str, str] = OrderedDict()  # session id -> project id
        self._generation = 0  # counts membership changes

    def membership_changed(self, event: Any = None) -> None:
        """Forget every kept role (and, for a deleted project, which sessions it held)."""
        self._generation += 1
        self._roles.clear()
        if event is not None and event.name == "project.deleted":
            self._projects.clear()

    def kept(self, identity: Identity, project_id: str) -> Role | None:
        """The identity's role in the project if it is kept in memory, else None (which says
        nothing: ask `role`). Never touches the database."""
        kept = self._roles.get((project_id, identity.user_id))
        return kept[0] if kept is not None and kept[1] > self._clock() else None

    async def role(
        self, identity: Identity, project_id: str, cached_only: bool = False
    ) -> Role | None:
        """The identity's role in the project, or None if it may not see the project at all.
        With `cached_only`, never awaits: a role not kept in memory raises NotKept."""
        if identity.project_scope is not None and identity.project_scope != project_id:
            return None
        kept = self.kept(identity, project_id)
        if kept is not None:
            return kept
        if cached_only:
            raise NotKept
        generation = self._generation
        name = await self._db.run(_member_role, project_id, identity.user_id)
        return self._keep_role((project_id, identity.user_id), name, generation)

    def _keep_role(self, key: tuple[str, str], name: str | None, generation: int) -> Role | None:
        role = Role.parse(name) if name else None
        if role is not None and self._ttl > 0 and generation == self._generation:
            self._roles[key] = (role, self._clock() + self._ttl)
            self._roles.move_to_end(key)
            if len(self._roles) > CACHED_ENTRIES:
                self._roles.popitem(last=False)
        return role

    async def require(self, identity: Identity, project_id: str, minimum: Role) -> Role:
        """Return the identity's role if it is at least `minimum`.

        Someone who is not a member gets NOT_FOUND, so project ids cannot be probed; a member
        whose role is too low gets FORBIDDEN.
        """
        return at_least(await self.role(identity, project_id), minimum)

    async def may(self, identity: Identity, project_id: str, minimum: Role) -> bool:
        """Tell whether the identity has at least `minimum` in the project."""
        role = await self.role(identity, project_id)
        return role is not None and role >= minimum

    async def session_project(self, session_id: str, cached_only: bool = False) -> str:
        """The id of the session's project (NOT_FOUND when there is no such session). With
        `cached_only`, never awaits: a session not kept in memory raises NotKept."""
        project_id = self._projects.get(session_id)
        if project_id is not None:
            return project_id
        if cached_only:
            raise NotKept
        project_id = await self._db.run(_session_project, session_id)
        if project_id is None:
            raise NotFound("Session not found")
        self._projects[session_id] = project_id
        if len(self._projects) > CACHED_ENTRIES:
            self._projects.popitem(last=False)
        return project_id

    async def require_session(self, identity: Identity, session_id: str, minimum: Role) -> str:
        """Authorize access to a session through its project; return the project id."""
        project_id = await self.session_project(session_id)
        try:
            await self.require(identity, project_id, minimum)
        except NotFound:
            raise NotFound("Session not found") from None
        return project_id

    @staticmethod
    def require_code_execution(identity: Identity) -> None:
        """Raise FORBIDDEN unless the user may run code (bash, command tools)."""
        if not identity.can_execute_code:
            raise Forbidden("This user may not execute code")


def at_least(role: Role | None, minimum: Role) -> Role:
    """`role` if it is at least `minimum`: NOT_FOUND for no role (not a member), FORBIDDEN for
    one too low."""
    if role is None:
        raise NotFound("Project not found")
    if role < minimum:
        raise Forbidden(f"This needs the {minimum.label} role in the project")
    return role
