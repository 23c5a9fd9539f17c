"""Users: created by an operator (CLI) or on first start as the local admin."""

from __future__ import annotations

import re
from typing import Any

from botical.db import Database
from botical.db.models import User
from botical.errors import Conflict, NotFound, ValidationError
from botical.ids import new_id

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCAL_ADMIN = "admin"


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "isAdmin": user.is_admin,
        "canExecuteCode": user.can_execute_code,
        "createdAt": user.created_at,
    }


class UserService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str, is_admin: bool = False, can_execute_code: bool = False):
        """Create a user; CONFLICT if the name is taken."""
        if not NAME_PATTERN.match(name):
            raise ValidationError(details={"name": ["Use 1-64 letters, digits, '_', '.', '-'."]})

        def insert() -> User:
            if User.select().where(User.name == name).exists():
                raise Conflict(f"user {name!r} already exists")
            return User.create(
                id=new_id("usr"), name=name, is_admin=is_admin, can_execute_code=can_execute_code
            )

        return user_to_dict(await self._db.atomic(insert))

    async def get_by_name(self, name: str) -> dict[str, Any]:
        """The user called `name`; NOT_FOUND otherwise."""
        user = await self._db.run(User.get_or_none, User.name == name)
        if user is None:
            raise NotFound(f"user {name!r} not found")
        return user_to_dict(user)

    async def get(self, user_id: str) -> dict[str, Any]:
        user = await self._db.run(User.get_or_none, User.id == user_id)
        if user is None:
            raise NotFound("user not found")
        return user_to_dict(user)

    async def count(self) -> int:
        return await self._db.run(lambda: User.select().count())

    async def ensure_local_admin(self) -> tuple[dict[str, Any], bool]:
        """Return the local admin, creating it when the database has no user yet."""

        def get_or_create() -> tuple[User, bool]:
            admin = User.get_or_none(User.name == LOCAL_ADMIN)
            if admin is not None:
                return admin, False
            if User.select().exists():
                first_admin = User.select().where(User.is_admin).order_by(User.id).first()
                return first_admin, False
            return User.create(
                id=new_id("usr"), name=LOCAL_ADMIN, is_admin=True, can_execute_code=True
            ), True

        user, created = await self._db.atomic(get_or_create)
        return (user_to_dict(user) if user else {}), created
