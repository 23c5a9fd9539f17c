"""Tools over REST and WebSocket: defining, reading, changing and deleting custom tools, the
checks on save, roles, and one list for built-in, plugin and custom tools."""

from __future__ import annotations

import pytest

import botical
from botical.ids import new_id
from botical.testing.wsclient import WsClient
from botical.tools.base import Tool
from tests.integration.tools.helpers import STRING, command, define, http, schema

BASE_KEYS = {"name", "description", "parameters", "source", "readOnly", "needsExec"}
CUSTOM_KEYS = BASE_KEYS | {"id", "kind", "config", "enabled"}
GREET = command("greet", ["echo", "hello", "{who}"], schema(who=STRING))
FETCH = http(
    "fetch_page",
    schema(page=STRING),
    url="https://example.invalid/pages/{page}",
    headers={"Authorization": "Bearer {secret:TOKEN}"},
)


async def _pong(ctx, args):
    return "pong"


class PingPlugin:
    @botical.hookimpl
    def botical_register_tools(self, register):
        register(Tool("ping", "Answer pong.", _pong, read_only=True))


@pytest.fixture
def botical_plugins():
    return (PingPlugin(),)


async def join(owner, project_id, person, role):
    added = await owner.api.post(
        f"/api/projects/{project_id}/members", {"userId": person.id, "role": role}
    )
    assert added.status == 201, added.body


async def rejected(chat, tool, status, code):
    """POST `tool`; assert it fails with `status` and `code`; return the error."""
    answer = await chat.person.api.post(f"/api/projects/{chat.project['id']}/tools", tool)
    assert (answer.status, answer.error_code) == (status, code), answer.body
    return answer.body["error"]


@pytest.mark.gen_test
async def test_create_get_update_delete(chat, events):
    project_id = chat.project["id"]
    created = await define(chat.person, project_id, GREET)
    assert set(created) == {
        "id",
        "projectId",
        "name",
        "description",
        "parameters",
        "kind",
        "config",
        "enabled",
        "createdBy",
        "createdAt",
        "updatedAt",
    }
    assert created["id"].startswith("tool_")
    assert (created["projectId"], created["createdBy"]) == (project_id, chat.person.id)
    assert created["config"] == {"argv": ["echo", "hello", "{who}"], "timeout": 10}
    assert created["parameters"] == GREET["parameters"]
    assert created["enabled"] is True
    await events.wait("tool.created", tool__id=created["id"])
    api = chat.person.api
    got = await api.get(f"/api/tools/{created['id']}")
    assert (got.status, got.body) == (200, created)
    changed = await api.patch(
        f"/api/tools/{created['id']}", {"description": "Say hello", "config": {"argv": ["true"]}}
    )
    assert changed.status == 200, changed.body
    assert (changed.body["description"], changed.body["config"]) == (
        "Say hello",
        {"argv": ["true"], "timeout": 120},  # the default: [tools] bash_timeout
    )
    assert changed.body["updatedAt"] >= created["updatedAt"]
    await events.wait("tool.updated", tool__id=created["id"])
    deleted = await api.delete(f"/api/tools/{created['id']}")
    assert deleted.status == 204
    await events.wait("tool.deleted", toolId=created["id"])
    gone = await api.get(f"/api/tools/{created['id']}")
    assert (gone.status, gone.error_code) == (404, "NOT_FOUND")
    listed = await api.get(f"/api/projects/{project_id}/tools")
    assert "greet" not in {t["name"] for t in listed.body["items"]}


@pytest.mark.gen_test
async def test_http_config_defaults(chat):
    created = await define(chat.person, chat.project["id"], FETCH)
    assert created["config"] == {
        "method": "GET",
        "url": "https://example.invalid/pages/{page}",
        "headers": {"Authorization": "Bearer {secret:TOKEN}"},
        "body": "none",
        "timeout": 10,
        "maxResponseBytes": 65536,
    }
    post = http("post_page", schema(page=STRING), method="POST", url="http://h.invalid/p")
    assert (await define(chat.person, chat.project["id"], post))["config"]["body"] == "json"


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["read", "bash", "todowrite", "ping"])
async def test_a_name_of_a_builtin_or_plugin_tool_is_a_conflict(chat, name):
    error = await rejected(chat, {**GREET, "name": name}, 409, "CONFLICT")
    assert name in error["message"]


