"""Fixtures for the client and chat tests: a restartable `botical serve` subprocess and
`botical chat` subprocesses, all killed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.client.helpers import ChatProcess, ServeProcess, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    """A running `botical serve` on a free port picked up front and a fresh data dir."""
    process = ServeProcess(tmp_path / "data", free_port(), tmp_path)
    try:
        yield process.start()
    finally:
        process.kill()


@pytest.fixture
def chat(tmp_path: Path, server: ServeProcess) -> Iterator[Callable[..., ChatProcess]]:
    """`chat(*args, tty=False)` starts `botical chat --url URL --token T *args`."""
    started: list[ChatProcess] = []

    def start(*args: str, tty: bool = False) -> ChatProcess:
        argv = ["--url", server.ws_url, "--token", server.token, *args]
        started.append(ChatProcess(argv, tmp_path, tty=tty))
        return started[-1]

    yield start
    for process in started:
        process.kill()
