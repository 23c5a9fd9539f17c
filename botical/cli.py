"""Command line: `botical serve | user | token | apikey | project | chat`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import botical
from botical import chat, logredact, workers
from botical.app import Botical
from botical.auth.identity import operator_identity
from botical.config import Settings, load_settings
from botical.errors import BoticalError, ConfigError, PluginError

# Young collections every 10,000 allocations instead of 700: one delta fanned out to many
# subscribers allocates thousands of short-lived objects (Tornado makes a task per write), and
# with the default they outlive a young collection, get promoted and trigger full collections,
# each pausing the server for tens of ms with 1,000 sockets open (bench/NOTES.md).
GC_THRESHOLDS = (10_000, 10, 10)
FIRST_PROJECT = "My project"  # made with a default workspace on the first start
DESCRIPTION = (
    "Botical: a self-hosted server for AI agents that people talk to in real time. "
    "Start with `botical serve` and open the URL it prints."
)
log = logging.getLogger("botical")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML configuration file (or BOTICAL_CONFIG)")
    common.add_argument("--data-dir", help="data directory (or BOTICAL_DATA_DIR)")

    parser = argparse.ArgumentParser(prog="botical", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=botical.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 4096)")
    serve.add_argument(
        "--workers", type=int, help="processes serving the port (default 1; BOTICAL_WORKERS)"
    )

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", parents=[common], help="create a user; prints its id")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="make a server admin")
    create.add_argument("--exec", action="store_true", help="allow code execution (bash, tools)")

    token = sub.add_parser("token", help="access tokens").add_subparsers(
        dest="action", required=True
    )
    tcreate = token.add_parser("create", parents=[common], help="print a new access token")
    tcreate.add_argument("--user", required=True)
    tcreate.add_argument("--ttl", type=int, help="lifetime in seconds")

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    kcreate = apikey.add_parser("create", parents=[common], help="print a new API key")
    kcreate.add_argument("--user", required=True)
    kcreate.add_argument("--project", help="limit the key to this project id")
    kcreate.add_argument("--name", default="", help="a label for the key")
    krevoke = apikey.add_parser("revoke", parents=[common], help="revoke an API key by id")
    krevoke.add_argument("key_id")

    project = sub.add_parser("project", help="projects").add_subparsers(
        dest="action", required=True
    )
    pcreate = project.add_parser("create", parents=[common], help="create; prints the id")
    pcreate.add_argument("name")
    pcreate.add_argument("--owner", required=True, help="owner's user name")
    pcreate.add_argument("--path", help="the project's workspace directory")

    chat.add_arguments(sub.add_parser("chat", help="talk to an agent in the terminal"))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "workers": getattr(args, "workers", None),
        "data_dir": args.data_dir,
    }
    return load_settings(args.config, overrides=overrides)


async def _with_app(settings: Settings, work: Callable[[Botical], Awaitable[Any]]) -> Any:
    app = Botical(settings)
    await app.open()
    try:
        return await work(app)
    finally:
        await app.stop()


async def _serve(
    settings: Settings, sockets: list[socket.socket] | None = None, worker: int = 0
) -> None:
    """Serve until SIGINT or SIGTERM: one process, or worker number `worker` of several
    (`sockets`)."""
    app = Botical(settings)
    await app.start(sockets, worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if sockets is None:
        await _welcome_user(app, app.port)
    else:
        log.info("worker %d listening on port %s", os.getpid(), app.port)
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # full passes, whose pauses otherwise show up as latency spikes in streamed answers.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    await stop.wait()
    log.info("stopping")
    await app.stop()
    log.info("stopped")


async def _welcome_user(app: Botical, port: int | None) -> None:
    """The local admin (and a first project) on a new data directory; print the URL."""
    admin, created = await app.users.ensure_local_admin()
    if created:
        log.info("created local admin user %r", admin["name"])
        project = await app.projects.create(operator_identity(admin), FIRST_PROJECT)
        log.info("created project %r with its workspace %s", project["name"], project["path"])
    settings = app.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    token = app.tokens.issue(admin["id"]).token if admin else None
    print("\n".join(_welcome(f"http://{host}:{port}/", token)), flush=True)


def _serve_workers(settings: Settings) -> int:
    """`serve --workers N`: bind, welcome once, then fork the workers (botical.workers)."""
    sockets = workers.bind(settings)
    port = sockets[0].getsockname()[1]
    asyncio.run(_with_app(settings, lambda app: _welcome_user(app, port)))
    return workers.run_workers(settings, sockets, lambda n: _worker(settings, sockets, n))


def _worker(settings: Settings, sockets: list[socket.socket], number: int) -> int:
    asyncio.run(_serve(settings, sockets, number))
    return 0


def _welcome(url: str, token: str | None) -> list[str]:
    """What `serve` prints: the console's URL with a token, and a ready `botical chat` line."""
    version = botical.__version__
    if token is None:
        return [
            f"Botical {version} is running at {url}",
            "    No admin user exists; get a token with: botical token create --user NAME",
        ]
    login = f"{url}?token={token}"
    return [
        f"Botical {version} is running. Open this URL to start:",
        f"    {login}",
        "or chat in a terminal:",
        f"    {botical_command()} chat --url {shlex.quote(login)}",
    ]


def botical_command() -> str:
    """How to run `botical` from here: its name when it is on PATH, else the script beside
    this Python (`.venv/bin/botical` after `make run`), else `python -m botical`."""
    script = Path(sys.executable).parent / "botical"
    if (
        shutil.which("botical")
        and Path(shutil.which("botical") or "").resolve() == script.resolve()
    ):
        return "botical"
    if script.is_file():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return f"{shlex.quote(sys.executable)} -m botical"


def _run_command(args: argparse.Namespace, settings: Settings) -> None:
    async def user_create(app: Botical) -> None:
        user = await app.users.create(args.name, args.admin, args.exec)
        print(user["id"])

    async def token_create(app: Botical) -> None:
        user = await app.users.get_by_name(args.user)
        try:
            issued = app.tokens.issue(user["id"], args.ttl)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        print(issued.token)

    async def apikey_create(app: Botical) -> None:
        user = await app.users.get_by_name(args.user)
        key, plaintext = await app.apikeys.create(user["id"], args.project, args.name)
        print(f"created API key {key['id']}", file=sys.stderr)
        print(plaintext)

    async def apikey_revoke(app: Botical) -> None:
        key = await app.apikeys.revoke(args.key_id)
        print(f"revoked API key {key['id']}", file=sys.stderr)

    async def project_create(app: Botical) -> None:
        owner = operator_identity(await app.users.get_by_name(args.owner))
        project = await app.projects.create(owner, args.name, path=args.path)
        print(project["id"])

    commands = {
        ("user", "create"): user_create,
        ("token", "create"): token_create,
        ("apikey", "create"): apikey_create,
        ("apikey", "revoke"): apikey_revoke,
        ("project", "create"): project_create,
    }
    asyncio.run(_with_app(settings, commands[(args.command, args.action)]))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `botical` command."""
    logredact.install()  # before anything logs
    args = _parser().parse_args(argv)
    if args.command == "chat":
        return chat.main(args)
    try:
        settings = _settings(args)
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if args.command == "serve":
            workers.check_workers(settings)
            if settings.workers > 1:
                return _serve_workers(settings)
            asyncio.run(_serve(settings))
        else:
            _run_command(args, settings)
    except (ConfigError, PluginError) as exc:
        print(f"botical: {exc}", file=sys.stderr)
        return 2
    except BoticalError as exc:
        print(f"botical: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"botical: {exc}", file=sys.stderr)
        return 1
    return 0
