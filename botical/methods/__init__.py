"""Methods: each operation declared once, with `@method` (name, params schema, result schema,
required role, scope, optional REST route), and served by both transports. Namespace modules
register theirs through `botical_register_methods`; the dispatcher (`methods.dispatch`)
validates, authorizes and calls; the WebSocket frames and the REST routes are thin adapters
onto it. Handlers never build frames or responses and never catch broad exceptions."""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from marshmallow import Schema

from botical.auth.identity import Identity
from botical.auth.permissions import Role

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.websocket.connections import Connection

Handler = Callable[["MethodContext", dict[str, Any]], Awaitable[Any]]
Now = Callable[["MethodContext", dict[str, Any]], Any]
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_ROUTE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)$")


@dataclass(frozen=True)
class Route:
    """A REST route onto a method: `{name}` segments of `path` are params, so is the query
    string (GET, DELETE) or the JSON body (POST, PUT, PATCH); `status` answers success."""

    verb: str
    path: str
    status: int = 200

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.path) if name)

    @property
    def reads_body(self) -> bool:
        return self.verb in ("POST", "PUT", "PATCH")


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
    route: Route | None = None


@dataclass(frozen=True)
class Scope:
    """How to find the project a method's params name, registered like methods.

    `param` holds an id with `prefix`; `project_of(app, id, cached_only)` returns the id of its
    project, raises NOT_FOUND when there is none, and, asked for `cached_only`, answers from
    memory without awaiting anything or raises `botical.auth.permissions.NotKept`. A caller
    without access gets NOT_FOUND with `not_found` as its message, so ids cannot be probed.
    """

    name: str
    param: str
    prefix: str
    project_of: Callable[[Botical, str, bool], Awaitable[str]]
    not_found: str = "Not found"


@dataclass
class MethodContext:
    """What a handler gets: the app's services, the caller, and the authorized project."""

    app: Botical
    identity: Identity
    connection: Connection | None = None  # None over REST
    role: Role | None = None
    scoped_project: str | None = field(default=None, repr=False)

    @property
    def project_id(self) -> str:
        """The project the caller was authorized on (methods with a scope only)."""
        if self.scoped_project is None:
            raise RuntimeError("this method has no project scope")
        return self.scoped_project


def method(
    name: str,
    params: type[Schema],
    result: type[Schema] | None = None,
    role: Role | None = Role.VIEWER,
    scope: str | None = "project",
    now: Now | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a method. `scope` names the registered scope that finds its project from the
    params: `"project"` (`projectId`), `"session"` (`sessionId`), `"approval"` (`approvalId`),
    `"tool"` (`toolId`), or None for methods about the caller. `now(ctx, params)`, if given,
    is a plain function that answers from memory or returns None; it is tried before the
    handler when the caller's role is kept in memory."""

    def decorate(fn: Handler) -> Handler:
        doc = (inspect.getdoc(fn) or "").split("\n")[0]
        fn.botical_method = MethodSpec(name, fn, params, result, role, scope, doc, now)  # type: ignore[attr-defined]
        return fn

    return decorate


def rest(route: str, status: int = 200) -> Callable[[Handler], Handler]:
    """Also serve the method declared just below over REST: `"VERB /path/{param}"`, answering
    `status` on success (put `@rest` above `@method`)."""
    match = _ROUTE.match(route)
    if match is None:
        raise ValueError(f"a REST route is 'VERB /path', not {route!r}")

    def decorate(fn: Handler) -> Handler:
        spec = getattr(fn, "botical_method", None)
        if not isinstance(spec, MethodSpec):
            raise TypeError(f"@rest({route!r}) must be placed above @method")
        served = Route(match.group(1), match.group(2), status)
        unknown = set(served.path_params) - set(spec.params().fields)
        if unknown:
            raise ValueError(f"{spec.name}: {route} names {sorted(unknown)}, which are not params")
        fn.botical_method = replace(spec, route=served)  # type: ignore[attr-defined]
        return fn

    return decorate


def methods_of(target: Handler | ModuleType) -> list[MethodSpec]:
    """The methods a function or a namespace module declares, in source order."""
    if isinstance(target, ModuleType):
        found = [getattr(v, "botical_method", None) for v in vars(target).values()]
    else:
        found = [getattr(target, "botical_method", None)]
    return [spec for spec in found if isinstance(spec, MethodSpec)]
