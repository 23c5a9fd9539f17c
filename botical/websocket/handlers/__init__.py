"""Method registry and dispatcher. A method is a small async function declared with `@method`
(name, params schema, result schema, required role, how to find its project); namespace modules
register theirs through `botical_register_methods`. The dispatcher validates, authorizes, calls
and answers; handlers never build frames or catch broad exceptions."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from marshmallow import RAISE, Schema
from marshmallow import ValidationError as SchemaError

from botical.auth.identity import Identity
from botical.auth.permissions import Role
from botical.errors import MethodNotFound, NotFound, ValidationError
from botical.ids import check_id, is_id
from botical.schema import quick_loader

Handler = Callable[["MethodContext", dict[str, Any]], Awaitable[Any]]
Now = Callable[["MethodContext", dict[str, Any]], Any]
SCOPES = ("project", "session", "approval", None)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    params: type[Schema]
    result: type[Schema] | None
    role: Role | None
    scope: str | None
    doc: str
    now: Now | None = None  # answers from memory at once, or None (see Dispatcher.answer_now)


@dataclass
class MethodContext:
    """What a handler gets: the app's services, the caller, and the authorized project."""

    app: Any
    identity: Identity
    connection: Any
    project_id: str | None = None
    role: Role | None = None


def method(
    name: str,
    params: type[Schema],
    result: type[Schema] | None = None,
    role: Role | None = Role.VIEWER,
    scope: str | None = "project",
    now: Now | None = None,
):
    """Declare a method. `scope` says which param names its project: `projectId` ("project"),
    `sessionId` ("session"), `approvalId` ("approval"), or None for methods about the caller.
    `now(ctx, params)`, if given, is a plain function that answers from memory or returns
    None; it is tried before the handler when the caller's role is kept in memory."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")

    def decorate(fn: Handler) -> Handler:
        doc = (inspect.getdoc(fn) or "").split("\n")[0]
        fn.botical_method = MethodSpec(name, fn, params, result, role, scope, doc, now)  # type: ignore[attr-defined]
        return fn

    return decorate


def methods_of(module: ModuleType) -> list[MethodSpec]:
    """The methods a namespace module declares, in source order."""
    found = [getattr(v, "botical_method", None) for v in vars(module).values()]
    return [spec for spec in found if isinstance(spec, MethodSpec)]


def register_module(register: Callable[[MethodSpec], None], module: ModuleType) -> None:
    """Register every method a module declares (use in a `botical_register_methods` hook)."""
    for spec in methods_of(module):
        register(spec)


class Dispatcher:
    def __init__(self, app: Any, methods: dict[str, MethodSpec]) -> None:
        self.app = app
        self.methods = methods
        # Schemas keep no per-load state, so one instance per method serves every request;
        # flat ones also get a quick loader for well-formed params (botical.schema).
        self._params = {name: spec.params() for name, spec in methods.items()}
        self._quick = {name: quick_loader(schema) for name, schema in self._params.items()}

    def answer_now(self, connection: Any, name: str, params: dict[str, Any]) -> Any:
        """The result of a request answered at once from memory, or None: then `call`, in a
        task, does the work (and raises the proper error for anything wrong).

        Only methods with a `now` function take part, with well-formed params (the quick
        loader) and a caller whose role the permissions keep in memory and which is enough;
        this is the same check `call` makes, without waiting for anything. It spares a task,
        a loop iteration and a timeout per request: a repeated `sessions.get` answers at the
        cost of a `ping` plus its size.
        """
        spec = self.methods.get(name)
        quick = self._quick.get(name)
        if spec is None or spec.now is None or quick is None:
            return None
        args = quick(params)
        if args is None:
            return None
        ctx = MethodContext(self.app, connection.identity, connection)
        if not self._authorized_now(spec, ctx, args):
            return None
        return spec.now(ctx, args)

    def _authorized_now(self, spec: MethodSpec, ctx: MethodContext, args: dict[str, Any]):
        if spec.scope is None or spec.role is None:
            return True
        permissions = self.app.permissions
        if spec.scope == "project" and is_id(args["projectId"], "prj"):
            project_id = args["projectId"]
        elif spec.scope == "session" and is_id(args["sessionId"], "sess"):
            project_id = permissions.kept_session_project(args["sessionId"])
        else:
            return False
        role = permissions.kept(ctx.identity, project_id) if project_id else None
        if role is None or role < spec.role:
            return False
        ctx.project_id, ctx.role = project_id, role
        return True

    async def call(self, connection: Any, name: str, params: dict[str, Any]) -> Any:
        """Validate, authorize and run one request; errors are raised as BoticalError."""
        spec = self.methods.get(name)
        if spec is None:
            raise MethodNotFound(f"Unknown method {name!r}")
        quick = self._quick[name]
        args = quick(params) if quick is not None else None
        if args is None:
            try:
                args = self._params[name].load(params, unknown=RAISE)
            except SchemaError as exc:
                raise ValidationError(details=exc.messages) from None
        ctx = MethodContext(self.app, connection.identity, connection)
        await self._authorize(spec, ctx, args)
        return await spec.handler(ctx, args)

    async def _authorize(self, spec: MethodSpec, ctx: MethodContext, args: dict[str, Any]):
        if spec.scope is None or spec.role is None:
            return
        permissions = self.app.permissions
        if spec.scope == "project":
            ctx.project_id = check_id(args["projectId"], "prj", "projectId")
            ctx.role = await permissions.require(ctx.identity, ctx.project_id, spec.role)
        elif spec.scope == "session":
            session_id = check_id(args["sessionId"], "sess", "sessionId")
            ctx.project_id, ctx.role = await permissions.authorize_session(
                ctx.identity, session_id, spec.role
            )
        else:
            approval = await self.app.approvals.get(
                check_id(args["approvalId"], "appr", "approvalId")
            )
            try:
                ctx.project_id, ctx.role = await permissions.authorize_session(
                    ctx.identity, approval["sessionId"], spec.role
                )
            except NotFound:  # the same answer as for an unknown approval: ids cannot be probed
                raise NotFound("Approval not found") from None
