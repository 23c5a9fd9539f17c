"""A tool whose rule is `ask` waits for an answer: approve runs it, reject refuses it, once."""

from __future__ import annotations

import json

import pytest

from tests.integration.agent.helpers import parts


def write(path: str, content: str = "written") -> str:
    return "/tool write " + json.dumps({"path": path, "content": content})


@pytest.mark.gen_test
async def test_ask_waits_and_lists_the_approval(chat, events):
    run_id = await chat.started(write("a.txt"))
    approval = await chat.approval(run_id)
    await events.wait("agent.status_changed", runId=run_id, status="waiting_approval")
    listed = await chat.person.api.get(f"/api/sessions/{chat.sid}/approvals")
    assert [(a["id"], a["tool"], a["status"]) for a in listed.body["items"]] == [
        (approval["id"], "write", "pending")
    ]
    assert approval["arguments"] == {"path": "a.txt", "content": "written"}
    assert not (chat.workspace / "a.txt").exists()


@pytest.mark.gen_test
async def test_approved_call_runs(chat):
    run_id = await chat.started(write("a.txt"))
    approved = await chat.approve(run_id)
    assert approved.status == 200, approved.body
    answer = await chat.finished(run_id)
    assert (chat.workspace / "a.txt").read_text() == "written"
    assert [p["isError"] for p in parts(answer, "tool_result")] == [False]


@pytest.mark.gen_test
async def test_rejected_call_is_refused_with_the_reason(chat):
    run_id = await chat.started(write("a.txt"))
    approval = await chat.approval(run_id)
    rejected = await chat.person.api.post(
        f"/api/approvals/{approval['id']}/reject", {"reason": "not that file"}
    )
    assert rejected.status == 200, rejected.body
    answer = await chat.finished(run_id)
    (result,) = parts(answer, "tool_result")
    assert result["isError"] is True
    assert "not that file" in result["output"]
    assert not (chat.workspace / "a.txt").exists()


@pytest.mark.gen_test
async def test_second_answer_conflicts(chat):
    run_id = await chat.started(write("a.txt"))
    approval = await chat.approval(run_id)
    await chat.person.api.post(f"/api/approvals/{approval['id']}/approve", {})
    second = await chat.person.api.post(f"/api/approvals/{approval['id']}/reject", {})
    assert (second.status, second.error_code) == (409, "CONFLICT")
    await chat.finished(run_id)
    assert (chat.workspace / "a.txt").exists()


@pytest.mark.gen_test
async def test_session_scope_approves_later_calls(chat, events):
    first = await chat.started(write("a.txt"))
    await chat.approve(first, scope="session")
    await chat.finished(first)
    second = await chat.started(write("b.txt"))
    await chat.finished(second)
    assert (chat.workspace / "b.txt").read_text() == "written"
    assert events.find("tool.approval_required", approval__runId=second) == []


@pytest.mark.gen_test
async def test_session_scope_stays_in_its_session(chat, events):
    await chat.approve(first := await chat.started(write("a.txt")), scope="session")
    await chat.finished(first)
    other = await chat.new_session()
    run_id = await other.started(write("b.txt"))
    assert (await other.approval(run_id))["tool"] == "write"
