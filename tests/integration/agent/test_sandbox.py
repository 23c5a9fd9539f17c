"""File tools, called by the agent, cannot leave the project directory."""

from __future__ import annotations

import json

import pytest

from tests.integration.agent.helpers import parts

SECRET = "top secret outside"


@pytest.fixture
def outside(workspace):
    """A secret file next to the workspace, and one in a sibling `<ws>-evil` directory."""
    (workspace.parent / "outside.txt").write_text(SECRET)
    evil = workspace.parent / f"{workspace.name}-evil"
    evil.mkdir()
    (evil / "x").write_text(SECRET)
    return workspace.parent / "outside.txt"


async def read_result(chat, path: str) -> dict:
    answer = await chat.answer("/tool read " + json.dumps({"path": path}))
    (result,) = parts(answer, "tool_result")
    return result


@pytest.mark.gen_test
async def test_dot_dot_is_refused(chat, outside):
    result = await read_result(chat, "../outside.txt")
    assert (result["isError"], SECRET in json.dumps(result)) == (True, False)
    assert "outside the project directory" in result["output"]


@pytest.mark.gen_test
async def test_absolute_path_outside_is_refused(chat, outside):
    result = await read_result(chat, str(outside))
    assert (result["isError"], SECRET in json.dumps(result)) == (True, False)


@pytest.mark.gen_test
async def test_symlink_pointing_outside_is_refused(chat, outside):
    (chat.workspace / "link.txt").symlink_to(outside)
    result = await read_result(chat, "link.txt")
    assert (result["isError"], SECRET in json.dumps(result)) == (True, False)


@pytest.mark.gen_test
async def test_sibling_with_the_same_prefix_is_refused(chat, outside):
    result = await read_result(chat, f"../{chat.workspace.name}-evil/x")
    assert (result["isError"], SECRET in json.dumps(result)) == (True, False)


@pytest.mark.gen_test
async def test_symlinked_directory_is_not_searched(chat, outside):
    (chat.workspace / "escape").symlink_to(outside.parent / f"{chat.workspace.name}-evil")
    answer = await chat.answer('/tool grep {"pattern": "secret"}')
    (result,) = parts(answer, "tool_result")
    assert (result["output"], SECRET in json.dumps(answer)) == ("No matches", False)


@pytest.mark.gen_test
async def test_write_outside_is_refused(chat, outside):
    run_id = await chat.started('/tool write {"path": "../planted.txt", "content": "x"}')
    await chat.approve(run_id)
    answer = await chat.finished(run_id)
    assert [p["isError"] for p in parts(answer, "tool_result")] == [True]
    assert not (chat.workspace.parent / "planted.txt").exists()


@pytest.mark.gen_test
async def test_inside_path_is_read(chat, outside):
    (chat.workspace / "sub").mkdir()
    (chat.workspace / "sub" / "in.txt").write_text("inside")
    result = await read_result(chat, "sub/../sub/in.txt")
    assert (result["isError"], result["output"]) == (False, "inside")
