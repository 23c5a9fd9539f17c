"""Every hook Botical calls. Plugins implement them with `botical.hookimpl`.

Registration hooks receive a `register` callable; what a plugin registers is tagged with the
plugin's name, and a duplicate name fails at start-up naming both plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.bus import EventBus

hookspec = pluggy.HookspecMarker("botical")
hookimpl = pluggy.HookimplMarker("botical")

Register = Callable[..., None]


@hookspec
def botical_register_methods(register: Register) -> None:
    """Called once at start-up: register WebSocket methods with `register(method)`."""


@hookspec
def botical_register_channels(register: Register) -> None:
    """Called once at start-up: register channel kinds with `register(channel)`."""


@hookspec
def botical_register_tools(register: Register) -> None:
    """Called once at start-up: register agent tools with `register(tool)`."""


@hookspec
def botical_register_providers(register: Register) -> None:
    """Called once at start-up: register model providers with `register(provider)`."""


@hookspec
def botical_register_agents(register: Register) -> None:
    """Called once at start-up: register built-in agent configurations with `register(agent)`."""


@hookspec
def botical_register_routes(register: Register) -> None:
    """Called once at start-up: add HTTP routes with `register(pattern, handler_class)`."""


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
def botical_connection_opened(app: Botical, connection: Any) -> Any:
    """Called when an authenticated WebSocket connection is ready."""


@hookspec
def botical_connection_closed(app: Botical, connection: Any) -> Any:
    """Called after a WebSocket connection has closed and been removed from every registry."""
