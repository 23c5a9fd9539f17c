"""Fixtures for the agent-core tests: a workspace, a recording plugin, and a ready `chat`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent.helpers import Chat, Recorder, open_chat


@pytest.fixture
def recorder() -> Recorder:
    """A plugin whose providers record requests; pass it through `botical_plugins`."""
    return Recorder()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def chat(io_loop: Any, make_user: Any, events: Any, workspace: Path) -> Chat:
    """An admin who may run code, with a project on `workspace` and a fresh session."""

    async def make() -> Chat:
        owner = await make_user("owner", admin=True, exec=True)
        return await open_chat(owner, workspace, events)

    return io_loop.run_sync(make)
