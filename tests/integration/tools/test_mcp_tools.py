"""MCP tool servers attached as custom tools of kind mcp: real servers written with the SDK
(mcp_servers/), run as stdio subprocesses or served over streamable HTTP, driven by the echo
model through the real server: discovery, approvals, failures, crashes, timeouts, restarts."""

from __future__ import annotations

import pytest

from botical.testing.wsclient import WsClient
from tests.integration.tools.helpers import allowing, call, call_status, define, result_of
from tests.integration.tools.mcp_helpers import (
    alive,
    exited,
    http_mcp_server,
    http_server,
    output_json,
    stdio_server,
)
from tests.integration.ws_helpers import connect, send

DEMO = stdio_server()


async def tools_of(person, project_id, prefix="mcp."):
    listed = await person.api.get(f"/api/projects/{project_id}/tools")
    assert listed.status == 200, listed.body
    return {t["name"]: t for t in listed.body["items"] if t["name"].startswith(prefix)}


async def pid_of(chat):
    return output_json(result_of(await chat.answer(call("mcp.demo.whoami", {}))))["pid"]


@pytest.mark.gen_test(timeout=60)
async def test_its_tools_are_listed_with_their_schemas_over_rest_and_websocket(chat, botical_app):
    record = await define(chat.person, chat.project["id"], DEMO)
    assert record["config"] == {**DEMO["config"], "env": {}}
    assert record["parameters"] == {"type": "object", "properties": {}}
    tools = await tools_of(chat.person, chat.project["id"])
    assert set(tools) == {
        f"mcp.demo.{name}" for name in ("add", "fail", "crash", "slow", "whoami", "big")
    }
    add = tools["mcp.demo.add"]
    assert add == {
        "name": "mcp.demo.add",
        "description": "Add two integers.",
        "parameters": add["parameters"],
        "source": "custom",
        "readOnly": False,
        "needsExec": True,
        "id": record["id"],
        "kind": "mcp",
        "config": record["config"],
        "enabled": True,
    }
    assert add["parameters"]["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert add["parameters"]["required"] == ["a", "b"]
    ws = await connect(botical_app, chat.person.token)
    try:
        listed = await ws.request("tools.list", projectId=chat.project["id"])
    finally:
        ws.close()
    assert [t for t in listed["items"] if t["name"].startswith("mcp.")] == list(tools.values())


@pytest.mark.gen_test(timeout=60)
async def test_a_call_asks_and_runs_once_approved_over_a_websocket(chat, botical_app, events):
    await define(chat.person, chat.project["id"], DEMO)
    ws: WsClient = await connect(botical_app, chat.person.token)
    try:
        await ws.subscribe(f"session:{chat.sid}")
        run_id = await send(ws, chat.sid, call("mcp.demo.add", {"a": 2, "b": 40}))
        asked = await ws.next_event("tool.approval_required", timeout=30)
        approval = asked["data"]["approval"]
        assert (approval["tool"], approval["arguments"]) == ("mcp.demo.add", {"a": 2, "b": 40})
        approved = await ws.request("tools.approve", approvalId=approval["id"])
        assert approved["status"] == "approved"
        answer = await chat.finished(run_id)
    finally:
        ws.close()
    result = result_of(answer)
    assert (result["isError"], result["output"]) == (False, "42")
    assert call_status(answer) == "completed"


@pytest.mark.gen_test(timeout=60)
async def test_invalid_arguments_are_refused_before_the_server_sees_them(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    result = result_of(await auto.answer(call("mcp.demo.add", {"a": 1, "b": "two"})))
    assert result["isError"] is True
    assert "'two' is not of type 'integer'" in result["output"]


@pytest.mark.gen_test(timeout=60)
async def test_a_failing_tool_is_a_tool_error_and_the_server_goes_on(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    pid = await pid_of(auto)
    failed = await auto.answer(call("mcp.demo.fail", {"reason": "no luck"}))
    assert result_of(failed)["isError"] is True
    assert "Error executing tool fail" in result_of(failed)["output"]
    assert call_status(failed) == "error"
    assert await pid_of(auto) == pid


@pytest.mark.gen_test(timeout=60)
async def test_a_server_that_crashes_mid_call_is_a_tool_error_and_the_next_call_restarts_it(
    chat,
):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    first = await pid_of(auto)
    assert await pid_of(await auto.new_session(agent="auto")) == first  # shared by sessions
    crashed = result_of(await auto.answer(call("mcp.demo.crash", {})))
    assert crashed["isError"] is True
    assert "MCP server 'demo' stopped during the call of 'crash'" in crashed["output"]
    assert "exited with status 3" in crashed["output"]
    assert "crashing on purpose" in crashed["output"]  # the end of its stderr
    await exited(first)
    second = await pid_of(auto)
    assert second != first
    assert alive(second)


@pytest.mark.gen_test(timeout=60)
async def test_a_slow_call_hits_the_timeout_and_the_server_still_answers(chat):
    await define(chat.person, chat.project["id"], stdio_server(timeout=1))
    auto = await allowing(chat, "mcp.demo.*")
    pid = await pid_of(auto)
    slow = await auto.answer(call("mcp.demo.slow", {"seconds": 30}))
    assert result_of(slow) == {
        **result_of(slow),
        "isError": True,
        "output": "MCP tool 'slow' of 'demo' timed out after 1s",
    }
    assert call_status(slow) == "error"
    assert await pid_of(auto) == pid


@pytest.mark.gen_test(timeout=60)
async def test_it_runs_in_the_project_directory_with_the_minimal_environment(chat, monkeypatch):
    monkeypatch.setenv("BOTICAL_SECRET_LEAK", "do-not-pass-on")
    monkeypatch.setenv("BOTICAL_SECRET_DEMO_KEY", "k-123456789")
    server = stdio_server(env={"DEMO_KEY": "{secret:DEMO_KEY}", "MODE": "test"})
    record = await define(chat.person, chat.project["id"], server)
    assert record["config"]["env"] == {"DEMO_KEY": "{secret:DEMO_KEY}", "MODE": "test"}
    auto = await allowing(chat, "mcp.demo.*")
    result = result_of(await auto.answer(call("mcp.demo.whoami", {})))
    assert "k-123456789" not in result["output"]  # a server that echoes a secret: masked
    seen = output_json(result)
    assert seen["cwd"] == str(chat.workspace.resolve())
    assert set(seen["env"]) <= {"PATH", "HOME", "PWD", "LANG", "LC_ALL", "TZ", "TERM"} | {
        "DEMO_KEY",
        "MODE",
    }
    assert (seen["env"]["DEMO_KEY"], seen["env"]["MODE"]) == ("[secret]", "test")
    assert "do-not-pass-on" not in result["output"]


@pytest.mark.gen_test(timeout=60)
async def test_output_is_cut_at_the_output_limit(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    result = result_of(await auto.answer(call("mcp.demo.big", {"size": 70_000})))
    assert result["output"] == "x" * 65536 + "\n[output truncated]"
    assert result["metadata"] == {"truncated": True}


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("botical_overrides", [{"tools": {"mcp_max_message_size": 20_000}}])
async def test_a_message_over_the_limit_stops_the_server_with_a_tool_error(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    pid = await pid_of(auto)
    result = result_of(await auto.answer(call("mcp.demo.big", {"size": 30_000})))
    assert result["isError"] is True
    assert "it sent a message over 20000 bytes" in result["output"]
    await exited(pid)
    assert await pid_of(auto) != pid


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("botical_overrides", [{"tools": {"mcp_start_timeout": 2}}])
async def test_servers_that_cannot_start_add_no_tools_and_hold_nothing_up(chat, caplog):
    await define(chat.person, chat.project["id"], DEMO)
    assert len(await tools_of(chat.person, chat.project["id"])) == 6  # demo runs
    broken = stdio_server(
        "broken", argv=["/bin/sh", "-c", "echo 'No module named fancy' >&2; exit 2"]
    )
    silent = stdio_server("silent", argv=["sleep", "60"])
    missing = stdio_server("missing", argv=["/nonexistent/server"])
    for server in (broken, silent, missing):
        await define(chat.person, chat.project["id"], server)
    tools = await tools_of(chat.person, chat.project["id"])
    assert {name.split(".")[1] for name in tools} == {"demo"}
    why = {
        r.getMessage().split(" ")[2]: r.getMessage()
        for r in caplog.records
        if "lists no" in r.getMessage()
    }
    assert "exited with status 2; its stderr ends with:\nNo module named fancy" in why["broken"]
    assert why["silent"].endswith("could not start: it did not answer within 2s")
    assert why["missing"].endswith("cannot run '/nonexistent/server': No such file or directory")
    # A model that calls one of them anyway gets an ordinary tool error.
    auto = await allowing(chat, "mcp.*")
    answer = await auto.answer(call("mcp.broken.anything", {}))
    assert result_of(answer)["output"] == "Unknown tool 'mcp.broken.anything'"


@pytest.mark.gen_test(timeout=60)
async def test_a_changed_server_is_restarted_and_a_removed_one_stopped(chat):
    record = await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    first = await pid_of(auto)
    changed = await chat.person.api.patch(
        f"/api/tools/{record['id']}", {"config": {**DEMO["config"], "timeout": 5}}
    )
    assert changed.status == 200, changed.body
    await exited(first)
    second = await pid_of(auto)
    assert second != first
    disabled = await chat.person.api.patch(f"/api/tools/{record['id']}", {"enabled": False})
    assert disabled.status == 200
    await exited(second)
    assert await tools_of(chat.person, chat.project["id"]) == {}
    enabled = await chat.person.api.patch(f"/api/tools/{record['id']}", {"enabled": True})
    assert enabled.status == 200
    third = await pid_of(auto)
    assert (await chat.person.api.delete(f"/api/tools/{record['id']}")).status == 204
    await exited(third)
    assert await tools_of(chat.person, chat.project["id"]) == {}


@pytest.mark.gen_test(timeout=60)
async def test_a_run_that_started_before_a_removal_does_not_bring_the_server_back(chat):
    record = await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    pid = await pid_of(auto)
    run_id = await chat.started(call("mcp.demo.add", {"a": 1, "b": 2}))  # no rule: it asks
    await chat.approval(run_id)
    assert (await chat.person.api.delete(f"/api/tools/{record['id']}")).status == 204
    await exited(pid)
    assert (await chat.approve(run_id)).status == 200
    result = result_of(await chat.finished(run_id))
    assert (result["isError"], result["output"]) == (
        True,
        "This MCP server was removed from the project",
    )


@pytest.mark.gen_test(timeout=60)
async def test_servers_are_stopped_on_shutdown(chat, botical_app):
    await define(chat.person, chat.project["id"], DEMO)
    pid = await pid_of(await allowing(chat, "mcp.demo.*"))
    await botical_app.stop()
    assert not alive(pid)


@pytest.mark.gen_test(timeout=60)
async def test_a_streamable_http_server_with_a_secret_header(chat, monkeypatch):
    monkeypatch.setenv("BOTICAL_SECRET_MCP_TOKEN", "tok-abcdef-123")
    async with http_mcp_server() as url:
        server = http_server(url, headers={"X-Api-Key": "Bearer {secret:MCP_TOKEN}"})
        record = await define(chat.person, chat.project["id"], server)
        assert record["config"]["headers"] == {"X-Api-Key": "Bearer {secret:MCP_TOKEN}"}
        tools = await tools_of(chat.person, chat.project["id"])
        assert set(tools) == {"mcp.remote.add", "mcp.remote.echo_header"}
        assert tools["mcp.remote.add"]["needsExec"] is False
        assert tools["mcp.remote.add"]["config"] == record["config"]
        auto = await allowing(chat, "mcp.remote.*")
        added = result_of(await auto.answer(call("mcp.remote.add", {"a": 20, "b": 22})))
        assert (added["isError"], added["output"]) == (False, "42")
        echoed = result_of(await auto.answer(call("mcp.remote.echo_header", {"name": "X-Api-Key"})))
        assert echoed["output"] == "X-Api-Key: Bearer [secret]"
        got = await chat.person.api.get(f"/api/tools/{record['id']}")
        assert "tok-abcdef-123" not in str(got.body)
    # The server is gone: the next call is a tool error naming the server, not a stuck run.
    gone = result_of(await auto.answer(call("mcp.remote.add", {"a": 1, "b": 1})))
    assert gone["isError"] is True
    assert "'remote'" in gone["output"]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("botical_overrides", [{"tools": {"mcp_idle_timeout": 1}}])
async def test_an_idle_server_is_stopped_and_started_again_when_needed(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.demo.*")
    pid = await pid_of(auto)
    await exited(pid)
    assert await pid_of(auto) != pid


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("botical_overrides", [{"tools": {"mcp_max_servers": 1}}])
async def test_past_the_server_limit_the_least_recently_used_idle_one_is_stopped(chat):
    await define(chat.person, chat.project["id"], DEMO)
    auto = await allowing(chat, "mcp.*")
    pid = await pid_of(auto)
    await define(chat.person, chat.project["id"], stdio_server("other"))
    other = output_json(result_of(await auto.answer(call("mcp.other.whoami", {}))))
    await exited(pid)
    assert alive(other["pid"])
