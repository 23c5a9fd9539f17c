"""Liveness, readiness, the plugin listing, and the web console's static files."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path

import tornado.web

import botical
from botical.errors import NotFound
from botical.http.base import ApiHandler, BaseHandler
from botical.plugins import plugin_info

READY_TIMEOUT = 5.0
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# No inline script or style, nothing from elsewhere; the WebSocket is same-origin ('self').
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class HealthHandler(BaseHandler):
    """`GET /health`: the process is up (no auth); `node` tells the nodes of a cluster apart."""

    def get(self) -> None:
        self.write_json({"status": "ok", "version": botical.__version__, "node": self.botical.node})


class ReadyHandler(BaseHandler):
    """`GET /health/ready`: the database answers and the bus is connected (no auth)."""

    async def get(self) -> None:
        app = self.botical
        try:
            await asyncio.wait_for(app.db.run(app.db.ping), READY_TIMEOUT)
            database = "ok"
        except Exception:
            database = "failed"
        checks = {"database": database, "bus": "ok" if app.bus.healthy else "failed"}
        if "failed" in checks.values():
            self.write_json({"status": "unavailable", "checks": checks}, status=503)
        else:
            self.write_json({"status": "ready", "checks": checks})


class StaticHandler(BaseHandler, tornado.web.StaticFileHandler):
    """`GET /static/NAME`: a file of botical/static, under a strict Content-Security-Policy.

    Register it with `{"path": STATIC_DIR}`. Only regular files of a known type are served;
    directories, dotfiles, other types and anything resolving outside the directory are a 404.
    """

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("Referrer-Policy", "no-referrer")  # the page's URL may hold the token

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        return os.path.join(root, path)  # validate_absolute_path decides, always with a 404

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        try:
            resolved = Path(absolute_path).resolve()  # `..` and symlinks followed to the end
            servable = (
                resolved.is_relative_to(Path(root).resolve())
                and resolved.is_file()
                and resolved.suffix in CONTENT_TYPES
                and not resolved.name.startswith(".")
                and not self.path.endswith("/")
            )
        except (OSError, ValueError):  # a NUL byte, a loop of links
            servable = False
        if not servable:
            raise NotFound("No such file")
        return str(resolved)

    def get_content_type(self) -> str:
        return CONTENT_TYPES[Path(self.absolute_path or "").suffix]


class IndexHandler(StaticHandler):
    """`GET /`: the web console; it takes the token from the URL into sessionStorage."""

    async def get(self, path: str = "index.html", include_body: bool = True) -> None:
        await super().get("index.html", include_body)

    def head(self, path: str = "index.html") -> Awaitable[None]:
        return self.get("index.html", include_body=False)


class PluginsHandler(ApiHandler):
    """`GET /-/plugins`: loaded plugins and what each registered."""

    def get(self) -> None:
        app = self.botical
        self.write_json({"items": plugin_info(app.pm, app.registries)})
