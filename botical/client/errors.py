"""The client's errors: one base class, one subclass per server error code, and the
client-side failures (connection lost, could not connect, client closed)."""

from __future__ import annotations

from typing import Any, ClassVar


class ClientError(Exception):
    """An error from the server (`code`, `message`, `details` as sent) or from the client."""

    code: ClassVar[str] = "CLIENT_ERROR"

    def __init__(self, message: str, details: Any = None, code: str | None = None) -> None:
        self.message = message
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]  # an unknown server code keeps its name
        super().__init__(f"{self.code}: {message}")


class ProtocolError(ClientError):
    """The server could not read a frame (`PARSE_ERROR`, `INVALID_FRAME`): a client bug."""

    code = "INVALID_FRAME"


class ValidationFailed(ClientError):
    """Bad params; `details` names each offending field."""

    code = "VALIDATION_ERROR"


class MethodNotFound(ClientError):
    code = "METHOD_NOT_FOUND"


class Unauthorized(ClientError):
    """The credential was refused, expired or revoked; get a new one before reconnecting."""

    code = "UNAUTHORIZED"


class Forbidden(ClientError):
    code = "FORBIDDEN"


class NotFound(ClientError):
    code = "NOT_FOUND"


class Conflict(ClientError):
    code = "CONFLICT"


class RateLimited(ClientError):
    code = "RATE_LIMITED"


class PayloadTooLarge(ClientError):
    code = "PAYLOAD_TOO_LARGE"


class Timeout(ClientError):
    """The server answered `TIMEOUT`, or no answer came within the request's timeout."""

    code = "TIMEOUT"


class Cancelled(ClientError):
    code = "CANCELLED"


class ProviderError(ClientError):
    code = "PROVIDER_ERROR"


class ServerError(ClientError):
    """`INTERNAL_ERROR`: the server failed unexpectedly (the details are in its log)."""

    code = "INTERNAL_ERROR"


class ConnectionLost(ClientError):
    """The socket closed while the request was in flight: it may or may not have run."""

    code = "CONNECTION_LOST"


class ConnectionFailed(ClientError):
    """No connection could be opened (server down, wrong URL, refused upgrade)."""

    code = "CONNECTION_FAILED"


class InvalidURL(ClientError):
    """The server URL given to the client cannot be used (see `botical.client.urls`)."""

    code = "INVALID_URL"


class ClientClosed(ClientError):
    """The client was closed (by `close()`, or for good after an authentication failure)."""

    code = "CLIENT_CLOSED"


_SERVER_ERRORS: tuple[type[ClientError], ...] = (
    ValidationFailed,
    MethodNotFound,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    PayloadTooLarge,
    Timeout,
    Cancelled,
    ProviderError,
    ServerError,
)
_BY_CODE: dict[str, type[ClientError]] = {cls.code: cls for cls in _SERVER_ERRORS}
_BY_CODE["PARSE_ERROR"] = _BY_CODE["INVALID_FRAME"] = ProtocolError


def error_from_payload(payload: Any) -> ClientError:
    """The typed error for a server's `{code, message, details?}`."""
    if not isinstance(payload, dict):
        return ServerError(f"Malformed error payload: {payload!r}")
    code = str(payload.get("code") or "INTERNAL_ERROR")
    message = str(payload.get("message") or code)
    cls = _BY_CODE.get(code, ClientError)
    return cls(message, payload.get("details"), code=code)
