"""tools.* over a real socket: the tool list with JSON Schemas, and approvals answered by
approve/reject, listed by pending, first answer wins."""

from __future__ import annotations

import json

import pytest

from botical.ids import new_id
from tests.unit.methods.helpers import add_member, fails, new_project, run_finished

BUILTIN_TOOLS = {"read", "write", "edit", "glob", "grep", "bash", "task"}


def write_call(path: str, content: str = "written") -> str:
    return "/tool write " + json.dumps({"path": path, "content": content})


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "ws"
    path.mkdir()
    return path


async def _setup(make_user, connect, workspace):
    """An admin's project on `workspace`, a session, and a socket subscribed to it."""
    owner = await make_user("owner", admin=True)
    project_id = await new_project(owner, path=str(workspace))
    ws = await connect(owner)
    session = await ws.request("sessions.create", projectId=project_id)
    await ws.subscribe(f"session:{session['id']}")
    return owner, project_id, session["id"], ws


async def _asking(ws, sid, path="a.txt"):
    """Send a write that needs approval; return (run id, the approval it asks for)."""
    sent = await ws.request("messages.send", sessionId=sid, content=write_call(path))
    event = await ws.next_event("tool.approval_required", approval__runId=sent["runId"])
    return sent["runId"], event["data"]["approval"]


async def _tool_result(ws, sid, run_id):
    items = (await ws.request("messages.list", sessionId=sid))["items"]
    answer = next(m for m in items if m["runId"] == run_id and m["role"] == "assistant")
    (result,) = [p for p in answer["parts"] if p["type"] == "tool_result"]
    return result


@pytest.mark.gen_test
async def test_list_has_the_builtin_tools_with_json_schemas(make_user, connect):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(alice)
    items = (await ws.request("tools.list", projectId=project_id))["items"]
    by_name = {t["name"]: t for t in items}
    assert set(by_name) >= BUILTIN_TOOLS
    for tool in items:
        assert set(tool) == {"name", "description", "parameters", "source", "readOnly", "needsExec"}
        assert tool["description"]
        assert tool["parameters"]["type"] == "object"
        assert isinstance(tool["parameters"]["properties"], dict)
    write = by_name["write"]["parameters"]
    assert write["properties"]["path"]["type"] == "string"
    assert write["properties"]["content"]["type"] == "string"
    assert set(write["required"]) >= {"path", "content"}
    assert write["additionalProperties"] is False
    assert "command" in by_name["bash"]["parameters"]["properties"]
    flags = {
        n: (by_name[n]["readOnly"], by_name[n]["needsExec"]) for n in ("read", "write", "bash")
    }
    assert flags == {"read": (True, False), "write": (False, False), "bash": (False, True)}


@pytest.mark.gen_test
async def test_approve_lets_the_call_run(make_user, connect, workspace):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    run_id, approval = await _asking(ws, sid)
    assert (approval["tool"], approval["status"], approval["sessionId"]) == (
        "write",
        "pending",
        sid,
    )
    assert approval["arguments"] == {"path": "a.txt", "content": "written"}
    pending = await ws.request("tools.pending", sessionId=sid)
    assert [(a["id"], a["status"]) for a in pending["items"]] == [(approval["id"], "pending")]
    assert not (workspace / "a.txt").exists()
    approved = await ws.request("tools.approve", approvalId=approval["id"])
    assert (approved["id"], approved["status"], approved["scope"]) == (
        approval["id"],
        "approved",
        "once",
    )
    resolved = await ws.next_event("tool.approval_resolved", approval__id=approval["id"])
    assert resolved["data"]["approval"]["status"] == "approved"
    await run_finished(ws, run_id)
    assert (workspace / "a.txt").read_text() == "written"
    assert (await _tool_result(ws, sid, run_id))["isError"] is False
    assert (await ws.request("tools.pending", sessionId=sid))["items"] == []


@pytest.mark.gen_test
async def test_reject_refuses_the_call_with_the_reason(make_user, connect, workspace):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    run_id, approval = await _asking(ws, sid)
    rejected = await ws.request("tools.reject", approvalId=approval["id"], reason="not that file")
    assert (rejected["status"], rejected["reason"]) == ("rejected", "not that file")
    await run_finished(ws, run_id)
    assert not (workspace / "a.txt").exists()
    result = await _tool_result(ws, sid, run_id)
    assert result["isError"] is True
    assert "not that file" in result["output"]
    assert (await ws.request("tools.pending", sessionId=sid))["items"] == []


