"""Built-in tools called through their public surface: check_args, then execute."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from botical.auth.identity import Identity
from botical.config import Settings, ToolSettings
from botical.tools import builtin
from botical.tools.base import Tool, ToolContext, ToolResult


def builtin_tools() -> dict[str, Tool]:
    """The tools the real plugin registers, by name."""
    tools: dict[str, Tool] = {}
    builtin.botical_register_tools(register=lambda tool: tools.setdefault(tool.name, tool))
    return tools


BUILTIN = builtin_tools()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace, with a file the tools must never reach."""
    other = tmp_path / "outside"
    other.mkdir()
    (other / "secret.txt").write_text("TOP SECRET outside the project\n")
    (other / "leak.py").write_text("SECRET = 1\n")
    return other.resolve()


@pytest.fixture
def make_ctx(workspace: Path) -> Callable[..., ToolContext]:
    def make(root: Path | None = workspace, **limits: Any) -> ToolContext:
        identity = Identity(
            user_id="u1",
            name="tester",
            is_admin=False,
            can_execute_code=True,
            kind="token",
            credential_id="jti-1",
        )
        return ToolContext(
            identity=identity,
            project_id="p1",
            session_id="s1",
            message_id="m1",
            run_id="r1",
            workspace=root,
            services=None,
            settings=Settings(tools=ToolSettings(**limits)),
        )

    return make


@pytest.fixture
def call(make_ctx) -> Callable[..., Awaitable[ToolResult]]:
    """Validate `args` for the named built-in tool and run it (limits override ToolSettings)."""

    async def run(name: str, args: Any, ctx: ToolContext | None = None, **limits) -> ToolResult:
        tool = BUILTIN[name]
        return await tool.execute(ctx or make_ctx(**limits), tool.check_args(args))

    return run
