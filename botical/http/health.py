"""Liveness, readiness and the plugin listing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import botical
from botical.http.base import ApiHandler, BaseHandler
from botical.plugins import plugin_info

READY_TIMEOUT = 5.0
INDEX = Path(__file__).resolve().parent.parent / "static" / "index.html"


class HealthHandler(BaseHandler):
    """`GET /health`: the process is up (no auth)."""

    def get(self) -> None:
        self.write_json({"status": "ok", "version": botical.__version__})


class ReadyHandler(BaseHandler):
    """`GET /health/ready`: the database answers (no auth)."""

    async def get(self) -> None:
        try:
            await asyncio.wait_for(self.botical.db.run(self.botical.db.ping), READY_TIMEOUT)
        except Exception:
            self.write_json({"status": "unavailable", "checks": {"database": "failed"}}, status=503)
            return
        self.write_json({"status": "ready", "checks": {"database": "ok"}})


class IndexHandler(BaseHandler):
    """`GET /`: the landing page; it takes the token from the URL into sessionStorage."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Referrer-Policy", "no-referrer")  # the URL may still hold the token
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'",
        )
        self.finish(INDEX.read_bytes())


class PluginsHandler(ApiHandler):
    """`GET /-/plugins`: loaded plugins and what each registered."""

    def get(self) -> None:
        app = self.botical
        self.write_json({"items": plugin_info(app.pm, app.registries)})
