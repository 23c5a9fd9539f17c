"""Authentication at the upgrade (before any socket opens) and the Origin policy."""

from __future__ import annotations

from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest

from botical.auth.cookie import cookie_credential
from botical.auth.identity import Authenticator, Identity, bearer_token
from botical.websocket.protocol import TOKEN_SUBPROTOCOL_PREFIX


def request_credential(request: HTTPServerRequest) -> str | None:
    """The token from `?token=`, `Authorization: Bearer`, a `botical.token.<t>` subprotocol,
    or else the console's sign-in cookie (from this server's own pages only)."""
    values = request.query_arguments.get("token")
    if values:
        return values[0].decode("utf-8", errors="replace")
    header = bearer_token(request.headers.get("Authorization"))
    if header:
        return header
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return proto[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return cookie_credential(request, upgrade=True)


async def authenticate(request: HTTPServerRequest, auth: Authenticator) -> Identity:
    """Verify the upgrade request's credential; UNAUTHORIZED when missing or invalid."""
    return await auth.authenticate(request_credential(request))


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """No Origin (non-browser clients) and same-origin are allowed; others must be listed."""
    if not origin:
        return True
    if origin.rstrip("/") in allowed or "*" in allowed:
        return True
    parsed = urlsplit(origin)
    return bool(host) and parsed.netloc.lower() == (host or "").lower()
