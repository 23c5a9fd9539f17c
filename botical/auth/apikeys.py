"""API keys: `bk_` + random, stored only as a SHA-256 hash, optionally scoped to one project."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from botical.auth.tokens import revoked
from botical.bus import EventBus
from botical.db import Database, now_ms
from botical.db.models import ApiKey, Project, User
from botical.errors import NotFound, Unauthorized
from botical.ids import new_id

PREFIX = "bk_"


def hash_key(key: str) -> str:
    """The stored form of a key. Keys carry 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class VerifiedKey:
    key_id: str
    user_id: str
    project_id: str | None


def key_to_dict(key: ApiKey) -> dict[str, Any]:
    """Public view of a key: never the key or its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "hint": key.hint,
        "userId": key.user_id,
        "projectId": key.project_id,
        "createdAt": key.created_at,
        "lastUsedAt": key.last_used_at,
        "revokedAt": key.revoked_at,
    }


class ApiKeyService:
    """Creates, verifies and revokes API keys."""

    def __init__(self, db: Database, touch_interval: int = 60, bus: EventBus | None = None) -> None:
        self._db = db
        self._touch_ms = touch_interval * 1000
        self._bus = bus

    async def create(
        self, user_id: str, project_id: str | None = None, name: str = ""
    ) -> tuple[dict[str, Any], str]:
        """Create a key; return its public view and the plaintext, which is shown only once."""
        plaintext = PREFIX + secrets.token_urlsafe(32)

        def insert() -> ApiKey:
            if not User.select().where(User.id == user_id).exists():
                raise NotFound("user not found")
            if project_id and not Project.select().where(Project.id == project_id).exists():
                raise NotFound("project not found")
            return ApiKey.create(
                id=new_id("key"),
                user=user_id,
                project=project_id,
                name=name,
                key_hash=hash_key(plaintext),
                hint=plaintext[:7],
            )

        key = await self._db.atomic(insert)
        return key_to_dict(key), plaintext

    async def verify(self, plaintext: str) -> VerifiedKey:
        """Return who a key belongs to; unknown or revoked keys are UNAUTHORIZED."""
        if not plaintext.startswith(PREFIX) or len(plaintext) > 128:
            raise Unauthorized("Invalid API key")
        digest = hash_key(plaintext)
        touch_ms = self._touch_ms

        def lookup() -> ApiKey | None:
            key = ApiKey.get_or_none(ApiKey.key_hash == digest)
            if key is None or key.revoked_at is not None:
                return None
            now = now_ms()
            if key.last_used_at is None or now - key.last_used_at >= touch_ms:
                ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()
            return key

        key = await self._db.run(lookup)
        if key is None:
            raise Unauthorized("Invalid API key")
        return VerifiedKey(key.id, key.user_id, key.project_id)

    async def is_active(self, key_id: str) -> bool:
        """Tell whether the key still exists and is not revoked."""
        return await self._db.run(
            lambda: ApiKey.select().where(ApiKey.id == key_id, ApiKey.revoked_at.is_null()).exists()
        )

    async def revoke(self, key_id: str, user_id: str | None = None) -> dict[str, Any]:
        """Revoke a key (only the owner's when `user_id` is given); revoking twice is harmless.
        Announces `credential.revoked`, so the key's open sockets close at once."""

        def update() -> ApiKey:
            query = ApiKey.select().where(ApiKey.id == key_id)
            if user_id is not None:
                query = query.where(ApiKey.user == user_id)
            key = query.first()
            if key is None:
                raise NotFound("API key not found")
            if key.revoked_at is None:
                key.revoked_at = now_ms()
                key.save()
            return key

        key = key_to_dict(await self._db.atomic(update))
        if self._bus is not None:
            self._bus.publish(revoked("apikey", key["id"], key["userId"]))
        return key

    async def list_for(self, user_id: str) -> list[dict[str, Any]]:
        """The user's keys, newest first."""

        def select() -> list[ApiKey]:
            return list(ApiKey.select().where(ApiKey.user == user_id).order_by(ApiKey.id.desc()))

        return [key_to_dict(k) for k in await self._db.run(select)]
