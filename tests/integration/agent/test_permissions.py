"""Which tool calls run, ask or are refused: defaults, agent rules, code execution, roles."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import open_chat, parts

READ_ONLY_CALLS = (
    ('/tool read {"path": "notes.txt"}', "seven apples"),
    ('/tool glob {"pattern": "*.txt"}', "notes.txt"),
    ('/tool grep {"pattern": "apples"}', "notes.txt:1: seven apples"),
)


async def add_agent(chat, **agent) -> None:
    created = await chat.person.api.post(f"/api/projects/{chat.project['id']}/agents", agent)
    assert created.status == 201, created.body


@pytest.mark.gen_test
@pytest.mark.parametrize(("content", "output"), READ_ONLY_CALLS)
async def test_read_only_tools_run_without_approval(chat, events, content, output):
    (chat.workspace / "notes.txt").write_text("seven apples")
    answer = await chat.answer(content)
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], result["output"]) == (False, output)
    assert events.find("tool.approval_required") == []


@pytest.mark.gen_test
async def test_deny_rule_refuses_write(chat, events):
    await add_agent(chat, name="careful", rules=[{"tool": "write", "action": "deny"}])
    answer = await chat.answer('/tool write {"path": "a.txt", "content": "x"}', agent="careful")
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], parts(answer, "tool_call")[0]["status"]) == (True, "denied")
    assert events.find("tool.approval_required") == []
    assert not (chat.workspace / "a.txt").exists()


@pytest.mark.gen_test
async def test_allow_rule_runs_matching_command(chat, events):
    rule = {"tool": "bash", "pattern": "echo *", "action": "allow"}
    await add_agent(chat, name="echoer", rules=[rule])
    answer = await chat.answer('/tool bash {"command": "echo hi"}', agent="echoer")
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], result["output"]) == (False, "hi\n")
    assert events.find("tool.approval_required") == []


@pytest.mark.gen_test
async def test_allow_rule_does_not_cover_other_commands(chat):
    rule = {"tool": "bash", "pattern": "echo *", "action": "allow"}
    await add_agent(chat, name="echoer", rules=[rule])
    run_id = await chat.started('/tool bash {"command": "ls"}', agent="echoer")
    assert (await chat.approval(run_id))["arguments"] == {"command": "ls"}


@pytest.mark.gen_test
async def test_bash_refused_without_code_execution(botical_app, make_user, events, workspace):
    admin = await make_user("admin", admin=True, exec=False)
    chat = await open_chat(admin, workspace, events)
    answer = await chat.answer('/tool bash {"command": "echo hi"}')
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], result["output"]) == (True, "This user may not execute code")
    assert events.find("tool.approval_required") == []


@pytest.mark.gen_test
async def test_bash_runs_after_approval_with_code_execution(chat):
    run_id = await chat.started('/tool bash {"command": "echo hi"}')
    await chat.approve(run_id)
    answer = await chat.finished(run_id)
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], result["output"]) == (False, "hi\n")
