"""Fixtures for the custom-tool tests: a project with a session, and a local HTTP server that
custom http tools call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.integration.agent.conftest import chat, workspace  # noqa: F401 (shared fixtures)
from tests.integration.tools.helpers import Remote


class _Recording(tornado.web.RequestHandler):
    def initialize(self, remote: Remote) -> None:
        self.remote = remote

    def prepare(self) -> None:
        self.remote.requests.append(self.request)


class ItemHandler(_Recording):
    def get(self, item: str) -> None:
        self.write({"item": item, "q": self.get_query_arguments("q")})


class EchoHandler(_Recording):
    def post(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(self.request.body)


class WhoAmIHandler(_Recording):
    def get(self) -> None:
        self.write(f"you sent {self.request.headers.get('Authorization')}")


class BigHandler(_Recording):
    def get(self) -> None:
        self.write(b"a" * 5000)


class FailHandler(_Recording):
    def get(self) -> None:
        self.set_status(503)
        self.write("down for maintenance")


class RedirectHandler(_Recording):
    def get(self) -> None:
        self.redirect("/whoami")


class HangHandler(_Recording):
    async def get(self) -> None:
        await self.remote.release.wait()  # set when the test ends: the client gave up before


@pytest.fixture
def remote(io_loop: Any) -> Iterator[Remote]:
    """A Tornado server on 127.0.0.1 that records every request it gets."""
    remote = Remote(release=asyncio.Event())
    app = tornado.web.Application(
        [
            (r"/items/([^/]+)", ItemHandler, {"remote": remote}),
            (r"/echo", EchoHandler, {"remote": remote}),
            (r"/whoami", WhoAmIHandler, {"remote": remote}),
            (r"/big", BigHandler, {"remote": remote}),
            (r"/fail", FailHandler, {"remote": remote}),
            (r"/hang", HangHandler, {"remote": remote}),
            (r"/redirect", RedirectHandler, {"remote": remote}),
        ]
    )
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    remote.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    yield remote
    remote.release.set()
    server.stop()
    io_loop.run_sync(server.close_all_connections)
