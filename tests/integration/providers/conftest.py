from __future__ import annotations

import socket

import pytest

from tests.integration.providers.fake_api import FakeAPI


@pytest.fixture
def openai_api(io_loop):
    """A fake OpenAI-compatible server answering `POST /v1/chat/completions`."""
    api = FakeAPI("/v1/chat/completions")
    io_loop.run_sync(api.start)
    yield api
    io_loop.run_sync(api.stop)


@pytest.fixture
def anthropic_api(io_loop):
    """A fake Anthropic server answering `POST /v1/messages`."""
    api = FakeAPI("/v1/messages")
    io_loop.run_sync(api.start)
    yield api
    io_loop.run_sync(api.stop)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