@pytest.mark.gen_test
@pytest.mark.parametrize(("first", "second"), [("approve", "reject"), ("reject", "approve")])
async def test_a_second_answer_is_a_conflict(make_user, connect, workspace, first, second):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    run_id, approval = await _asking(ws, sid)
    answered = await ws.request(f"tools.{first}", approvalId=approval["id"])
    await fails(ws, f"tools.{second}", "CONFLICT", approvalId=approval["id"])
    await fails(ws, f"tools.{first}", "CONFLICT", approvalId=approval["id"])
    await run_finished(ws, run_id)
    assert (workspace / "a.txt").exists() == (first == "approve")
    pending = await ws.request("tools.pending", sessionId=sid)
    assert pending["items"] == []
    assert answered["status"] == {"approve": "approved", "reject": "rejected"}[first]


@pytest.mark.gen_test
async def test_session_scope_approves_later_calls_of_that_tool(make_user, connect, workspace):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    run_id, approval = await _asking(ws, sid, "a.txt")
    approved = await ws.request("tools.approve", approvalId=approval["id"], scope="session")
    assert approved["scope"] == "session"
    await run_finished(ws, run_id)
    again = await ws.request("messages.send", sessionId=sid, content=write_call("b.txt"))
    await run_finished(ws, again["runId"])
    assert (workspace / "b.txt").read_text() == "written"
    assert not [
        f
        for f in ws.frames
        if f.get("event") == "tool.approval_required"
        and f["data"]["approval"]["runId"] == again["runId"]
    ]


@pytest.mark.gen_test
async def test_a_viewer_cannot_answer_but_sees_pending(make_user, connect, workspace):
    owner, project_id, sid, ws = await _setup(make_user, connect, workspace)
    viewer = await make_user("victor")
    await add_member(owner, project_id, viewer, "viewer")
    viewer_ws = await connect(viewer)
    run_id, approval = await _asking(ws, sid)
    await fails(viewer_ws, "tools.approve", "FORBIDDEN", approvalId=approval["id"])
    await fails(viewer_ws, "tools.reject", "FORBIDDEN", approvalId=approval["id"])
    pending = await viewer_ws.request("tools.pending", sessionId=sid)
    assert [(a["id"], a["status"]) for a in pending["items"]] == [(approval["id"], "pending")]
    await ws.request("tools.approve", approvalId=approval["id"])
    await run_finished(ws, run_id)
    assert (workspace / "a.txt").exists()


@pytest.mark.gen_test
async def test_a_member_may_answer(make_user, connect, workspace):
    owner, project_id, sid, ws = await _setup(make_user, connect, workspace)
    member = await make_user("bob")
    await add_member(owner, project_id, member, "member")
    member_ws = await connect(member)
    run_id, approval = await _asking(ws, sid)
    assert (await member_ws.request("tools.reject", approvalId=approval["id"]))["status"] == (
        "rejected"
    )
    await run_finished(ws, run_id)


@pytest.mark.gen_test
async def test_a_stranger_cannot_see_or_answer(make_user, connect, workspace):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    mallory = await make_user("mallory")
    mallory_ws = await connect(mallory)
    run_id, approval = await _asking(ws, sid)
    theirs = await fails(mallory_ws, "tools.approve", "NOT_FOUND", approvalId=approval["id"])
    unknown = await fails(mallory_ws, "tools.reject", "NOT_FOUND", approvalId=new_id("appr"))
    assert theirs.message == unknown.message  # an approval id cannot be probed
    await fails(mallory_ws, "tools.pending", "NOT_FOUND", sessionId=sid)
    assert len((await ws.request("tools.pending", sessionId=sid))["items"]) == 1
    await ws.request("tools.reject", approvalId=approval["id"])
    await run_finished(ws, run_id)


@pytest.mark.gen_test
async def test_approval_params_are_validated(make_user, connect, workspace):
    _, _, sid, ws = await _setup(make_user, connect, workspace)
    await fails(ws, "tools.approve", "NOT_FOUND", approvalId=new_id("appr"))
    error = await fails(ws, "tools.approve", "VALIDATION_ERROR", approvalId="sess_1")
    assert "approvalId" in error.details
    run_id, approval = await _asking(ws, sid)
    error = await fails(
        ws, "tools.approve", "VALIDATION_ERROR", approvalId=approval["id"], scope="forever"
    )
    assert "scope" in error.details
    error = await fails(
        ws, "tools.reject", "VALIDATION_ERROR", approvalId=approval["id"], reason="r" * 2001
    )
    assert "reason" in error.details
    assert len((await ws.request("tools.pending", sessionId=sid))["items"]) == 1
    await ws.request("tools.reject", approvalId=approval["id"])
    await run_finished(ws, run_id)
