"""The Botical application: the only place where the pieces are wired together."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import pluggy
import tornado.httpserver
import tornado.netutil
import tornado.web

from botical.agent.providers.base import ProviderConfig
from botical.agent.runner import Runner
from botical.auth.apikeys import ApiKeyService
from botical.auth.identity import Authenticator
from botical.auth.permissions import Permissions
from botical.auth.tokens import TokenService, load_or_create_secret
from botical.bus import EventBus
from botical.config import Settings, read_secret
from botical.db import Database
from botical.db.migrations import migrate
from botical.http.base import NotFoundHandler, log_request
from botical.http.bodylimit import DRAIN_LIMIT, BodyLimit
from botical.plugins import (
    DEFAULT_PLUGINS,
    Registration,
    Registry,
    await_me_maybe,
    collect,
    make_plugin_manager,
)
from botical.services.agents import AgentConfig, AgentService
from botical.services.approvals import ApprovalService
from botical.services.custom_tools import CustomToolService
from botical.services.messages import MessageService
from botical.services.projects import ProjectService
from botical.services.sessions import SessionService
from botical.services.todos import TodoService
from botical.services.users import UserService
from botical.tools.base import Tool
from botical.tools.custom import custom_tool
from botical.websocket.broadcaster import Broadcaster, ChannelKind
from botical.websocket.connections import ConnectionRegistry
from botical.websocket.handlers import Dispatcher, MethodSpec
from botical.websocket.server import WebSocketService

log = logging.getLogger(__name__)
SECRET_ENV = "BOTICAL_AUTH_SECRET"


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory readable only by its owner (0700)."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        raise NotADirectoryError(f"data directory {path} is not a directory")
    return path


def _route(pattern: str, handler: type, kwargs: dict[str, Any] | None = None):
    if not (isinstance(handler, type) and issubclass(handler, tornado.web.RequestHandler)):
        raise TypeError(f"route {pattern!r}: handler must be a RequestHandler subclass")
    return pattern, (pattern, handler, kwargs or {})


def _provider(cls: type) -> tuple[str, type]:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not callable(getattr(cls, "stream", None)):
        raise TypeError("a provider is a class with a `name` and a `stream` method")
    return name, cls


def _named(kind: type[Any]) -> Any:
    def make(value: Any) -> tuple[str, Any]:
        if not isinstance(value, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
        return value.name, value

    return make


def _channel(kind: Any) -> tuple[str, Any]:
    if not isinstance(kind, ChannelKind):
        raise TypeError(f"expected a ChannelKind, got {type(kind).__name__}")
    return kind.prefix, kind


def _sourced(registration: Registration) -> Tool:
    """A registered tool, its source `plugin` when a plugin outside Botical registered it."""
    tool: Tool = registration.value
    if registration.plugin not in DEFAULT_PLUGINS and tool.source == "builtin":
        return dataclasses.replace(tool, source="plugin")
    return tool


def provider_config(name: str, settings: Settings) -> ProviderConfig:
    """A provider's configuration, its API key read from the environment or a file."""
    conf = settings.provider(name)
    env = conf.api_key_env or f"{name.upper().replace('-', '_')}_API_KEY"
    return ProviderConfig(
        base_url=conf.base_url,
        api_key=read_secret(env, conf.api_key_file),
        timeout=conf.timeout,
        max_retries=conf.max_retries,
    )


