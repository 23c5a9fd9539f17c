"""Start a real Botical server on 127.0.0.1 and talk to it over real HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import tornado.httpclient
import tornado.netutil

from botical.app import Botical
from botical.config import Settings


async def start_app(settings: Settings, plugins: tuple[object, ...] = ()) -> Botical:
    """Start Botical on an ephemeral port of 127.0.0.1 and return it (call `stop()` after)."""
    app = Botical(settings, plugins)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    await app.start(sockets)
    return app


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        """The `error.code` of an error body, else None."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None


class ApiClient:
    """A small HTTP client bound to one server and, optionally, one credential."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self._http = tornado.httpclient.AsyncHTTPClient()

    def with_token(self, token: str | None) -> ApiClient:
        return ApiClient(self.base_url, token)

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send a request; never raises for HTTP error statuses."""
        all_headers = dict(headers or {})
        if self.token:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        body = (
            raw
            if raw is not None
            else (json.dumps(json_body).encode() if json_body is not None else None)
        )
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        response = await self._http.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=30,
        )
        text = response.body.decode() if response.body else ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Response(response.code, parsed, dict(response.headers))

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, json_body=body if body is not None else {}, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, json_body=body if body is not None else {}, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PUT", path, json_body=body if body is not None else {}, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)


class EventLog:
    """Records every bus event; `await log.wait(...)` returns the first match, with a timeout."""

    def __init__(self, bus: Any) -> None:
        import asyncio

        self.events: list[Any] = []
        self._changed = asyncio.Condition()
        self._unsubscribe = bus.subscribe("*", self._record)

    def _record(self, event: Any) -> Any:
        self.events.append(event)

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        return notify()

    def close(self) -> None:
        self._unsubscribe()

    def find(self, name: str, **match: Any) -> list[Any]:
        """Events named `name` whose data matches every `key=value` (dotted keys reach inside)."""
        return [e for e in self.events if e.name == name and _matches(e.data, match)]

    async def wait(self, name: str, timeout: float = 10.0, **match: Any) -> Any:
        """The first event named `name` matching `match`, waiting up to `timeout` seconds."""
        import asyncio

        async def first() -> Any:
            async with self._changed:
                while not (found := self.find(name, **match)):
                    await self._changed.wait()
                return found[0]

        return await asyncio.wait_for(first(), timeout)


def _matches(data: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, expected in match.items():
        value: Any = data
        for piece in key.split("__"):
            value = value.get(piece) if isinstance(value, dict) else None
        if value != expected:
            return False
    return True
