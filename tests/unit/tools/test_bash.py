from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import signal
import time

import pytest

from botical.tools.base import ToolFailure
from botical.tools.bash import KILL_GRACE

from .conftest import BUILTIN


async def exited(pid: int, within: float = 10.0) -> bool:
    """Wait, on a pidfd rather than by polling, until `pid` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(await asyncio.to_thread(poller.poll, within * 1000))
    finally:
        os.close(fd)


def still_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Killed orphans go to PID 1; one that reaps lazily shows them as zombies, not running.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0] != "Z"


def printed_pid(message: str) -> int:
    return int(re.search(r"^PID (\d+)$", message, re.M).group(1))


@contextlib.contextmanager
def reaping(pids: list[int]):
    """Kill what a failing test would otherwise leave running."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_bash_needs_code_execution_and_is_not_read_only():
    assert BUILTIN["bash"].needs_exec is True
    assert BUILTIN["bash"].read_only is False
    assert BUILTIN["bash"].subject == "command"


@pytest.mark.gen_test
async def test_bash_runs_in_the_workspace(call, workspace):
    (workspace / "marker.txt").write_text("")
    result = await call("bash", {"command": "pwd -P; ls"})
    assert result.output == f"{workspace}\nmarker.txt\n"
    assert not result.is_error
    assert result.metadata == {"exitCode": 0}


@pytest.mark.gen_test
async def test_bash_gets_a_minimal_environment_without_server_secrets(call, workspace, monkeypatch):
    secrets = {
        "BOTICAL_AUTH_SECRET": "jwt-signing-secret-5f1d",
        "OPENAI_API_KEY": "sk-test-9a8b7c6d",
        "BOTICAL_DATABASE_URL": "postgresql://bot:hunter2@db/botical",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = await call("bash", {"command": "env"})
    env = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
    for name, value in secrets.items():
        assert name not in result.output
        assert value not in result.output
    assert "/usr/bin" in env["PATH"].split(":")
    assert env["HOME"] == str(workspace)


@pytest.mark.gen_test
async def test_bash_non_zero_exit_is_an_error_with_the_code(call):
    result = await call("bash", {"command": "echo oops; echo bad >&2; exit 3"})
    assert result.is_error
    assert result.output == "oops\nbad\n\n[exit code 3]"
    assert result.metadata == {"exitCode": 3}


@pytest.mark.gen_test(timeout=30)
async def test_bash_timeout_kills_the_command_and_its_children(call):
    pids: list[int] = []
    with reaping(pids):
        with pytest.raises(ToolFailure, match=r"timed out after 1s") as caught:
            await call("bash", {"command": "sleep 30 & echo PID $!; sleep 30", "timeout": 1})
        pids.append(printed_pid(str(caught.value)))
        assert await exited(pids[0])
        assert not still_runs(pids[0])


@pytest.mark.gen_test(timeout=30)
async def test_bash_timeout_kills_a_background_child_after_the_shell_has_exited(call):
    # The shell exits at once; its child keeps the output pipe open until the timeout.
    pids: list[int] = []
    with reaping(pids):
        with pytest.raises(ToolFailure, match="timed out") as caught:
            await call("bash", {"command": "sleep 30 & echo PID $!", "timeout": 1})
        pids.append(printed_pid(str(caught.value)))
        assert await exited(pids[0])
        assert not still_runs(pids[0])


@pytest.mark.gen_test(timeout=30)
async def test_bash_timeout_returns_even_if_a_child_left_the_process_group(call):
    # setsid puts the child out of reach of killpg; the tool must still return on time.
    pids: list[int] = []
    with reaping(pids):
        started = time.monotonic()
        with pytest.raises(ToolFailure, match="timed out") as caught:
            await call("bash", {"command": "setsid sleep 60 & echo PID $!; sleep 60", "timeout": 1})
        assert time.monotonic() - started < 1 + KILL_GRACE + 5
        pids.append(printed_pid(str(caught.value)))
        assert still_runs(pids[0])  # out of reach, as expected: the test ends it
        os.kill(pids[0], signal.SIGKILL)
        assert await exited(pids[0])
        # Give the loop a few turns to see the pipe close before pytest closes the loop.
        assert (await call("bash", {"command": "echo done"})).output == "done\n"


@pytest.mark.gen_test(timeout=15)
async def test_bash_timeout_argument_is_capped_by_bash_max_timeout(call):
    started = time.monotonic()
    with pytest.raises(ToolFailure, match=r"timed out after 1s"):
        await call("bash", {"command": "sleep 30", "timeout": 600}, bash_max_timeout=1)
    assert time.monotonic() - started < 10


@pytest.mark.gen_test(timeout=15)
async def test_bash_default_timeout_comes_from_settings(call):
    with pytest.raises(ToolFailure, match=r"timed out after 1s"):
        await call("bash", {"command": "sleep 30"}, bash_timeout=1)


@pytest.mark.gen_test
async def test_bash_output_is_capped(call):
    result = await call("bash", {"command": "yes | head -c 1000000"}, output_limit=4096)
    assert result.output.endswith("\n[output truncated]")
    assert len(result.output) == 4096 + len("\n[output truncated]")
    assert not result.is_error


@pytest.mark.gen_test
async def test_bash_output_under_the_cap_is_not_marked(call):
    result = await call(
        "bash", {"command": "head -c 4096 /dev/zero | tr '\\0' y"}, output_limit=4096
    )
    assert result.output == "y" * 4096
