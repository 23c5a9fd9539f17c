"""REST routes onto methods: each route maps its path, query string (GET, DELETE) or JSON
body (POST, PUT, PATCH) onto a method's params and calls the same dispatcher the WebSocket
does, so validation, authorization and results are the same on both doors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import tornado.web

from botical.errors import ValidationError
from botical.http.base import ApiHandler
from botical.jsonout import JSONText
from botical.methods import MethodSpec, Route
from botical.schema import from_query

_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")
# A `{...Id}` segment outside the id alphabet names no resource (404); one inside it that is
# not a valid id of its kind is the method's VALIDATION_ERROR.
_ID_SEGMENT = "[a-z]+_[0-9a-z]+"


def url_pattern(path: str) -> str:
    """A route path with `{name}` segments as a Tornado pattern of named groups."""

    def group(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"(?P<{name}>{_ID_SEGMENT if name.endswith('Id') else '[^/]+'})"

    return _PLACEHOLDER.sub(group, path)


def method_routes(methods: Iterable[MethodSpec]) -> list[tuple[str, dict[str, MethodSpec]]]:
    """Every REST path of these methods, in declaration order, with its method per verb."""
    paths: dict[str, dict[str, MethodSpec]] = {}
    for spec in methods:
        if spec.route is not None:
            verbs = paths.setdefault(url_pattern(spec.route.path), {})
            if spec.route.verb in verbs:
                raise ValueError(
                    f"{spec.route.verb} {spec.route.path} is served by both "
                    f"{verbs[spec.route.verb].name} and {spec.name}"
                )
            verbs[spec.route.verb] = spec
    return list(paths.items())


class MethodHandler(ApiHandler):
    """One REST path; each verb calls its method."""

    def initialize(self, methods: dict[str, MethodSpec]) -> None:
        self.methods = methods

    async def get(self, **path: str) -> None:
        await self.serve(path)

    async def post(self, **path: str) -> None:
        await self.serve(path)

    async def put(self, **path: str) -> None:
        await self.serve(path)

    async def patch(self, **path: str) -> None:
        await self.serve(path)

    async def delete(self, **path: str) -> None:
        await self.serve(path)

    async def serve(self, path: dict[str, str]) -> None:
        spec = self.methods.get(self.request.method or "")
        if spec is None or spec.route is None:
            raise tornado.web.HTTPError(405)
        params = self._params(spec, spec.route)
        clash = sorted(params.keys() & path.keys())
        if clash:
            raise ValidationError(details={key: ["Given in the path already."] for key in clash})
        params.update(path)
        result = await self.botical.dispatcher.call(self.identity, spec.name, params)
        self._answer(spec.route.status, result)

    def _params(self, spec: MethodSpec, route: Route) -> dict[str, Any]:
        query = self.request.query_arguments
        if not route.reads_body:
            return from_query(self.botical.dispatcher.params_schema(spec.name), query)
        if query:
            raise ValidationError(details={key: ["Unknown query argument."] for key in query})
        body = self.json_body()
        if not isinstance(body, dict):
            raise ValidationError("Expected a JSON object", details={"_schema": ["Not an object."]})
        return body

    def _answer(self, status: int, result: Any) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
        elif isinstance(result, JSONText):  # encoded once, when it was cached
            self.finish(result)
        else:
            self.write_json(result, status)
