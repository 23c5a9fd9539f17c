"""A real `botical serve` subprocess and a headless Debian Chromium driven by selenium.

Chromium and ChromeDriver come from Debian (`apt-get install chromium chromium-driver`;
.ci/prepare, run by `make test`, installs them). Selenium is given both paths, so it never looks
for or downloads a browser.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The flags this machine needs: no sandbox as root, and no background calls to the internet.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "browser"
URL_LINE = re.compile(r"^\s*(http://127\.0\.0\.1:\d+)/\?token=(\S+)$")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}


class Server:
    """One `botical serve` process; its output is read line by line on background threads."""

    def __init__(self, port: int, data_dir: Path, cwd: Path, *args: str) -> None:
        command = [sys.executable, "-m", "botical", "serve", "--port", str(port), *args]
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=cwd,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout.put)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append)),
        ]
        for pump in self._pumps:
            pump.daemon = True
            pump.start()

    @staticmethod
    def _pump(stream, sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def console_url(self) -> tuple[str, str]:
        """The base URL and token of the `http://127.0.0.1:PORT/?token=...` line it prints."""
        deadline = time.monotonic() + START_TIMEOUT
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.stdout.get(timeout=remaining)
            except queue.Empty:
                break
            if match := URL_LINE.match(line):
                return match.group(1), match.group(2)
        raise AssertionError(f"botical serve printed no URL; stderr: {self.stderr}")

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The project's directory: the agent's file tools write here."""
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def cli(data_dir: Path, tmp_path: Path) -> Callable[..., str]:
    """`cli(*args)` runs one `botical` command and returns the line it printed."""

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "botical", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=tmp_path,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    return run


@pytest.fixture
def serve(data_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`serve(port, *args)` starts `botical serve` on that port (with more arguments, such as
    `--config FILE`); every server is killed after the test."""
    servers: list[Server] = []

    def start(port: int, *args: str) -> Server:
        servers.append(Server(port, data_dir, tmp_path, *args))
        return servers[-1]

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on now, reused by every restart of the test's server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/browser/, emptied once per test run."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def browser(
    tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile; its console log is saved as an artifact."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium chromium-driver, as .ci/prepare does)",
            pytrace=False,
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        lines = [f"{e['level']} {e['message']}" for e in driver.get_log("browser")]
        log = artifacts / f"{_label(request)}-console.log"
        log.write_text("".join(f"{line}\n" for line in lines))
        driver.quit()


def _label(request: pytest.FixtureRequest) -> str:
    return request.node.originalname.removeprefix("test_")


@pytest.fixture
def screenshot(
    browser: webdriver.Chrome, artifacts: Path, request: pytest.FixtureRequest
) -> Callable[[str], None]:
    """`screenshot(name)` saves test-artifacts/browser/TEST-NN-name.png, numbered in order."""
    taken: list[str] = []

    def take(name: str) -> None:
        taken.append(name)
        path = artifacts / f"{_label(request)}-{len(taken):02d}-{name}.png"
        assert browser.save_screenshot(str(path)), path

    return take
