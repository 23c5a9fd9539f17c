"""Projects and their members."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peewee as pw

from botical.auth.identity import Identity
from botical.auth.permissions import Role
from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import Project, ProjectMember, User
from botical.errors import Conflict, Forbidden, NotFound, ValidationError
from botical.ids import new_id
from botical.services.pagination import page


def project_to_dict(project: Project, role: str | None = None) -> dict[str, Any]:
    data = {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "path": project.path,
        "ownerId": project.owner_id,
        "createdAt": project.created_at,
        "updatedAt": project.updated_at,
    }
    if role is not None:
        data["role"] = role
    return data


def member_to_dict(member: ProjectMember) -> dict[str, Any]:
    return {
        "projectId": member.project_id,
        "userId": member.user_id,
        "userName": member.user.name,
        "role": member.role,
        "createdAt": member.created_at,
    }


def resolve_workspace(path: str, identity: Identity, roots: Sequence[str]) -> str:
    """Resolve a project directory: it must exist, and lie under a workspace root for non-admins."""
    try:
        resolved = Path(path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: NUL or unencodable characters
        raise ValidationError(details={"path": ["Directory does not exist."]}) from None
    if not resolved.is_dir():
        raise ValidationError(details={"path": ["Not a directory."]})
    if identity.is_admin:
        return str(resolved)
    for root in roots:
        if resolved.is_relative_to(Path(root).expanduser().resolve()):
            return str(resolved)
    raise Forbidden("Only server admins may use a directory outside the workspace roots")


def make_default_workspace(workspaces: Path, project_id: str) -> str:
    """Create `<workspaces>/<project_id>`, readable only by the server's user (0700)."""
    path = workspaces / project_id
    workspaces.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    return str(path.resolve())


