"""`botical serve --workers N`: N processes on one port of one machine (a pre-fork).

The parent binds the port, prepares what must happen once (the local admin, the first
project, the printed URL), then forks the workers before any thread or event loop exists;
each worker is a whole node that accepts on the shared socket (the kernel spreads the
connections), and they work together through the shared bus and database. SIGTERM or SIGINT
to the parent stops every worker gracefully; a worker that dies is started again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import tornado.netutil

from botical.config import Settings
from botical.errors import ConfigError

log = logging.getLogger("botical")
RESTARTS_PER_MINUTE = 10  # a worker crashing faster than this stops the server instead


def check_workers(settings: Settings) -> None:
    """Several workers need a bus they share: say why, and what to set."""
    if settings.workers > 1 and settings.bus.backend == "memory":
        raise ConfigError(
            f"workers = {settings.workers} needs a bus the workers share, and the in-process "
            'bus is one per process: set [bus] backend = "redis" (BOTICAL_BUS_BACKEND=redis, '
            "with BOTICAL_BUS_URL) and a database they share (PostgreSQL, BOTICAL_DATABASE_URL),"
            " or run one worker"
        )


def bind(settings: Settings) -> list[socket.socket]:
    """The listening sockets every worker accepts on."""
    return tornado.netutil.bind_sockets(settings.port, settings.host)


def run_workers(
    settings: Settings, sockets: list[socket.socket], serve: Callable[[int], int]
) -> int:
    """Fork `settings.workers` workers running `serve(worker_number)` and wait for them; the
    exit status is 0 when every worker stopped cleanly."""
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(settings.workers):
        children[_fork(number, serve)] = number
    crashes: list[float] = []
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        number = children.pop(pid, -1)
        if number < 0:
            continue
        failed = not (os.WIFEXITED(code) and os.WEXITSTATUS(code) == 0)
        if stopping or not failed:
            status = status or (1 if failed else 0)
            continue
        crashes = [t for t in crashes if t > time.monotonic() - 60] + [time.monotonic()]
        log.error("worker %d (pid %d) died with status %d; starting it again", number, pid, code)
        if len(crashes) > RESTARTS_PER_MINUTE:
            log.error("workers keep dying; stopping")
            stop(signal.SIGTERM, None)
            status = 1
            continue
        children[_fork(number, serve)] = number
    for sock in sockets:
        sock.close()
    return status


def _fork(number: int, serve: Callable[[int], int]) -> int:
    pid = os.fork()
    if pid == 0:  # the worker: its own signal handlers come with its event loop
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = 1
        try:
            code = serve(number)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid
