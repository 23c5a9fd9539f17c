"""Botical: a self-hosted server for AI agents that people talk to in real time.

The public surface for plugin authors: `hookimpl`, the error classes, and `__version__`.
"""

from botical.errors import (
    BoticalError,
    Conflict,
    Forbidden,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    ValidationError,
)
from botical.hookspecs import hookimpl
from botical.websocket.handlers import MethodContext, method

__version__ = "0.1.0"

__all__ = [
    "BoticalError",
    "Conflict",
    "Forbidden",
    "MethodContext",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "Unauthorized",
    "ValidationError",
    "__version__",
    "hookimpl",
    "method",
]
