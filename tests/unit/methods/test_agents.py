"""agents.* over a real socket: the built-in agents, a project's custom ones, NOT_FOUND."""

from __future__ import annotations

import pytest

from tests.unit.methods.helpers import add_member, fails, new_project

AGENT_KEYS = {"name", "description", "prompt", "model", "tools", "maxSteps", "rules", "builtin"}


async def _owner(make_user, connect):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    return alice, project_id, await connect(alice)


async def _custom_agent(owner, project_id, **body):
    created = await owner.api.post(f"/api/projects/{project_id}/agents", body)
    assert created.status == 201, created.body
    return created.body


@pytest.mark.gen_test
async def test_list_has_the_builtin_agents(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    listed = await ws.request("agents.list", projectId=project_id)
    by_name = {a["name"]: a for a in listed["items"]}
    assert {"default", "explore", "plan"} <= set(by_name)
    assert all(set(a) == AGENT_KEYS for a in listed["items"])
    assert all(by_name[n]["builtin"] is True for n in ("default", "explore", "plan"))
    assert by_name["default"]["tools"] is None  # every tool
    assert "write" not in by_name["explore"]["tools"]
    assert "read" in by_name["plan"]["tools"]


@pytest.mark.gen_test
async def test_list_adds_the_projects_own_agents_only(make_user, connect):
    alice, project_id, ws = await _owner(make_user, connect)
    other_project = await new_project(alice)
    await _custom_agent(alice, project_id, name="reviewer", tools=["read"], maxSteps=3)
    await _custom_agent(alice, other_project, name="elsewhere")
    names = [a["name"] for a in (await ws.request("agents.list", projectId=project_id))["items"]]
    assert "reviewer" in names
    assert "elsewhere" not in names
    assert names.index("reviewer") > names.index("plan")  # built-ins come first


@pytest.mark.gen_test
async def test_get_a_builtin_agent(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    plan = await ws.request("agents.get", projectId=project_id, name="plan")
    listed = await ws.request("agents.list", projectId=project_id)
    assert plan == next(a for a in listed["items"] if a["name"] == "plan")
    assert plan["maxSteps"] >= 1
    assert plan["prompt"]


@pytest.mark.gen_test
async def test_get_a_custom_agent(make_user, connect):
    alice, project_id, ws = await _owner(make_user, connect)
    await _custom_agent(
        alice,
        project_id,
        name="reviewer",
        description="Reviews",
        tools=["read", "grep"],
        maxSteps=3,
        rules=[{"tool": "grep", "action": "deny"}],
    )
    agent = await ws.request("agents.get", projectId=project_id, name="reviewer")
    assert agent == {
        "name": "reviewer",
        "description": "Reviews",
        "prompt": "",
        "model": None,
        "tools": ["read", "grep"],
        "maxSteps": 3,
        "rules": [{"tool": "grep", "action": "deny", "pattern": "*"}],
        "builtin": False,
    }


@pytest.mark.gen_test
async def test_an_unknown_agent_is_not_found(make_user, connect):
    alice, project_id, ws = await _owner(make_user, connect)
    other_project = await new_project(alice)
    await _custom_agent(alice, other_project, name="elsewhere")
    await fails(ws, "agents.get", "NOT_FOUND", projectId=project_id, name="nobody")
    await fails(ws, "agents.get", "NOT_FOUND", projectId=project_id, name="elsewhere")


@pytest.mark.gen_test
async def test_params_are_validated(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    error = await fails(ws, "agents.get", "VALIDATION_ERROR", projectId=project_id)
    assert "name" in error.details
    error = await fails(ws, "agents.list", "VALIDATION_ERROR", projectId="project-1")
    assert "projectId" in error.details


@pytest.mark.gen_test
async def test_a_viewer_may_read_agents_and_a_stranger_may_not(make_user, connect):
    alice, project_id, _ = await _owner(make_user, connect)
    viewer, stranger = await make_user("victor"), await make_user("mallory")
    await add_member(alice, project_id, viewer, "viewer")
    viewer_ws = await connect(viewer)
    assert (await viewer_ws.request("agents.get", projectId=project_id, name="default"))["builtin"]
    stranger_ws = await connect(stranger)
    await fails(stranger_ws, "agents.list", "NOT_FOUND", projectId=project_id)
    await fails(stranger_ws, "agents.get", "NOT_FOUND", projectId=project_id, name="default")
