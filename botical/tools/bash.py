"""The bash tool: a command in the project directory, minimal environment, timeout, output cap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from marshmallow import Schema, fields, validate

from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.sandbox import minimal_env

KILL_GRACE = 5  # seconds to wait for a killed command's exit


class BashArgs(Schema):
    command = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    timeout = fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "Seconds before it is killed"}
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
    assert proc.stdout is not None
    chunks: list[bytes] = []
    size = 0

    async def drain() -> None:
        nonlocal size
        while chunk := await proc.stdout.read(65536):
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


async def bash(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Run a shell command in the project directory."""
    workspace = ctx.require_workspace()
    limits = ctx.settings.tools
    timeout = min(args.get("timeout", limits.bash_timeout), limits.bash_max_timeout)
    code, output, truncated = await run_command(
        ["/bin/bash", "-c", args["command"]],
        str(workspace),
        minimal_env(workspace),
        timeout,
        limits.output_limit,
    )
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
