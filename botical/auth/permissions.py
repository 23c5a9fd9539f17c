"""Project roles and the one place that answers "may this identity do X on this project"."""

from __future__ import annotations

from enum import IntEnum

from botical.auth.identity import Identity
from botical.db import Database
from botical.db.models import ProjectMember, Session
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


def _member_role(project_id: str, user_id: str) -> str | None:
    row = (
        ProjectMember.select(ProjectMember.role)
        .where(ProjectMember.project == project_id, ProjectMember.user == user_id)
        .first()
    )
    return row.role if row else None


def _session_project(session_id: str) -> str | None:
    row = Session.select(Session.project).where(Session.id == session_id).first()
    return row.project_id if row else None


class Permissions:
    """Answers role questions from the database; raises NOT_FOUND or FORBIDDEN."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def role(self, identity: Identity, project_id: str) -> Role | None:
        """The identity's role in the project, or None if it may not see the project at all."""
        if identity.project_scope is not None and identity.project_scope != project_id:
            return None
        role = await self._db.run(_member_role, project_id, identity.user_id)
        return Role.parse(role) if role else None

    async def require(self, identity: Identity, project_id: str, minimum: Role) -> Role:
        """Return the identity's role if it is at least `minimum`.

        Someone who is not a member gets NOT_FOUND, so project ids cannot be probed; a member
        whose role is too low gets FORBIDDEN.
        """
        role = await self.role(identity, project_id)
        if role is None:
            raise NotFound("Project not found")
        if role < minimum:
            raise Forbidden(f"This needs the {minimum.label} role in the project")
        return role

    async def may(self, identity: Identity, project_id: str, minimum: Role) -> bool:
        """Tell whether the identity has at least `minimum` in the project."""
        role = await self.role(identity, project_id)
        return role is not None and role >= minimum

    async def require_session(self, identity: Identity, session_id: str, minimum: Role) -> str:
        """Authorize access to a session through its project; return the project id."""
        project_id = await self._db.run(_session_project, session_id)
        if project_id is None:
            raise NotFound("Session not found")
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
