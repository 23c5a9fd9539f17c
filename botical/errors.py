"""One exception hierarchy with stable string codes, shared by REST and WebSocket."""

from __future__ import annotations

from typing import Any, ClassVar


class BoticalError(Exception):
    """Base of every error Botical reports to a client."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_payload(self) -> dict[str, Any]:
        """Return the public `{code, message, details?}` body of this error."""
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            payload["details"] = self.details
        return payload


class ParseError(BoticalError):
    code, status, default_message = "PARSE_ERROR", 400, "Body is not valid JSON"


class InvalidFrame(BoticalError):
    code, status, default_message = "INVALID_FRAME", 400, "Invalid frame"


class ValidationError(BoticalError):
    code, status, default_message = "VALIDATION_ERROR", 400, "Invalid parameters"


class MethodNotFound(BoticalError):
    code, status, default_message = "METHOD_NOT_FOUND", 404, "Unknown method"


class Unauthorized(BoticalError):
    code, status, default_message = "UNAUTHORIZED", 401, "Authentication required"


class Forbidden(BoticalError):
    code, status, default_message = "FORBIDDEN", 403, "Not allowed"


class NotFound(BoticalError):
    code, status, default_message = "NOT_FOUND", 404, "Not found"


class Conflict(BoticalError):
    code, status, default_message = "CONFLICT", 409, "Conflict"


class RateLimited(BoticalError):
    code, status, default_message = "RATE_LIMITED", 429, "Too many requests"


class PayloadTooLarge(BoticalError):
    code, status, default_message = "PAYLOAD_TOO_LARGE", 413, "Payload too large"


class Timeout(BoticalError):
    code, status, default_message = "TIMEOUT", 504, "Timed out"


class Cancelled(BoticalError):
    code, status, default_message = "CANCELLED", 409, "Cancelled"


class ProviderError(BoticalError):
    code, status, default_message = "PROVIDER_ERROR", 502, "Model provider failed"


class InternalError(BoticalError):
    """An unexpected failure; the message is fixed so nothing internal leaks."""


class ConfigError(Exception):
    """Invalid configuration; stops start-up. Not sent to clients."""


class PluginError(Exception):
    """A plugin failed to load or registered something twice; stops start-up."""


ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        ParseError,
        InvalidFrame,
        ValidationError,
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
        InternalError,
    )
)


def internal_error() -> InternalError:
    """Return the public stand-in for an unexpected exception."""
    return InternalError()
