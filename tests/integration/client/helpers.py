"""Real subprocesses for the client and chat tests: `botical serve` on a fixed port and data
directory (so it can be restarted in place), `botical chat` on pipes or on a pseudo-terminal,
and a Transcript that reads their output on a thread and waits for patterns with a deadline."""

from __future__ import annotations

import codecs
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
EXPECT_TIMEOUT = 20.0
SERVE = (sys.executable, "-m", "botical", "serve")
URL_LINE = re.compile(r"http://127\.0\.0\.1:\d+/\?token=(\S+)")
# Run by the child of a new session: take the pty on stdin as the controlling terminal, so
# Ctrl-C typed into the pty is a real SIGINT for the foreground process (botical chat).
TTY_WRAPPER = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Transcript:
    """Everything a file descriptor yields, read on a daemon thread; `expect` waits for a
    pattern after the previous match, up to a deadline."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.text = ""
        self.eof = False
        self._pos = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: every end of the pty is closed
                chunk = b""
            with self._changed:
                if chunk:
                    self.text += decoder.decode(chunk)
                else:
                    self.eof = True
                self._changed.notify_all()
            if not chunk:
                return

    def expect(self, pattern: str, timeout: float = EXPECT_TIMEOUT) -> re.Match[str]:
        """The first match of `pattern` after the previous match, waiting up to `timeout`."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if match := regex.search(self.text, self._pos):
                    self._pos = match.end()
                    return match
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    raise AssertionError(
                        f"{self.name}: no {pattern!r} after:\n{self.text[self._pos :]}"
                    )
                self._changed.wait(remaining)

    def rest(self) -> str:
        """The text after the previous match."""
        with self._changed:
            return self.text[self._pos :]

    def wait_eof(self, timeout: float = STOP_TIMEOUT) -> None:
        self._thread.join(timeout)
        assert self.eof, f"{self.name} is still open"


class ServeProcess:
    """`botical serve` on a fixed port and data dir; `restart()` is a new process (and epoch)
    serving the same data on the same port. `env` adds BOTICAL_* settings (a database URL)."""

    def __init__(
        self, data_dir: Path, port: int, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir, self.port, self.cwd = data_dir, port, cwd
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        """Start and wait for the printed login URL; remember its admin token."""
        self.proc = subprocess.Popen(
            [*SERVE, "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**clean_env(), **self.env},
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stdout = Transcript(self.proc.stdout.fileno(), "serve stdout")
        self.stderr = Transcript(self.proc.stderr.fileno(), "serve stderr")
        self.token = self.stdout.expect(URL_LINE.pattern, START_TIMEOUT).group(1)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        assert self.stop() == 0
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def http(self, method: str, path: str, body: Any = None) -> Any:
        """A REST call as the admin; returns the JSON body, asserting a 2xx status."""
        status, parsed = http(method, self.base_url + path, self.token, body)
        assert 200 <= status < 300, (status, parsed)
        return parsed


def http(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    return status, json.loads(raw) if raw else None


class ChatProcess:
    """`botical chat` with stdin, stdout and stderr on pipes, or all three on a pty."""

    def __init__(self, args: list[str], cwd: Path, tty: bool = False) -> None:
        command = [sys.executable, "-m", "botical", "chat", *args]
        self.tty = tty
        if tty:
            self.master, slave = pty.openpty()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", TTY_WRAPPER, *command],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                env=clean_env(),
                cwd=cwd,
            )
            os.close(slave)
            self.out = self.err = Transcript(self.master, "chat tty")
        else:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env(),
                cwd=cwd,
            )
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self.out = Transcript(self.proc.stdout.fileno(), "chat stdout")
            self.err = Transcript(self.proc.stderr.fileno(), "chat stderr")

    def send(self, text: str) -> None:
        """Type `text` (include the newline)."""
        if self.tty:
            os.write(self.master, text.encode())
        else:
            assert self.proc.stdin is not None
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()

    def end_input(self) -> None:
        """End of input: close the pipe, or Ctrl-D at the start of a line on the pty."""
        if self.tty:
            os.write(self.master, b"\x04")
        else:
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        self.out.wait_eof()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)
        if self.tty:
            self.out.wait_eof()
            os.close(self.master)
