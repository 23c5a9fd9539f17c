"""The Botical application: the only place where the pieces are wired together."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import tornado.httpserver
import tornado.netutil
import tornado.web

import botical
from botical.agent.catalog import Catalog
from botical.agent.providers.base import Provider, ProviderConfig
from botical.agent.providers.check import check_models
from botical.agent.runner import Runner
from botical.agent.runs import RunBook, RunLeases
from botical.agent.steps import RunServices, Steps
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
from botical.http.metrics import MetricsAccess, metrics_web_app
from botical.ids import new_id
from botical.methods import MethodSpec, Scope, methods_of
from botical.methods.dispatch import Dispatcher
from botical.metrics import Metrics
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
from botical.services.branches import BranchService
from botical.services.custom_tools import CustomToolService
from botical.services.messages import MessageService
from botical.services.projects import ProjectService
from botical.services.sessions import SessionService
from botical.services.todos import TodoService
from botical.services.usage import Pricing, UsageService
from botical.services.users import UserService
from botical.tools.base import Tool
from botical.tools.mcp import McpServers
from botical.tools.toolbox import Toolbox
from botical.tracing import Tracing
from botical.websocket.broadcaster import ChannelKind, ChannelRouter
from botical.websocket.connections import ConnectionRegistry
from botical.websocket.frames import FrameHandler
from botical.websocket.lifecycle import ConnectionService

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


Pairs = list[tuple[str, Any]]


def _route(pattern: str, handler: type, kwargs: dict[str, Any] | None = None) -> Pairs:
    if not (isinstance(handler, type) and issubclass(handler, tornado.web.RequestHandler)):
        raise TypeError(f"route {pattern!r}: handler must be a RequestHandler subclass")
    return [(pattern, (pattern, handler, kwargs or {}))]


def _provider(cls: type) -> Pairs:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not callable(getattr(cls, "stream", None)):
        raise TypeError("a provider is a class with a `name` and a `stream` method")
    return [(name, cls)]


def _named(kind: type[Any]) -> Callable[[Any], Pairs]:
    def make(value: Any) -> Pairs:
        if not isinstance(value, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
        return [(value.name, value)]

    return make


def _channel(kind: Any) -> Pairs:
    if not isinstance(kind, ChannelKind):
        raise TypeError(f"expected a ChannelKind, got {type(kind).__name__}")
    return [(kind.prefix, kind)]


def _methods(target: Any) -> Pairs:
    if isinstance(target, MethodSpec):
        found = [target]
    elif callable(target) or isinstance(target, ModuleType):
        found = methods_of(target)
    else:
        found = []
    if not found:
        raise TypeError("expected a function declared with @method, or a module declaring some")
    return [(spec.name, spec) for spec in found]


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
    """Settings, plugins, database, bus and services; `start()` serves them on one port.

    `open()` builds everything in dependency order: storage and the bus, the plugin
    registries, auth, the services, the agent runtime, then the real-time layer. Each
    attribute below is set by one of those steps.
    """

    db: Database
    bus: EventBus
    users: UserService
    tokens: TokenService
    apikeys: ApiKeyService
    auth: Authenticator
    permissions: Permissions
    providers: dict[str, Provider]
    agents: AgentService
    catalog: Catalog
    projects: ProjectService
    sessions: SessionService
    messages: MessageService
    branches: BranchService
    usage: UsageService
    approvals: ApprovalService
    todos: TodoService
    custom_tools: CustomToolService
    toolbox: Toolbox
    runner: Runner
    connections: ConnectionRegistry
    broadcaster: ChannelRouter
    dispatcher: Dispatcher
    lifecycle: ConnectionService
    frames: FrameHandler
    metrics_access: MetricsAccess

    def __init__(self, settings: Settings, plugins: tuple[object, ...] = ()) -> None:
        self.settings = settings
        self.node = new_id("node")  # this process, among the nodes sharing a database
        self.pm: pluggy.PluginManager = make_plugin_manager(settings, plugins)
        self.registries: dict[str, Registry] = {}
        self.port: int | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._metrics_server: tornado.httpserver.HTTPServer | None = None
        self._opened = False
        self.metrics = Metrics.create(settings.metrics.enabled)  # this app's registry
        self.tracing = Tracing.create(settings.tracing)  # this app's tracer provider

    async def open(self) -> None:
        """Prepare storage and services, without serving (the CLI stops here)."""
        data_dir = prepare_data_dir(self.settings.data_path)
        settings = self.settings
        self.metrics_access = MetricsAccess.from_settings(settings.metrics)
        self.db = Database(settings.effective_database_url, settings.database_workers, self.metrics)
        await self.db.run(migrate, self.db.peewee)
        secret = read_secret(SECRET_ENV, settings.auth.secret_file)
        self.bus = self.pm.hook.botical_bus_backend(app=self) or EventBus()
        self.bus.metrics = self.metrics  # before the broadcaster, which counts with it
        self._collect_registries()
        self._open_auth(load_or_create_secret(secret, data_dir))
        self._open_services()
        self._open_agents()
        self._open_realtime()
        self._watch()
        self._opened = True

    def _collect_registries(self) -> None:
        pm = self.pm
        methods = collect(pm, "botical_register_methods", "method", _methods)
        self.registries = {
            "methods": methods,
            "scopes": collect(pm, "botical_register_scopes", "scope", _named(Scope)),
            "channels": collect(pm, "botical_register_channels", "channel", _channel),
            "tools": collect(pm, "botical_register_tools", "tool", _named(Tool)),
            "providers": collect(pm, "botical_register_providers", "provider", _provider),
            "agents": collect(pm, "botical_register_agents", "agent", _named(AgentConfig)),
        }
        by_name = {r.name: r.value for r in methods}
        self.registries["routes"] = collect(
            pm, "botical_register_routes", "route", _route, methods=by_name
        )

    def _open_auth(self, secret: str) -> None:
        auth = self.settings.auth
        self.users = UserService(self.db)
        self.tokens = TokenService(secret, self.db, auth.token_ttl, auth.max_token_ttl, self.bus)
        self.apikeys = ApiKeyService(self.db, auth.apikey_touch_interval, self.bus)
        self.auth = Authenticator(self.db, self.tokens, self.apikeys)
        self.permissions = Permissions(self.db, auth.role_cache_ttl)
        for name in ("member.*", "project.deleted"):  # on any node
            self.bus.subscribe(name, self.permissions.membership_changed, cluster=True)

    def _open_services(self) -> None:
        settings, db, bus = self.settings, self.db, self.bus
        self.connections = ConnectionRegistry()
        kinds = (r.value for r in self.registries["channels"])
        self.broadcaster = bus.broadcaster(self.connections, kinds, settings.websocket)
        self.providers = {
            r.name: r.value(provider_config(r.name, settings)) for r in self.registries["providers"]
        }
        check_models(settings, self.providers, self.registries["agents"])
        self.agents = AgentService.from_configs(db, (r.value for r in self.registries["agents"]))
        self.catalog = Catalog(self.agents, self.providers, settings.agent.default_model)
        workspaces = settings.data_path / "workspaces"
        self.projects = ProjectService(db, bus, settings.workspace_roots, workspaces)
        shared = self.broadcaster if bus.shared else None  # other nodes change sessions too
        self.sessions = SessionService(
            db, bus, self.catalog.check, settings.session_cache_bytes, shared
        )
        self.messages = MessageService(db, bus, Pricing(dict(settings.pricing)))
        self.branches = BranchService(db, self.messages, self.sessions)
        self.usage = UsageService(db)
        self.approvals = ApprovalService(db, bus, settings.agent.approval_timeout)
        self.todos = TodoService(db, bus)
        registered = {r.name: _sourced(r) for r in self.registries["tools"]}
        limits = settings.tools
        self.custom_tools = CustomToolService(
            db,
            bus,
            registered,
            limits.bash_max_timeout,
            limits.bash_timeout,
            McpServers(limits, settings.data_path),
        )
        self.toolbox = Toolbox(registered, self.custom_tools)

    def _open_agents(self) -> None:
        services = RunServices(
            self.messages, self.sessions, self.approvals, self.projects, self.catalog, self.toolbox
        )
        steps = Steps(self.db, self.bus, services, self.settings.agent, self)
        leases = RunLeases(self.db, self.node, self.settings.agent.run_lease)
        book = RunBook(leases, self.bus, self.messages, self.approvals, not self.bus.shared)
        self.runner = Runner(steps, book)

    def _open_realtime(self) -> None:
        methods = (r.value for r in self.registries["methods"])
        self.dispatcher = Dispatcher(self, methods, (r.value for r in self.registries["scopes"]))
        self.lifecycle = ConnectionService(self)
        self.frames = FrameHandler(self)

    def _watch(self) -> None:
        """Gauges read when /metrics is scraped."""
        metrics = self.metrics
        metrics.info(self.node, botical.__version__)
        connections, approvals = self.connections, self.approvals
        metrics.gauge("websocket_connections", "WebSocket connections open.", connections.__len__)
        metrics.gauge(
            "approvals_waiting", "Tool calls waiting for an approval.", lambda: approvals.waiting
        )

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

    async def start(self, sockets: list[socket.socket] | None = None, worker: int = 0) -> None:
        """Open storage, run start-up hooks and listen on the configured host and port (and
        on the metrics port, if any: `worker` is this process's number among the workers)."""
        if not self._opened:
            await self.open()
        self.web = self.make_web_app()
        await self.bus.start()
        self.broadcaster.start()
        self.lifecycle.start()
        # After the bus: with several nodes, what this reaps is announced to their clients.
        interrupted = await self.runner.recover()
        if interrupted:
            log.info("marked %d answers left unfinished by dead runs as interrupted", interrupted)
        self.runner.start()
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
        self._listen_metrics(worker)

    def _listen_metrics(self, worker: int) -> None:
        """/metrics on a port of its own, one per worker (`[metrics] port` + worker number),
        so that each worker of `serve --workers N` can be scraped."""
        conf = self.settings.metrics
        if not (conf.enabled and conf.port):
            return
        self._metrics_server = tornado.httpserver.HTTPServer(metrics_web_app(self))
        self._metrics_server.listen(conf.port + worker, conf.host)
        log.info("metrics on http://%s:%s/metrics", conf.host, conf.port + worker)

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
            await self.lifecycle.shutdown(min(timeout, 5.0))
            try:
                await asyncio.wait_for(self._server.close_all_connections(), timeout)
            except TimeoutError:
                log.warning("connections still open after %.1fs; closing anyway", timeout)
            self._server = None
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        for result in self.pm.hook.botical_shutdown(app=self):
            try:
                await asyncio.wait_for(await_me_maybe(result), timeout)
            except Exception:
                log.exception("a plugin's shutdown hook failed")
        if self._opened:
            await self.custom_tools.close()  # after the runs: stops the MCP servers
            for provider in self.providers.values():
                close = getattr(provider, "aclose", None)
                if close is not None:
                    await close()
            await self.bus.stop()
            self.db.close()
            self.tracing.shutdown()  # exports the last spans (on a worker thread's clock)
            self._opened = False

    @property
    def url(self) -> str:
        """Base URL the server listens on."""
        return f"http://{self.settings.host}:{self.port}"
