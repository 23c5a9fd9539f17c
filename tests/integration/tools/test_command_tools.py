"""Custom command tools called by the echo model: approvals, agent rules, argument checks,
placeholders that stay one argument, code-execution rights, enabling and disabling."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import Chat
from tests.integration.tools.helpers import (
    STRING,
    allowing,
    call,
    call_status,
    command,
    define,
    http,
    result_of,
    schema,
)

GREET = command("greet", ["echo", "hello", "{who}"], schema(who=STRING))
FILE_NAME = {"type": "string", "pattern": r"^[a-z]+\.txt$"}
TOUCH = command("make_file", ["touch", "{name}"], schema(name=FILE_NAME))
SHOW = command("show", ["printf", "[%s]\\n", "pre-{x}-post"], schema(x=STRING))


@pytest.mark.gen_test
async def test_asks_then_runs_after_approval(chat, events):
    await define(chat.person, chat.project["id"], GREET)
    run_id = await chat.started(call("greet", {"who": "world"}))
    approval = await chat.approval(run_id)
    assert (approval["tool"], approval["arguments"]) == ("greet", {"who": "world"})
    assert (await chat.approve(run_id)).status == 200
    answer = await chat.finished(run_id)
    result = result_of(answer)
    assert (result["isError"], result["output"]) == (False, "hello world\n")
    assert result["metadata"] == {"exitCode": 0}
    assert call_status(answer) == "completed"


@pytest.mark.gen_test
async def test_an_allow_rule_runs_it_without_approval(chat, events):
    await define(chat.person, chat.project["id"], GREET)
    auto = await allowing(chat, "greet")
    result = result_of(await auto.answer(call("greet", {"who": "rule"})))
    assert (result["isError"], result["output"]) == (False, "hello rule\n")
    assert events.find("tool.approval_required") == []


@pytest.mark.gen_test
async def test_runs_in_the_project_directory_with_the_minimal_environment(chat, monkeypatch):
    monkeypatch.setenv("BOTICAL_SECRET_LEAK", "do-not-pass-on")
    env = command("env_of", ["env"], schema())
    where = command("where", ["pwd"], schema())
    for tool in (env, where):
        await define(chat.person, chat.project["id"], tool)
    auto = await allowing(chat, "env_of", "where")
    output = result_of(await auto.answer(call("env_of", {})))["output"]
    names = {line.split("=", 1)[0] for line in output.splitlines()}
    assert names <= {"PATH", "HOME", "PWD", "LANG", "LC_ALL", "TZ", "TERM"}
    assert "do-not-pass-on" not in output
    pwd = result_of(await auto.answer(call("where", {})))["output"]
    assert pwd == f"{chat.workspace.resolve()}\n"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"name": "bad.txt", "extra": 1}, "Additional properties are not allowed"),
        ({"name": 5}, "5 is not of type 'string'"),
        ({}, "'name' is a required property"),
        ({"name": "../../escape.txt"}, "does not match"),
    ],
)
async def test_invalid_arguments_are_a_tool_error_and_nothing_runs(chat, events, args, problem):
    await define(chat.person, chat.project["id"], TOUCH)
    auto = await allowing(chat, "make_file")
    good = result_of(await auto.answer(call("make_file", {"name": "made.txt"})))
    assert good["isError"] is False
    assert (chat.workspace / "made.txt").exists()  # so the call below would create its file
    answer = await auto.answer(call("make_file", args))
    result = result_of(answer)
    assert result["isError"] is True
    assert result["output"].startswith("Invalid arguments: ")
    assert problem in result["output"]
    assert call_status(answer) == "error"
    assert sorted(p.name for p in chat.workspace.iterdir()) == ["made.txt"]
    assert events.find("tool.approval_required") == []


@pytest.mark.gen_test
async def test_every_schema_problem_is_reported(chat):
    await define(chat.person, chat.project["id"], TOUCH)
    auto = await allowing(chat, "make_file")
    output = result_of(await auto.answer(call("make_file", {"name": 1, "more": 2})))["output"]
    assert "1 is not of type 'string'" in output
    assert "Additional properties are not allowed ('more' was unexpected)" in output


@pytest.mark.gen_test
async def test_a_placeholder_value_stays_inside_its_one_argument(chat):
    await define(chat.person, chat.project["id"], SHOW)
    auto = await allowing(chat, "show")
    value = "a; touch pwned $(touch pwned2) `touch pwned3` {x} b"
    result = result_of(await auto.answer(call("show", {"x": value})))
    assert (result["isError"], result["output"]) == (False, f"[pre-{value}-post]\n")
    assert list(chat.workspace.iterdir()) == []


@pytest.mark.gen_test
async def test_a_failing_command_is_a_tool_error_with_its_exit_code(chat):
    failing = command("fails", ["ls", "{path}"], schema(path=STRING))
    missing = command("missing", ["no-such-program-here"], schema())
    for tool in (failing, missing):
        await define(chat.person, chat.project["id"], tool)
    auto = await allowing(chat, "fails", "missing")
    result = result_of(await auto.answer(call("fails", {"path": "nothing-here"})))
    assert result["isError"] is True
    assert result["output"].endswith("[exit code 2]")
    result = result_of(await auto.answer(call("missing", {})))
    assert result["isError"] is True
    assert result["output"].startswith("Cannot run 'no-such-program-here'")


@pytest.mark.gen_test
async def test_without_code_execution_an_admin_cannot_define_or_change_one(chat, make_user):
    admin = await make_user("ada")  # no can_execute_code
    added = await chat.person.api.post(
        f"/api/projects/{chat.project['id']}/members", {"userId": admin.id, "role": "admin"}
    )
    assert added.status == 201, added.body
    refused = await admin.api.post(f"/api/projects/{chat.project['id']}/tools", GREET)
    assert (refused.status, refused.error_code) == (403, "FORBIDDEN")
    listed = await admin.api.get(f"/api/projects/{chat.project['id']}/tools")
    assert "greet" not in {t["name"] for t in listed.body["items"]}
    greet = await define(chat.person, chat.project["id"], GREET)
    changed = await admin.api.patch(f"/api/tools/{greet['id']}", {"description": "changed"})
    assert (changed.status, changed.error_code) == (403, "FORBIDDEN")
    http_tool = http("web", schema(who=STRING), url="http://127.0.0.1:9/{who}")
    turned = await admin.api.patch(f"/api/tools/{greet['id']}", {"kind": "http"})
    assert (turned.status, turned.error_code) == (403, "FORBIDDEN")
    web = await admin.api.post(f"/api/projects/{chat.project['id']}/tools", http_tool)
    assert web.status == 201, web.body
    into_command = await admin.api.patch(
        f"/api/tools/{web.body['id']}", {"kind": "command", "config": {"argv": ["echo"]}}
    )
    assert (into_command.status, into_command.error_code) == (403, "FORBIDDEN")
    assert (await chat.person.api.get(f"/api/tools/{greet['id']}")).body["description"] == (
        GREET["description"]
    )


@pytest.mark.gen_test
async def test_a_member_without_code_execution_is_refused_without_approval(chat, make_user, events):
    await define(chat.person, chat.project["id"], TOUCH)
    member = await make_user("mia")
    added = await chat.person.api.post(
        f"/api/projects/{chat.project['id']}/members", {"userId": member.id, "role": "member"}
    )
    assert added.status == 201, added.body
    created = await member.api.post(f"/api/projects/{chat.project['id']}/sessions", {})
    assert created.status == 201, created.body
    theirs = Chat(member, chat.project, created.body, chat.workspace, events)
    answer = await theirs.answer(call("make_file", {"name": "mine.txt"}))
    result = result_of(answer)
    assert (result["isError"], result["output"]) == (True, "This user may not execute code")
    assert call_status(answer) == "denied"
    assert events.find("tool.approval_required") == []
    assert list(chat.workspace.iterdir()) == []


@pytest.mark.gen_test
async def test_a_disabled_tool_is_not_offered_and_is_unknown(chat):
    project_id = chat.project["id"]
    greet = await define(chat.person, project_id, GREET)
    auto = await allowing(chat, "greet")
    disabled = await chat.person.api.patch(f"/api/tools/{greet['id']}", {"enabled": False})
    assert (disabled.status, disabled.body["enabled"]) == (200, False)
    listed = await chat.person.api.get(f"/api/projects/{project_id}/tools")
    assert "greet" not in {t["name"] for t in listed.body["items"]}
    everything = await chat.person.api.get(f"/api/projects/{project_id}/tools?includeDisabled=true")
    (shown,) = [t for t in everything.body["items"] if t["name"] == "greet"]
    assert (shown["id"], shown["enabled"]) == (greet["id"], False)
    result = result_of(await auto.answer(call("greet", {"who": "nobody"})))
    assert (result["isError"], result["output"]) == (True, "Unknown tool 'greet'")
    enabled = await chat.person.api.patch(f"/api/tools/{greet['id']}", {"enabled": True})
    assert enabled.body["enabled"] is True
    result = result_of(await auto.answer(call("greet", {"who": "again"})))
    assert (result["isError"], result["output"]) == (False, "hello again\n")


@pytest.mark.gen_test(timeout=30)
async def test_a_command_past_its_timeout_is_killed_and_the_result_says_so(chat):
    slow = command("slow", ["sh", "-c", "echo started; sleep 30"], schema())
    slow["config"]["timeout"] = 1
    await define(chat.person, chat.project["id"], slow)
    auto = await allowing(chat, "slow")
    answer = await auto.answer(call("slow", {}))
    result = result_of(answer)
    assert result["isError"]
    assert result["output"] == "Command timed out after 1s\nstarted\n"
    assert call_status(answer) == "error"


@pytest.mark.parametrize("botical_overrides", [{"tools": {"output_limit": 1024}}])
@pytest.mark.gen_test(timeout=30)
async def test_output_past_the_limit_is_cut_and_the_result_says_so(chat):
    loud = command("loud", ["sh", "-c", "yes | head -c 100000"], schema())
    await define(chat.person, chat.project["id"], loud)
    auto = await allowing(chat, "loud")
    output = result_of(await auto.answer(call("loud", {})))["output"]
    assert output == "y\n" * 512 + "\n[output truncated]"
