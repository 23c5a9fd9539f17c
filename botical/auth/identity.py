"""Who is calling: a verified identity, built only from a token or an API key."""

from __future__ import annotations

from dataclasses import dataclass

from botical.auth.apikeys import PREFIX as APIKEY_PREFIX
from botical.auth.apikeys import ApiKeyService
from botical.auth.tokens import TokenService
from botical.db import Database, now_ms
from botical.db.models import User
from botical.errors import Unauthorized

MAX_CREDENTIAL_LENGTH = 4096


@dataclass(frozen=True)
class Identity:
    """The caller. `project_scope` limits an API key to one project."""

    user_id: str
    name: str
    is_admin: bool
    can_execute_code: bool
    kind: str  # "token" or "apikey"
    credential_id: str  # the token's jti or the key's id
    project_scope: str | None = None
    expires_at: int | None = None  # ms; None for API keys

    def to_dict(self) -> dict[str, object]:
        """Public view, as `GET /api/me` shows it."""
        return {
            "user": {
                "id": self.user_id,
                "name": self.name,
                "isAdmin": self.is_admin,
                "canExecuteCode": self.can_execute_code,
            },
            "auth": {
                "kind": self.kind,
                "projectId": self.project_scope,
                "expiresAt": self.expires_at,
            },
        }


def bearer_token(header: str | None) -> str | None:
    """Extract the credential from an `Authorization: Bearer ...` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Authenticator:
    """Turns a credential (JWT or API key) into an Identity, or raises UNAUTHORIZED."""

    def __init__(self, db: Database, tokens: TokenService, apikeys: ApiKeyService) -> None:
        self._db = db
        self.tokens = tokens
        self.apikeys = apikeys

    async def authenticate(self, credential: str | None) -> Identity:
        """Verify `credential` and return the identity it proves."""
        if not credential:
            raise Unauthorized("Authentication required")
        if len(credential) > MAX_CREDENTIAL_LENGTH:
            raise Unauthorized("Invalid token")
        if credential.startswith(APIKEY_PREFIX):
            key = await self.apikeys.verify(credential)
            user = await self._user(key.user_id)
            return _identity(user, "apikey", key.key_id, key.project_id, None)
        claims = await self.tokens.verify(credential)
        user = await self._user(claims["sub"])
        return _identity(user, "token", claims["jti"], None, claims["exp"] * 1000)

    async def still_valid(self, identity: Identity) -> bool:
        """Tell whether the credential behind `identity` is still unexpired and unrevoked."""
        if identity.kind == "apikey":
            return await self.apikeys.is_active(identity.credential_id)
        if identity.expires_at is not None and identity.expires_at <= now_ms():
            return False
        return not await self.tokens.is_revoked(identity.credential_id)

    async def _user(self, user_id: str) -> User:
        user = await self._db.run(User.get_or_none, User.id == user_id)
        if user is None:
            raise Unauthorized("Unknown user")
        return user


def _identity(
    user: User, kind: str, credential_id: str, scope: str | None, expires_at: int | None
) -> Identity:
    return Identity(
        user_id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        can_execute_code=user.can_execute_code,
        kind=kind,
        credential_id=credential_id,
        project_scope=scope,
        expires_at=expires_at,
    )


def operator_identity(user: dict[str, object]) -> Identity:
    """The operator at the command line, acting for `user` with a server admin's rights."""
    return Identity(
        user_id=str(user["id"]),
        name=str(user["name"]),
        is_admin=True,
        can_execute_code=bool(user["canExecuteCode"]),
        kind="cli",
        credential_id="cli",
    )
