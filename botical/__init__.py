"""Botical: a self-hosted server for AI agents that people talk to in real time.

The public surface for plugin authors: everything a plugin needs is importable from here
(hooks, methods and scopes, roles, channels and events, tools, providers, agents, REST
handlers, errors), so a
plugin never reaches into Botical's modules. See docs/plugins.md.
"""

from botical.agent.providers.base import (
    Finish,
    ModelRequest,
    ProviderConfig,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
)
from botical.auth.identity import Identity
from botical.auth.permissions import MANAGE, OWN, READ, WRITE, NotKept, Role
from botical.bus import Event
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
from botical.http.base import ApiHandler
from botical.ids import check_id
from botical.methods import MethodContext, Scope, method, rest
from botical.schema import Bool, Int
from botical.services.agents import AgentConfig, Rule
from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.websocket.broadcaster import ChannelKind

__version__ = "0.1.0"

__all__ = [
    "MANAGE",
    "OWN",
    "READ",
    "WRITE",
    "AgentConfig",
    "ApiHandler",
    "Bool",
    "BoticalError",
    "ChannelKind",
    "Conflict",
    "Event",
    "Finish",
    "Forbidden",
    "Identity",
    "Int",
    "MethodContext",
    "ModelRequest",
    "NotFound",
    "NotKept",
    "ProviderConfig",
    "ProviderError",
    "RateLimited",
    "ReasoningDelta",
    "Role",
    "Rule",
    "Scope",
    "TextDelta",
    "Tool",
    "ToolCallRequest",
    "ToolContext",
    "ToolFailure",
    "ToolResult",
    "Unauthorized",
    "ValidationError",
    "__version__",
    "check_id",
    "hookimpl",
    "method",
    "rest",
]
