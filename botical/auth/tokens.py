"""JWT access tokens: HS256 with the server secret, required claims, `jti` revocation."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from botical import logredact
from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import RevokedToken
from botical.errors import ConfigError, Unauthorized
from botical.ids import is_id, new_id

ALGORITHM = "HS256"
ISSUER = "botical"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "iss")
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    user_id: str
    expires_at: int  # ms


class TokenService:
    """Issues, verifies and revokes access tokens."""

    def __init__(
        self,
        secret: str,
        db: Database,
        default_ttl: int,
        max_ttl: int,
        bus: EventBus | None = None,
    ) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"the server secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        logredact.add_secret(secret)  # a generated one is read here, not by read_secret
        self._db = db
        self._bus = bus
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl

    def issue(self, user_id: str, ttl: int | None = None) -> IssuedToken:
        """Sign a token for `user_id` valid for `ttl` seconds (capped at the configured maximum)."""
        ttl = self.default_ttl if ttl is None else ttl
        if not 0 < ttl <= self.max_ttl:
            raise ValueError(f"ttl must be between 1 and {self.max_ttl} seconds")
        now = now_ms() // 1000
        jti = new_id("tok")
        claims = {"sub": user_id, "iat": now, "exp": now + ttl, "jti": jti, "iss": ISSUER}
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token, jti, user_id, (now + ttl) * 1000)

    def decode(self, token: str) -> dict[str, Any]:
        """Check signature, algorithm, expiry and required claims; return the claims."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("Invalid token") from None
        if not is_id(claims["sub"], "usr") or not isinstance(claims["jti"], str):
            raise Unauthorized("Invalid token")
        return claims

    async def verify(self, token: str) -> dict[str, Any]:
        """Decode the token and check that it has not been revoked."""
        claims = self.decode(token)
        if await self.is_revoked(claims["jti"]):
            raise Unauthorized("Token revoked")
        return claims

    async def is_revoked(self, jti: str) -> bool:
        """Tell whether the token with this `jti` has been revoked."""
        return await self._db.run(
            lambda: RevokedToken.select().where(RevokedToken.jti == jti).exists()
        )

    async def revoke(self, token: str) -> str:
        """Revoke a (still valid) token; return its `jti`."""
        claims = self.decode(token)
        await self.revoke_jti(claims["jti"], claims["sub"], claims["exp"] * 1000)
        return claims["jti"]

    async def revoke_jti(self, jti: str, user_id: str, expires_at: int) -> None:
        """Revoke the token with this `jti`, and announce it (`credential.revoked`) so that
        its open sockets close at once."""
        await self._db.atomic(_store_revocation, jti, user_id, expires_at)
        if self._bus is not None:
            self._bus.publish(revoked("token", jti, user_id))


def revoked(kind: str, credential_id: str, user_id: str) -> Event:
    """The event of a token's or API key's revocation (not sent to clients)."""
    return Event(
        "credential.revoked", {"kind": kind, "credentialId": credential_id}, user_id=user_id
    )


def _store_revocation(jti: str, user_id: str, expires_at: int) -> None:
    RevokedToken.insert(jti=jti, user=user_id, expires_at=expires_at).on_conflict_ignore().execute()
    RevokedToken.delete().where(RevokedToken.expires_at < now_ms()).execute()


def load_or_create_secret(configured: str, data_dir: Path) -> str:
    """Return the configured secret, or the one in `data_dir/secret`, creating it (0600) once."""
    if configured:
        return configured
    path = data_dir / "secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path} is readable by others (mode {mode:o}); chmod 600 it"
            ) from None
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