@pytest.mark.gen_test
async def test_a_duplicate_name_is_a_conflict(chat):
    await define(chat.person, chat.project["id"], GREET)
    await rejected(chat, GREET, 409, "CONFLICT")
    other = await define(chat.person, chat.project["id"], {**GREET, "name": "greet_two"})
    renamed = await chat.person.api.patch(f"/api/tools/{other['id']}", {"name": "greet"})
    assert (renamed.status, renamed.error_code) == (409, "CONFLICT")
    elsewhere = await chat.person.api.post("/api/projects", {"name": "Q"})
    await define(chat.person, elsewhere.body["id"], GREET)  # names are unique per project


INVALID = [
    ({"name": "Greet"}, ["name"]),
    ({"name": "9lives"}, ["name"]),
    ({"name": "a" * 65}, ["name"]),
    ({"kind": "python"}, ["kind"]),
    ({"surprise": 1}, ["surprise"]),
    ({"parameters": {"type": "object", "properties": {"who": {"type": "strng"}}}}, ["parameters"]),
    ({"parameters": {"type": "array"}}, ["parameters"]),
    ({"parameters": {"type": "object", "required": "who"}}, ["parameters"]),
    ({"parameters": {"type": "object", "$ref": "https://example.com/s.json"}}, ["parameters"]),
    ({"config": {"argv": []}}, ["config"]),
    ({"config": {"argv": ["echo", "{nobody}"]}}, ["config"]),
    ({"config": {"argv": ["{who}"]}}, ["config"]),
    ({"config": {"argv": ["echo", "{secret:TOKEN}"]}}, ["config"]),
    ({"config": {"argv": ["echo"], "timeout": 601}}, ["config"]),
    ({"config": {"argv": ["echo"], "shell": True}}, ["config"]),
]


@pytest.mark.gen_test
@pytest.mark.parametrize(("change", "fields"), INVALID)
async def test_invalid_command_tools_are_refused_naming_the_field(chat, change, fields):
    error = await rejected(chat, {**GREET, **change}, 400, "VALIDATION_ERROR")
    assert sorted(error["details"]) == fields, error


def _http_config(**config):
    return {**FETCH, "config": {**FETCH["config"], **config}}


INVALID_HTTP = [
    ({"url": "ftp://example.invalid/x"}, "url"),
    ({"url": "https://{page}.example.invalid/"}, "url"),
    ({"url": "https://example.invalid{page}"}, "url"),
    ({"url": "https://user:pw@example.invalid/"}, "url"),
    ({"url": "https://example.invalid/{secret:TOKEN}"}, "url"),
    ({"url": "https://example.invalid/{other}"}, "url"),
    ({"method": "TRACE"}, "method"),
    ({"headers": {"Bad Name": "x"}}, "headers"),
    ({"headers": {"X-Token": "{secret:lower}"}}, "headers"),
    ({"headers": {"X-Token": "a\r\nInjected: 1"}}, "headers"),
    ({"body": "json"}, "body"),  # with GET
    ({"timeout": 121}, "timeout"),
    ({"maxResponseBytes": 1023}, "maxResponseBytes"),
    ({"maxResponseBytes": 10 * 1024 * 1024 + 1}, "maxResponseBytes"),
]


