"""The server processes of a bench run: `botical serve`, the baseline, the CLI, cold starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

from wire import HandshakeError, WsClient, connect

BENCH = Path(__file__).resolve().parent
PY = sys.executable
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
URL_TOKEN = re.compile(r"\?token=(\S+)")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without BOTICAL_* variables (so only the given config applies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def cli(data_dir: Path, *args: str) -> str:
    """Run one `botical` CLI command to completion; return its stdout."""
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "botical", *args, "--data-dir", str(data_dir),
        env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"botical {' '.join(args)} failed: {err.decode()}")
    return out.decode().strip()


async def read_until(stream: asyncio.StreamReader, pattern: str, timeout: float) -> str:
    """Lines of `stream` until one contains `pattern`; return that line."""
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(stream.readline(), max(0.01, deadline - time.monotonic()))
        if not line:
            raise RuntimeError(f"the process ended before printing {pattern!r}")
        if pattern in line.decode():
            return line.decode()


async def stop_process(proc: asyncio.subprocess.Process, sig: int = signal.SIGINT) -> None:
    """Ask the process to stop; kill it if it has not within STOP_TIMEOUT."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Server:
    """A server subprocess whose stderr goes to a log file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.command = ""
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _spawn(self, *command: str, env: dict[str, str]) -> asyncio.StreamReader:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=self._log
        )
        assert self.proc.stdout is not None
        return self.proc.stdout

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_process(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_count(self, needle: str) -> int:
        """How many lines of the server's log contain `needle`."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return sum(needle in line for line in handle)


class BoticalServer(Server):
    """`botical serve` with bench/botical-bench.toml and the bench plugin."""

    def __init__(self, data_dir: Path, log_path: Path, **settings: str) -> None:
        super().__init__(log_path)
        self.data_dir = data_dir
        self.path = ""
        self.settings = settings  # extra BOTICAL_* variables

    async def start(self, token: str) -> None:
        self.port = free_port()
        config = BENCH / "botical-bench.toml"
        env = clean_env(BOTICAL_PLUGINS_DIRS=str(BENCH / "plugin"), **self.settings)
        args = ["serve", "--config", str(config), "--data-dir", str(self.data_dir)]
        stdout = await self._spawn(PY, "-m", "botical", *args, "--port", str(self.port), env=env)
        await read_until(stdout, "is running", START_TIMEOUT)
        self.path = f"/ws?token={token}"
        extra = "".join(f"{k}={v} " for k, v in self.settings.items())
        self.command = (
            f"{extra}BOTICAL_PLUGINS_DIRS=bench/plugin botical serve "
            f"--config bench/botical-bench.toml --data-dir $TMP/data --port {self.port}"
        )


async def scrape(port: int) -> dict[str, float]:
    """Totals of a few counters from a Botical's /metrics (allowed from 127.0.0.1)."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    def read() -> str:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            return resp.read().decode()

    wanted = (
        "botical_websocket_frames_in_total",
        "botical_websocket_frames_out_total",
        "botical_events_delivered_total",
        "botical_websocket_deltas_merged_total",
        "botical_method_seconds_count",
        "botical_bus_deliver_seconds_count",
    )
    totals = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(await asyncio.to_thread(read)):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


class BaselineServer(Server):
    def __init__(self, responses: Path, log_path: Path) -> None:
        super().__init__(log_path)
        self.responses = responses

    async def start(self) -> None:
        script = str(BENCH / "baseline_server.py")
        stdout = await self._spawn(
            PY, script, "--port", "0", "--responses", str(self.responses), env=clean_env()
        )
        line = await read_until(stdout, "listening on", START_TIMEOUT)
        self.port = int(line.split()[-1])
        self.command = "python bench/baseline_server.py --port 0 --responses $TMP/responses.json"


# -- scenario 5 ---------------------------------------------------------------------------------


async def first_connection(
    command: list[str], env: dict[str, str], port: int, token: str | None, log: Path
) -> float:
    """Seconds from spawning `command` to the first upgraded socket and its first frame.

    With `token` None the server's first start prints a token URL (a fresh data directory),
    which is read first. The socket is retried every 2 ms until accepted.
    """
    started = time.monotonic()
    with open(log, "ab") as errors:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
        try:
            if token is None:
                assert proc.stdout is not None
                line = await read_until(proc.stdout, "?token=", START_TIMEOUT)
                token = URL_TOKEN.search(line).group(1)  # type: ignore[union-attr]
            path = f"/ws?token={token}" if token else "/ws"
            await _retry_connect(port, path, started)
            return round(time.monotonic() - started, 4)
        finally:
            await stop_process(proc)


async def _retry_connect(port: int, path: str, started: float) -> None:
    while True:
        try:
            client: Any = await connect(WsClient, "127.0.0.1", port, path, timeout=5)
        except (OSError, HandshakeError, TimeoutError):
            if time.monotonic() - started > START_TIMEOUT:
                raise
            await asyncio.sleep(0.002)
            continue
        client.close()
        return


async def cold_botical(data_dir: Path, token: str, tmp: Path) -> float:
    """Plain `botical serve` (default configuration) on an existing data directory."""
    port = free_port()
    command = [PY, "-m", "botical", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    return await first_connection(command, clean_env(), port, token, tmp / "cold.log")


async def cold_botical_fresh(tmp: Path) -> float:
    """First ever start: empty data directory (migrations, secret, local admin)."""
    port = free_port()
    fresh = tmp / f"fresh-{port}"
    command = [PY, "-m", "botical", "serve", "--data-dir", str(fresh), "--port", str(port)]
    return await first_connection(command, clean_env(), port, None, tmp / "cold.log")


async def cold_baseline(tmp: Path) -> float:
    port = free_port()
    command = [PY, str(BENCH / "baseline_server.py"), "--port", str(port)]
    return await first_connection(command, clean_env(), port, "", tmp / "cold.log")
