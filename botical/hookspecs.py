"""Every hook Botical calls. Plugins implement them with `botical.hookimpl`.

Registration hooks receive a `register` callable; what a plugin registers is tagged with the
plugin's name, and a duplicate name fails at start-up naming both plugins.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.bus import EventBus
    from botical.methods import Handler, MethodSpec, Scope
    from botical.services.agents import AgentConfig
    from botical.tools.base import Tool
    from botical.websocket.broadcaster import ChannelKind
    from botical.websocket.connections import Connection

hookspec = pluggy.HookspecMarker("botical")
hookimpl = pluggy.HookimplMarker("botical")


class RegisterMethods(Protocol):
    def __call__(self, target: Handler | ModuleType, /) -> None:
        """Register a function declared with `@method`, or every one a module declares."""


class RegisterScope(Protocol):
    def __call__(self, scope: Scope, /) -> None: ...


class RegisterChannel(Protocol):
    def __call__(self, kind: ChannelKind, /) -> None: ...


class RegisterTool(Protocol):
    def __call__(self, tool: Tool, /) -> None: ...


class RegisterProvider(Protocol):
    def __call__(self, provider: type, /) -> None: ...


class RegisterAgent(Protocol):
    def __call__(self, config: AgentConfig, /) -> None: ...


class RegisterRoute(Protocol):
    def __call__(
        self, pattern: str, handler: type, kwargs: dict[str, Any] | None = None, /
    ) -> None: ...


@hookspec
def botical_register_methods(register: RegisterMethods) -> None:
    """Called once at start-up: register methods with `register(function_or_module)`."""


@hookspec
def botical_register_scopes(register: RegisterScope) -> None:
    """Called once at start-up: register how methods find their project, `register(scope)`."""


@hookspec
def botical_register_channels(register: RegisterChannel) -> None:
    """Called once at start-up: register channel kinds with `register(channel)`."""


@hookspec
def botical_register_tools(register: RegisterTool) -> None:
    """Called once at start-up: register agent tools with `register(tool)`."""


@hookspec
def botical_register_providers(register: RegisterProvider) -> None:
    """Called once at start-up: register model providers with `register(provider)`."""


@hookspec
def botical_register_agents(register: RegisterAgent) -> None:
    """Called once at start-up: register built-in agent configurations with `register(agent)`."""


@hookspec
def botical_register_routes(register: RegisterRoute, methods: Mapping[str, MethodSpec]) -> None:
    """Called once at start-up, after methods: add HTTP routes with `register(pattern,
    handler_class[, kwargs])`; `methods` are every registered method, by name."""


@hookspec(firstresult=True)
def botical_bus_backend(app: Botical) -> EventBus | None:
    """Return the event bus to use instead of the in-process one; the first answer wins."""


@hookspec
def botical_startup(app: Botical) -> Any:
    """Called after the database is ready and before the server accepts connections."""


@hookspec
def botical_shutdown(app: Botical) -> Any:
    """Called while the server stops, before the database is closed."""


@hookspec
def botical_connection_opened(app: Botical, connection: Connection) -> Any:
    """Called when an authenticated WebSocket connection is ready."""


@hookspec
def botical_connection_closed(app: Botical, connection: Connection) -> Any:
    """Called after a WebSocket connection has closed and been removed from every registry."""