class ProjectService:
    """Projects and members. A project created without a path gets a default workspace
    under `workspaces` (`<data_dir>/workspaces/<id>`), so its agents' tools work at once."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        workspace_roots: Sequence[str] = (),
        workspaces: Path | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._roots = tuple(workspace_roots)
        self._workspaces = workspaces

    def _publish(self, name: str, data: dict[str, Any], project_id: str, user_id: str | None):
        self._bus.publish(Event(name, data, project_id=project_id, user_id=user_id))

    async def create(
        self, identity: Identity, name: str, description: str = "", path: str | None = None
    ) -> dict[str, Any]:
        """Create a project owned by the caller."""
        if identity.project_scope is not None:
            raise Forbidden("A project-scoped API key cannot create projects")
        resolved = resolve_workspace(path, identity, self._roots) if path else None
        project_id = new_id("prj")

        def insert() -> Project:
            workspace = resolved
            if workspace is None and self._workspaces is not None:
                workspace = make_default_workspace(self._workspaces, project_id)
            project = Project.create(
                id=project_id,
                name=name,
                description=description,
                path=workspace,
                owner=identity.user_id,
            )
            ProjectMember.create(project=project.id, user=identity.user_id, role=Role.OWNER.label)
            return project

        data = project_to_dict(await self._db.atomic(insert), Role.OWNER.label)
        self._publish("project.created", {"project": data}, data["id"], identity.user_id)
        return data

    async def list_for(
        self, identity: Identity, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """The projects the caller is a member of, oldest first."""

        def select() -> dict[str, Any]:
            query = (
                Project.select(Project, ProjectMember.role)
                .join(ProjectMember)
                .where(ProjectMember.user == identity.user_id)
            )
            if identity.project_scope is not None:
                query = query.where(Project.id == identity.project_scope)
            return page(
                query,
                Project.id,
                "prj",
                limit,
                cursor,
                lambda p: project_to_dict(p, p.projectmember.role),
            )

        return await self._db.run(select)

    async def get(self, project_id: str, role: Role | None = None) -> dict[str, Any]:
        project = await self._db.run(Project.get_or_none, Project.id == project_id)
        if project is None:
            raise NotFound("Project not found")
        return project_to_dict(project, role.label if role else None)

    async def update(
        self, identity: Identity, project_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change name, description or path."""
        if changes.get("path"):
            changes["path"] = resolve_workspace(changes["path"], identity, self._roots)

        def apply() -> Project:
            project = Project.get_or_none(Project.id == project_id)
            if project is None:
                raise NotFound("Project not found")
            for key, value in changes.items():
                setattr(project, key, value)
            project.updated_at = now_ms()
            project.save()
            return project

        data = project_to_dict(await self._db.atomic(apply))
        self._publish("project.updated", {"project": data}, project_id, identity.user_id)
        return data

    async def delete(self, identity: Identity, project_id: str) -> None:
        """Delete the project and everything in it."""

        def remove() -> list[str]:
            members = [
                m.user_id for m in ProjectMember.select().where(ProjectMember.project == project_id)
            ]
            if not Project.delete().where(Project.id == project_id).execute():
                raise NotFound("Project not found")
            return members

        members = await self._db.atomic(remove)
        for user_id in members:
            self._publish("project.deleted", {"projectId": project_id}, project_id, user_id)

    async def members(self, project_id: str) -> dict[str, Any]:
        def select() -> list[ProjectMember]:
            return list(
                ProjectMember.select(ProjectMember, User)
                .join(User)
                .where(ProjectMember.project == project_id)
                .order_by(ProjectMember.created_at, User.name)
            )

        return {
            "items": [member_to_dict(m) for m in await self._db.run(select)],
            "nextCursor": None,
        }

    async def add_member(
        self, actor_role: Role, project_id: str, user_ref: dict[str, str], role: Role
    ) -> dict[str, Any]:
        """Add a user by id or name with `role`; only an owner may add another owner."""
        _check_grant(actor_role, role)

        def insert() -> ProjectMember:
            user = _find_user(user_ref)
            if (
                ProjectMember.select()
                .where(ProjectMember.project == project_id, ProjectMember.user == user.id)
                .exists()
            ):
                raise Conflict("User is already a member")
            try:
                ProjectMember.create(project=project_id, user=user.id, role=role.label)
            except pw.IntegrityError:  # a concurrent request added the same user first
                raise Conflict("User is already a member") from None
            return _member(project_id, user.id)

        data = member_to_dict(await self._db.atomic(insert))
        self._publish("member.added", {"member": data}, project_id, data["userId"])
        return data

    async def set_role(
        self, actor_role: Role, project_id: str, user_id: str, role: Role
    ) -> dict[str, Any]:
        """Change a member's role; the last owner cannot be demoted."""
        _check_grant(actor_role, role)

        def apply() -> ProjectMember:
            member = _member(project_id, user_id)
            _check_touch(actor_role, member)
            if member.role == Role.OWNER.label and role != Role.OWNER:
                _keep_an_owner(project_id)
            member.role = role.label
            ProjectMember.update(role=role.label).where(
                ProjectMember.project == project_id, ProjectMember.user == user_id
            ).execute()
            return member

        data = member_to_dict(await self._db.atomic(apply))
        self._publish("member.updated", {"member": data}, project_id, user_id)
        return data

    async def remove_member(
        self, identity: Identity, actor_role: Role, project_id: str, user_id: str
    ) -> None:
        """Remove a member (admins remove others, anyone may leave); never the last owner."""

        def remove() -> None:
            member = _member(project_id, user_id)
            if user_id != identity.user_id:
                if actor_role < Role.ADMIN:
                    raise Forbidden("This needs the admin role in the project")
                _check_touch(actor_role, member)
            if member.role == Role.OWNER.label:
                _keep_an_owner(project_id)
            ProjectMember.delete().where(
                ProjectMember.project == project_id, ProjectMember.user == user_id
            ).execute()

        await self._db.atomic(remove)
        self._publish(
            "member.removed", {"projectId": project_id, "userId": user_id}, project_id, user_id
        )


def _check_grant(actor_role: Role, role: Role) -> None:
    if role == Role.OWNER and actor_role < Role.OWNER:
        raise Forbidden("Only an owner may make someone an owner")


def _check_touch(actor_role: Role, member: ProjectMember) -> None:
    if member.role == Role.OWNER.label and actor_role < Role.OWNER:
        raise Forbidden("Only an owner may change another owner")


def _keep_an_owner(project_id: str) -> None:
    if Project._meta.database.for_update:
        # PostgreSQL: serialize owner changes per project, else two owners could each demote
        # themselves concurrently, both seeing the other. SQLite has a single writer anyway.
        query = Project.select(Project.id).where(Project.id == project_id)
        query.for_update("FOR NO KEY UPDATE").execute()  # type: ignore[arg-type]
    owners = (
        ProjectMember.select()
        .where(ProjectMember.project == project_id, ProjectMember.role == Role.OWNER.label)
        .count()
    )
    if owners <= 1:
        raise Conflict("A project must keep at least one owner")


def _member(project_id: str, user_id: str) -> ProjectMember:
    member = (
        ProjectMember.select(ProjectMember, User)
        .join(User)
        .where(ProjectMember.project == project_id, ProjectMember.user == user_id)
        .first()
    )
    if member is None:
        raise NotFound("Member not found")
    return member


def _find_user(ref: dict[str, str]) -> User:
    if "userId" in ref:
        user = User.get_or_none(User.id == ref["userId"])
    else:
        user = User.get_or_none(User.name == ref["userName"])
    if user is None:
        raise NotFound("User not found")
    return user
