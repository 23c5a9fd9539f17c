"""The bash tool: a command in the project directory, minimal environment, timeout, output cap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.sandbox import minimal_env

KILL_GRACE = 5  # seconds to wait for a killed command's exit


class BashArgs(Schema):
    command = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    timeout = fields.Integer(
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Seconds before it is killed"},
    )


async def run_command(
    argv: list[str], cwd: str, env: dict[str, str], timeout: float, cap: int
) -> tuple[int | None, bytes, bool]:
    """Run argv; return (exit code, or None on timeout; output; whether it was truncated)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout kills its children too
    )
    stdout = proc.stdout
    assert stdout is not None
    chunks: list[bytes] = []
    size = 0

    async def drain() -> None:
        nonlocal size
        while chunk := await stdout.read(65536):
            if size < cap:
                chunks.append(chunk[: cap - size])
            size += len(chunk)

    finished = False
    try:
        await asyncio.wait_for(asyncio.gather(drain(), proc.wait()), timeout)
        finished = True
        return proc.returncode, b"".join(chunks), size > cap
    except TimeoutError:
        return None, b"".join(chunks), size > cap
    finally:
        if not finished:  # timed out or cancelled: kill the whole group, even if bash has exited
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # proc.wait() also waits for the pipe, which a child in another session may hold
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), KILL_GRACE)


async def command_result(argv: list[str], workspace: Path, timeout: float, cap: int) -> ToolResult:
    """Run argv in `workspace` with the minimal environment; its output (and exit code) as the
    tool's result, a tool error when it fails, cannot start or times out."""
    try:
        code, output, truncated = await run_command(
            argv, str(workspace), minimal_env(workspace), timeout, cap
        )
    except OSError as exc:
        raise ToolFailure(f"Cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    text = output.decode("utf-8", errors="replace")
    if truncated:
        text += "\n[output truncated]"
    if code is None:
        raise ToolFailure(f"Command timed out after {timeout}s\n{text}")
    return ToolResult(
        f"{text}\n[exit code {code}]" if code else text,
        is_error=code != 0,
        metadata={"exitCode": code},
    )


async def bash(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Run a shell command in the project directory."""
    workspace = ctx.require_workspace()
    limits = ctx.settings.tools
    timeout = min(args.get("timeout", limits.bash_timeout), limits.bash_max_timeout)
    return await command_result(
        ["/bin/bash", "-c", args["command"]], workspace, timeout, limits.output_limit
    )


TOOLS = (
    Tool(
        "bash",
        "Run a bash command in the project directory.",
        bash,
        BashArgs,
        needs_exec=True,
        subject="command",
    ),
)
