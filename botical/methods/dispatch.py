"""The dispatcher: validate, authorize and run one method, whichever transport asked.

There is one authorization function, `authorize`, for both transports and both paths: the
normal one awaits the database where it must; `answer_now` runs the very same coroutine with
`cached_only=True`, which answers from memory without ever suspending, or gives up.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from marshmallow import RAISE, Schema
from marshmallow import ValidationError as SchemaError

from botical.auth.identity import Identity
from botical.auth.permissions import NotKept, Role, at_least
from botical.errors import BoticalError, MethodNotFound, NotFound, PluginError, ValidationError
from botical.ids import check_id
from botical.methods import MethodContext, MethodSpec, Scope
from botical.schema import quick_loader

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.websocket.connections import Connection

UNKNOWN_METHOD = "(unknown)"  # the method label of a request for a method that does not exist
Access = tuple[str | None, Role | None]  # the authorized project and the caller's role in it


class Dispatcher:
    def __init__(self, app: Botical, methods: Iterable[MethodSpec], scopes: Iterable[Scope]):
        self.app = app
        self.methods = {spec.name: spec for spec in methods}
        self.scopes = {scope.name: scope for scope in scopes}
        for spec in self.methods.values():
            if spec.scope is not None and spec.scope not in self.scopes:
                raise PluginError(f"method {spec.name!r} names an unknown scope {spec.scope!r}")
        # Schemas keep no per-load state, so one instance per method serves every request;
        # flat ones also get a quick loader for well-formed params (botical.schema).
        self._params = {name: spec.params() for name, spec in self.methods.items()}
        self._quick = {name: quick_loader(schema) for name, schema in self._params.items()}

    def params_schema(self, name: str) -> Schema:
        """The params schema of a method (one instance, shared by every request)."""
        return self._params[name]

    def load(self, name: str, params: Any) -> dict[str, Any]:
        """The method's params, validated: VALIDATION_ERROR naming each wrong field."""
        quick = self._quick[name]
        args = quick(params) if quick is not None and isinstance(params, dict) else None
        if args is not None:
            return args
        if not isinstance(params, dict):
            raise ValidationError("Expected a JSON object", details={"_schema": ["Not an object."]})
        try:
            return self._params[name].load(params, unknown=RAISE)
        except SchemaError as exc:
            raise ValidationError(details=exc.messages) from None

    async def authorize(
        self, spec: MethodSpec, identity: Identity, args: dict[str, Any], cached_only=False
    ) -> Access:
        """The project the params name and the caller's role in it, if that role is enough;
        NOT_FOUND (the scope's message) for a caller who may not see it, FORBIDDEN for a role
        too low. With `cached_only`, never awaits: raises NotKept when memory cannot tell."""
        if spec.scope is None or spec.role is None:
            return None, None
        scope = self.scopes[spec.scope]
        ident = check_id(args[scope.param], scope.prefix, scope.param)
        try:
            project_id = await scope.project_of(self.app, ident, cached_only)
            role = await self.app.permissions.role(identity, project_id, cached_only)
            return project_id, at_least(role, spec.role)
        except NotFound:
            raise NotFound(scope.not_found) from None

    async def call(
        self, identity: Identity, name: str, params: Any, connection: Connection | None = None
    ) -> Any:
        """Validate, authorize and run one request, timed (metrics) and traced; errors are
        raised as BoticalError. A request without a connection came by REST."""
        transport = "rest" if connection is None else "websocket"
        method = name if name in self.methods else UNKNOWN_METHOD  # no label for any name
        tracing = self.app.tracing
        with (
            self.app.metrics.request(method, transport),
            tracing.request(method, transport) as span,
        ):
            result = await self._call(identity, name, params, connection)
            tracing.answered(span, result)
        return result

    async def _call(
        self, identity: Identity, name: str, params: Any, connection: Connection | None
    ) -> Any:
        spec = self.methods.get(name)
        if spec is None:
            raise MethodNotFound(f"Unknown method {name!r}")
        args = self.load(name, params)
        project_id, role = await self.authorize(spec, identity, args)
        ctx = MethodContext(self.app, identity, connection, role, project_id)
        return await spec.handler(ctx, args)

    def answer_now(
        self, identity: Identity, connection: Connection | None, name: str, params: Any
    ) -> Any:
        """The result of a request answered at once from memory, or None: then `call`, in a
        task, does the work (and raises the proper error for anything wrong).

        Only methods with a `now` function take part, with well-formed params (the quick
        loader) and a caller whose role memory holds and which is enough (`authorize` with
        `cached_only`). It spares a task, a loop iteration and a timeout per request: a
        repeated `sessions.get` answers at the cost of a `ping` plus its size.
        """
        started, started_ns = time.perf_counter(), time.time_ns()
        spec = self.methods.get(name)
        quick = self._quick.get(name)
        if spec is None or spec.now is None or quick is None or not isinstance(params, dict):
            return None
        args = quick(params)
        if args is None:
            return None
        access = _without_waiting(self.authorize(spec, identity, args, cached_only=True))
        if access is None:
            return None
        ctx = MethodContext(self.app, identity, connection, access[1], access[0])
        result = spec.now(ctx, args)
        if result is not None:
            self.app.metrics.requests(name, "websocket", "ok").observe(
                time.perf_counter() - started
            )
            self.app.tracing.answered_now(name, "websocket", started_ns)
        return result


def _without_waiting(coroutine: Coroutine[Any, Any, Access]) -> Access | None:
    """Run a coroutine that needs nothing it would have to wait for: its value, or None if it
    refused (the normal path will raise that properly) or would have suspended."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    except (BoticalError, NotKept):
        return None
    coroutine.close()  # a scope that awaited despite `cached_only`: ask the normal way
    return None
