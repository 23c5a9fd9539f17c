"""No token or key in any log line: a real `botical serve` at DEBUG level is driven through its
failure paths with recognizable credentials (in URLs, headers, frames and exception messages),
and everything it wrote to stderr is searched for them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from botical.testing.wsclient import WsClient, WsError
from tests.integration.client.helpers import ServeProcess, clean_env, free_port

LEAKY_PLUGIN = '''
"""Routes and a method that fail, carrying whatever credential they were given."""
import tornado.web
from marshmallow import Schema, fields

import botical
from botical.http.base import BaseHandler
from botical.websocket.server import SocketHandler


class Params(Schema):
    secret = fields.String()


@botical.method("leak.fail", Params, role=None, scope=None)
async def fail(ctx, p):
    """Fail with the params in the message, as careless code would."""
    raise RuntimeError(f"failed with {p}")


class Failing(BaseHandler):
    def get(self):
        raise RuntimeError("boom " + self.request.headers.get("Authorization", ""))


class FailingPlain(tornado.web.RequestHandler):  # Tornado's own uncaught-exception log
    def get(self):
        raise RuntimeError("plain boom")


class FailingSocket(SocketHandler):
    def on_message(self, message):
        raise RuntimeError("socket boom " + message)


@botical.hookimpl
def botical_register_methods(register):
    register(fail.botical_method)


@botical.hookimpl
def botical_register_routes(register):
    register(r"/leak", Failing)
    register(r"/leak-plain", FailingPlain)
    register(r"/ws-leak", FailingSocket)
'''


def cli(data_dir: Path, *args: str) -> tuple[str, str]:
    """Run `botical ARGS` on the data dir: (stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "botical", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    return done.stdout.strip(), done.stderr.strip()


async def api_key(serve: ServeProcess) -> tuple[str, str]:
    """A new API key of the admin: (key, key id)."""
    key, said = await asyncio.to_thread(cli, serve.data_dir, "apikey", "create", "--user", "admin")
    return key, said.rsplit(" ", 1)[1]


def get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def serve(tmp_path: Path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "leaky.py").write_text(textwrap.dedent(LEAKY_PLUGIN))
    env = {"BOTICAL_LOG_LEVEL": "DEBUG", "BOTICAL_PLUGINS_DIRS": str(plugins)}
    process = ServeProcess(tmp_path / "data", free_port(), tmp_path, env)
    try:
        yield process.start()
    finally:
        process.kill()


async def rest_failures(serve: ServeProcess, token: str, key: str) -> None:
    base = serve.base_url
    cases = [
        (f"{base}/api/me", {"Authorization": f"Bearer {token}"}, 200),
        (f"{base}/api/me", {"Authorization": f"Bearer {key}"}, 200),
        (f"{base}/api/me?token={token}", {}, 401),
        (f"{base}/leak?token={token}", {"Authorization": f"Bearer {key}"}, 500),
        (f"{base}/leak-plain?token={token}&api_key={key}", {}, 500),
        (f"{base}/api/me", {"Authorization": f"Bearer {token}x"}, 401),
        (f"{base}/api/nope?access_token={token}", {"Authorization": f"Bearer {token}"}, 404),
    ]
    for url, headers, status in cases:
        assert await asyncio.to_thread(get, url, headers) == status, url


async def socket_failures(serve: ServeProcess, token: str, key: str) -> None:
    ws = await WsClient.connect(serve.ws_url, token)
    for frame in ("not json", '{"type":"nope"}', "[" * 100 + "]" * 100, '{"type":"ping","x":1}'):
        ws.send_raw(frame)
    with pytest.raises(WsError, match="INTERNAL_ERROR"):
        await ws.request("leak.fail", secret=f"{token} {key}")
    ws.close()
    broken = await WsClient.connect(f"ws://127.0.0.1:{serve.port}/ws-leak", key)
    broken.send_raw({"type": "ping", "id": token})
    assert await broken.closed() == 1011
    for bad in (f"{token}x", "bk_" + "x" * 40):
        with pytest.raises(Exception, match="401"):
            await WsClient.connect(serve.ws_url, bad)


async def revoked_key(serve: ServeProcess) -> str:
    """A key that worked, was revoked from the command line, and is then tried on both doors."""
    key, key_id = await api_key(serve)
    me = f"{serve.base_url}/api/me"
    assert await asyncio.to_thread(get, me, {"Authorization": f"Bearer {key}"}) == 200
    await asyncio.to_thread(cli, serve.data_dir, "apikey", "revoke", key_id)
    assert await asyncio.to_thread(get, me, {"Authorization": f"Bearer {key}"}) == 401
    with pytest.raises(Exception, match="401"):
        await WsClient.connect(serve.ws_url, key)
    return key


@pytest.mark.gen_test(timeout=120)
async def test_no_credential_reaches_the_log_on_any_failure_path(serve: ServeProcess):
    token = serve.token
    key, _ = await api_key(serve)
    await rest_failures(serve, token, key)
    await socket_failures(serve, token, key)
    revoked = await revoked_key(serve)
    assert await asyncio.to_thread(serve.stop) == 0
    serve.stderr.wait_eof()
    log = serve.stderr.text
    assert "Uncaught exception GET /leak?token=[redacted]" in log, log[-3000:]
    assert "Uncaught exception GET /leak-plain?token=[redacted]&api_key=[redacted]" in log
    assert "Traceback" in log and "leak.fail" in log and "socket boom" in log
    assert " DEBUG " in log  # the level really was DEBUG
    signature = token.rsplit(".", 1)[1]
    for secret in (token, signature, key, key[3:], revoked, revoked[3:]):
        assert secret not in log