@pytest.mark.gen_test
@pytest.mark.parametrize(("config", "field"), INVALID_HTTP)
async def test_invalid_http_tools_are_refused_naming_the_field(chat, config, field):
    error = await rejected(chat, _http_config(**config), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["config"]
    assert list(error["details"]["config"]) == [field], error


@pytest.mark.gen_test
async def test_an_invalid_json_schema_is_explained(chat):
    bad = {"type": "object", "properties": {"who": {"type": "strng"}}}
    error = await rejected(chat, {**GREET, "parameters": bad}, 400, "VALIDATION_ERROR")
    (message,) = error["details"]["parameters"]
    assert message.startswith("Not a valid JSON Schema: ")
    assert "/properties/who/type" in message


@pytest.mark.gen_test
async def test_an_update_is_checked_as_a_whole(chat):
    greet = await define(chat.person, chat.project["id"], GREET)
    dropped = await chat.person.api.patch(
        f"/api/tools/{greet['id']}", {"parameters": {"type": "object"}}
    )
    assert (dropped.status, dropped.error_code) == (400, "VALIDATION_ERROR")
    assert list(dropped.body["error"]["details"]) == ["config"]  # {who} is no longer a property
    kind_only = await chat.person.api.patch(f"/api/tools/{greet['id']}", {"kind": "http"})
    assert (kind_only.status, kind_only.error_code) == (400, "VALIDATION_ERROR")
    unknown = await chat.person.api.patch(f"/api/tools/{greet['id']}", {"owner": "me"})
    assert (unknown.status, unknown.error_code) == (400, "VALIDATION_ERROR")
    assert (await chat.person.api.get(f"/api/tools/{greet['id']}")).body == greet


@pytest.mark.gen_test
async def test_roles(chat, make_user):
    project_id = chat.project["id"]
    greet = await define(chat.person, project_id, GREET)
    people = {}
    for role in ("viewer", "member", "admin"):
        people[role] = await make_user(role, exec=True)
        await join(chat.person, project_id, people[role], role)
    stranger = await make_user("stranger", exec=True)
    url, tool_url = f"/api/projects/{project_id}/tools", f"/api/tools/{greet['id']}"
    for role in ("viewer", "member"):
        api = people[role].api
        assert (await api.get(url)).status == 200
        assert (await api.get(tool_url)).body == greet
        for answer in (
            await api.post(url, {**GREET, "name": f"by_{role}"}),
            await api.patch(tool_url, {"description": "mine"}),
            await api.delete(tool_url),
        ):
            assert (answer.status, answer.error_code) == (403, "FORBIDDEN")
    admin = people["admin"].api
    assert (await admin.post(url, {**GREET, "name": "by_admin"})).status == 201
    assert (await admin.patch(tool_url, {"description": "admin's"})).status == 200
    hidden = await stranger.api.get(tool_url)
    missing = await stranger.api.get(f"/api/tools/{new_id('tool')}")
    assert (hidden.status, hidden.error_code) == (404, "NOT_FOUND")
    assert hidden.body == missing.body  # a tool id cannot be probed
    assert (await stranger.api.post(url, GREET)).status == 404
    assert (await stranger.api.delete(tool_url)).status == 404
    bad_id = await admin.get("/api/tools/prj_1")
    assert (bad_id.status, bad_id.error_code) == (400, "VALIDATION_ERROR")
    assert (await admin.delete(tool_url)).status == 204


@pytest.mark.gen_test
async def test_rest_and_websocket_list_every_tool_the_same_way(chat, botical_app):
    project_id = chat.project["id"]
    greet = await define(chat.person, project_id, GREET)
    fetch = await define(chat.person, project_id, FETCH)
    rest = await chat.person.api.get(f"/api/projects/{project_id}/tools")
    assert rest.status == 200
    ws = await WsClient.connect(f"ws://127.0.0.1:{botical_app.port}/ws", chat.person.token)
    try:
        listed = await ws.request("tools.list", projectId=project_id)
    finally:
        ws.close()
    assert listed["items"] == rest.body["items"]
    by_name = {t["name"]: t for t in rest.body["items"]}
    assert {"read", "bash", "ping", "greet", "fetch_page"} <= set(by_name)
    sources = {n: by_name[n]["source"] for n in ("read", "bash", "ping", "greet", "fetch_page")}
    assert sources == {
        "read": "builtin",
        "bash": "builtin",
        "ping": "plugin",
        "greet": "custom",
        "fetch_page": "custom",
    }
    for tool in rest.body["items"]:
        keys = CUSTOM_KEYS if tool["source"] == "custom" else BASE_KEYS
        assert set(tool) == keys, tool
        assert tool["parameters"]["type"] == "object"
    assert by_name["greet"] == {
        "name": "greet",
        "description": GREET["description"],
        "parameters": GREET["parameters"],
        "source": "custom",
        "readOnly": False,
        "needsExec": True,
        "id": greet["id"],
        "kind": "command",
        "config": greet["config"],
        "enabled": True,
    }
    assert (by_name["fetch_page"]["needsExec"], by_name["fetch_page"]["config"]) == (
        False,
        fetch["config"],
    )
    assert by_name["ping"]["readOnly"] is True
