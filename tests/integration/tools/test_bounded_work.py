"""Work a model controls (a regex, a walk, a line range) is bounded in time in a worker
process: while a catastrophic pattern runs, the server keeps answering other clients, and the
result says the search was stopped."""

from __future__ import annotations

import json

import pytest

from botical.testing import ApiClient
from tests.integration.agent.helpers import parts

TIME_LIMIT = 3.0


@pytest.fixture
def botical_overrides():
    return {"tools": {"search_timeout": TIME_LIMIT}}


def tool_call(name: str, **args) -> str:
    return f"/tool {name} {json.dumps(args)}"


@pytest.mark.gen_test(timeout=60)
async def test_a_catastrophic_grep_is_stopped_while_health_keeps_answering(
    botical_app, chat, events
):
    (chat.workspace / "a.txt").write_text(("a" * 40 + "\n") * 3)  # (a+)+b: 2**40 steps a line
    (chat.workspace / "0-match.txt").write_text("ab\n")  # searched first: names are sorted
    run_id = await chat.started(tool_call("grep", pattern="(a+)+b"))
    await events.wait("part.updated", part__type="tool_call", part__status="running")
    other = ApiClient(botical_app.url)
    for _ in range(5):
        health = await other.get("/health")
        assert health.status == 200
        assert not events.find("part.created", part__type="tool_result")  # still searching
    answer = await chat.finished(run_id)
    (result,) = parts(answer, "tool_result")
    assert result["output"].startswith("0-match.txt:1: ab")  # found before the stop: kept
    assert f"[stopped after {TIME_LIMIT}s, the time limit" in result["output"]
    assert not result["isError"]


@pytest.mark.parametrize("botical_overrides", [{"tools": {"search_timeout": 0.1}}])
@pytest.mark.gen_test(timeout=60)
async def test_a_line_range_deep_in_a_huge_file_is_stopped(chat):
    lines = 20_000_000
    (chat.workspace / "huge.txt").write_bytes(b"x\n" * lines)
    answer = await chat.answer(tool_call("read", path="huge.txt", offset=lines))
    (result,) = parts(answer, "tool_result")
    assert result["isError"]
    assert "took longer than 0.1s and was stopped" in result["output"]


@pytest.mark.gen_test(timeout=60)
async def test_a_file_without_newlines_is_read_in_pieces(chat):
    (chat.workspace / "one-line.txt").write_bytes(b"y" * 5_000_000)
    answer = await chat.answer(tool_call("read", path="one-line.txt", offset=2))
    (result,) = parts(answer, "tool_result")
    assert (result["output"], result["isError"]) == ("", False)  # no second line: nothing