class Botical:
    """Settings, plugins, database, bus and services; `start()` serves them on one port."""

    def __init__(self, settings: Settings, plugins: tuple[object, ...] = ()) -> None:
        self.settings = settings
        self.epoch = secrets.token_hex(8)
        self.pm: pluggy.PluginManager = make_plugin_manager(settings, plugins)
        self.registries: dict[str, Registry] = {}
        self.port: int | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._opened = False

    async def open(self) -> None:
        """Prepare storage and services, without serving (the CLI stops here)."""
        settings = self.settings
        data_dir = prepare_data_dir(settings.data_path)
        self.db = Database(settings.effective_database_url, settings.database_workers)
        await self.db.run(migrate, self.db.peewee)
        secret = read_secret(SECRET_ENV, settings.auth.secret_file)
        secret = load_or_create_secret(secret, data_dir)
        self.bus: EventBus = self.pm.hook.botical_bus_backend(app=self) or EventBus()
        self._collect_registries()
        self.providers = {
            r.name: r.value(provider_config(r.name, settings)) for r in self.registries["providers"]
        }
        self.tools: dict[str, Tool] = {r.name: _sourced(r) for r in self.registries["tools"]}
        self.users = UserService(self.db)
        self.projects = ProjectService(self.db, self.bus, settings.workspace_roots)
        self.tokens = TokenService(
            secret, self.db, settings.auth.token_ttl, settings.auth.max_token_ttl
        )
        self.apikeys = ApiKeyService(self.db, settings.auth.apikey_touch_interval)
        self.auth = Authenticator(self.db, self.tokens, self.apikeys)
        self.permissions = Permissions(self.db, settings.auth.role_cache_ttl)
        for name in ("member.*", "project.deleted"):
            self.bus.subscribe(name, self.permissions.membership_changed)
        self.agents = AgentService.from_configs(
            self.db, (r.value for r in self.registries["agents"])
        )
        self.runner = Runner(self)
        self.sessions = SessionService(
            self.db, self.bus, self.runner.check_names, settings.session_cache_bytes
        )
        self.messages = MessageService(self.db, self.bus)
        self.approvals = ApprovalService(self.db, self.bus, settings.agent.approval_timeout)
        self.todos = TodoService(self.db, self.bus)
        self.custom_tools = CustomToolService(
            self.db,
            self.bus,
            self.tools,
            settings.tools.bash_max_timeout,
            settings.tools.bash_timeout,
        )
        self.connections = ConnectionRegistry()
        self.broadcaster = Broadcaster(
            self.bus,
            self.connections,
            (r.value for r in self.registries["channels"]),
            settings.websocket.replay_buffer,
            settings.websocket.max_tracked_channels,
            settings.websocket.replay_buffer_bytes,
        )
        self.dispatcher = Dispatcher(self, {r.name: r.value for r in self.registries["methods"]})
        self.ws = WebSocketService(self)
        self._opened = True

    async def tools_for(self, project_id: str, include_disabled: bool = False) -> dict[str, Tool]:
        """The tools agents of a project may call, by name: the registered ones, then the
        project's enabled custom tools (and its disabled ones when asked, for listing)."""
        tools = dict(self.tools)
        for record in await self.custom_tools.list(project_id, enabled_only=not include_disabled):
            if record["name"] in tools:  # a plugin installed after the tool was defined
                log.warning("custom tool %s is shadowed by a registered tool", record["id"])
                continue
            tools[record["name"]] = custom_tool(record)
        return tools

    async def todos_for(self, session_id: str) -> list[dict[str, Any]]:
        """A session's todo list."""
        return await self.todos.list(session_id)

    def _collect_registries(self) -> None:
        pm = self.pm
        self.registries = {
            "routes": collect(pm, "botical_register_routes", "route", _route),
            "providers": collect(pm, "botical_register_providers", "provider", _provider),
            "tools": collect(pm, "botical_register_tools", "tool", _named(Tool)),
            "agents": collect(pm, "botical_register_agents", "agent", _named(AgentConfig)),
            "methods": collect(pm, "botical_register_methods", "method", _named(MethodSpec)),
            "channels": collect(pm, "botical_register_channels", "channel", _channel),
        }

    def make_web_app(self) -> tornado.web.Application:
        """The Tornado application with every registered route."""
        routes = [reg.value for reg in self.registries["routes"]]
        ws = self.settings.websocket
        return tornado.web.Application(
            routes,
            botical=self,
            default_handler_class=NotFoundHandler,
            log_function=log_request,
            compress_response=False,
            xsrf_cookies=False,
            websocket_ping_interval=ws.ping_interval or None,
            websocket_ping_timeout=ws.ping_timeout,
            websocket_max_message_size=ws.max_message_size,
        )

    async def start(self, sockets: list[socket.socket] | None = None) -> None:
        """Open storage, run start-up hooks and listen on the configured host and port."""
        if not self._opened:
            await self.open()
        interrupted = await self.runner.recover()
        if interrupted:
            log.info(
                "marked %d answers left unfinished by the last run as interrupted", interrupted
            )
        self.web = self.make_web_app()
        await self.bus.start()
        self.broadcaster.start()
        self.ws.start()
        for result in self.pm.hook.botical_startup(app=self):
            await await_me_maybe(result)
        if sockets is None:
            sockets = tornado.netutil.bind_sockets(self.settings.port, self.settings.host)
        self._server = tornado.httpserver.HTTPServer(
            BodyLimit(self.web, self.settings.max_body_size), max_body_size=DRAIN_LIMIT
        )
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("Botical listening on http://%s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close connections, run shutdown hooks and close the database."""
        if self._server is None and not self._opened:
            return  # already stopped: shutdown hooks run once
        timeout = self.settings.shutdown_timeout
        if self._server is not None:
            self._server.stop()
            # Runs first: each client sees its answer end (interrupted) before the 1001 close,
            # so what it streamed is exactly what is stored.
            await self.runner.shutdown()
            await self.ws.shutdown(min(timeout, 5.0))
            try:
                await asyncio.wait_for(self._server.close_all_connections(), timeout)
            except TimeoutError:
                log.warning("connections still open after %.1fs; closing anyway", timeout)
            self._server = None
        for result in self.pm.hook.botical_shutdown(app=self):
            try:
                await asyncio.wait_for(await_me_maybe(result), timeout)
            except Exception:
                log.exception("a plugin's shutdown hook failed")
        if self._opened:
            for provider in self.providers.values():
                close = getattr(provider, "aclose", None)
                if close is not None:
                    await close()
            await self.bus.stop()
            self.db.close()
            self._opened = False

    @property
    def url(self) -> str:
        """Base URL the server listens on."""
        return f"http://{self.settings.host}:{self.port}"
