"""Attaching MCP servers over REST: who may, the checks on save, the SDK being missing."""

from __future__ import annotations

import sys

import pytest

from botical.services.mcp_config import SDK_MISSING
from tests.integration.tools.helpers import define
from tests.integration.tools.mcp_helpers import http_server, stdio_server
from tests.integration.tools.test_tools_rest import join, rejected

DEMO = stdio_server()
REMOTE = http_server("https://mcp.example.invalid/mcp", headers={"X-Key": "{secret:KEY}"})


@pytest.mark.gen_test
async def test_who_may_attach_a_server(chat, make_user):
    project_id = chat.project["id"]
    url = f"/api/projects/{project_id}/tools"
    stranger = await make_user("stranger", exec=True)
    member = await make_user("member", exec=True)
    admin = await make_user("admin")  # no code execution
    await join(chat.person, project_id, member, "member")
    await join(chat.person, project_id, admin, "admin")
    for person, server, code in (
        (stranger, DEMO, "NOT_FOUND"),
        (stranger, REMOTE, "NOT_FOUND"),
        (member, DEMO, "FORBIDDEN"),
        (member, REMOTE, "FORBIDDEN"),
        (admin, DEMO, "FORBIDDEN"),
    ):
        answer = await person.api.post(url, server)
        assert answer.error_code == code, (person.name, server["name"], answer.body)
    remote = await define(admin, project_id, REMOTE)  # no command runs: no exec needed
    demo = await define(chat.person, project_id, DEMO)
    as_stdio = {"config": DEMO["config"]}
    for tool, change in ((demo, {"description": "mine"}), (remote, as_stdio)):
        changed = await admin.api.patch(f"/api/tools/{tool['id']}", change)
        assert (changed.status, changed.error_code) == (403, "FORBIDDEN")
    assert (await admin.api.delete(f"/api/tools/{demo['id']}")).status == 204
    hidden = await stranger.api.get(f"/api/tools/{remote['id']}")
    assert (hidden.status, hidden.error_code) == (404, "NOT_FOUND")


@pytest.mark.gen_test
async def test_secrets_are_kept_as_references(chat):
    created = await define(chat.person, chat.project["id"], REMOTE)
    assert created["config"] == {
        "transport": "http",
        "url": "https://mcp.example.invalid/mcp",
        "headers": {"X-Key": "{secret:KEY}"},
        "timeout": 120,  # the default: [tools] bash_timeout
    }
    got = await chat.person.api.get(f"/api/tools/{created['id']}")
    assert got.body == created


def _config(base, **config):
    return {**base, "config": {**base["config"], **config}}


INVALID = [
    (_config(DEMO, transport="sse"), "config", ["transport"]),
    (_config(DEMO, argv=[]), "config", ["argv"]),
    (_config(DEMO, argv=["  "]), "config", ["argv"]),
    (_config(DEMO, argv=["server", "--key={secret:KEY}"]), "config", ["argv"]),
    (_config(DEMO, url="https://x.invalid/"), "config", ["url"]),
    (_config(DEMO, env={"1BAD": "x"}), "config", ["env"]),
    (_config(DEMO, env={"KEY": "{key}"}), "config", ["env"]),
    (_config(DEMO, env={"KEY": "{secret:lower}"}), "config", ["env"]),
    (_config(DEMO, timeout=601), "config", ["timeout"]),
    (_config(DEMO, shell=True), "config", ["shell"]),
    ({**DEMO, "config": {"transport": "stdio"}}, "config", ["argv"]),
    (_config(REMOTE, argv=["server"]), "config", ["argv"]),
    (_config(REMOTE, url="ftp://x.invalid/"), "config", ["url"]),
    (_config(REMOTE, url="https://user:pw@x.invalid/"), "config", ["url"]),
    (_config(REMOTE, url="https://x.invalid/{page}"), "config", ["url"]),
    (_config(REMOTE, headers={"X-Key": "a\r\nInjected: 1"}), "config", ["headers"]),
    (_config(REMOTE, headers={"Bad Name": "x"}), "config", ["headers"]),
    ({**DEMO, "name": "a" * 33}, "name", None),
    ({**DEMO, "parameters": {"type": "object", "properties": {"x": {}}}}, "parameters", None),
]


@pytest.mark.gen_test
@pytest.mark.parametrize(("server", "field", "config_fields"), INVALID)
async def test_invalid_servers_are_refused_naming_the_field(chat, server, field, config_fields):
    error = await rejected(chat, server, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field], error
    if config_fields is not None:
        assert sorted(error["details"]["config"]) == config_fields, error


@pytest.mark.gen_test
async def test_without_the_sdk_attaching_a_server_says_what_to_install(chat, monkeypatch, caplog):
    attached = await define(chat.person, chat.project["id"], {**DEMO, "name": "attached"})
    monkeypatch.setitem(sys.modules, "mcp", None)  # `import mcp` fails from now on
    error = await rejected(chat, DEMO, 400, "VALIDATION_ERROR")
    assert error["details"] == {"kind": [SDK_MISSING]}
    listed = await chat.person.api.get(f"/api/projects/{chat.project['id']}/tools")
    assert listed.status == 200
    assert not [t for t in listed.body["items"] if t["name"].startswith("mcp.")]
    assert (
        f"{attached['id']}) lists no tools: MCP server 'attached' could not start: " + (SDK_MISSING)
        in caplog.text
    )
    command = {**DEMO, "kind": "command", "config": {"argv": ["true"]}}
    assert (await define(chat.person, chat.project["id"], command))["kind"] == "command"


@pytest.mark.gen_test
async def test_the_messages_say_what_an_mcp_config_may_hold(chat):
    server = _config(DEMO, argv=["srv", "{secret:KEY}"], env={"A": "{who}", "B": "{secret:b}"})
    error = await rejected(chat, server, 400, "VALIDATION_ERROR")
    assert error["details"]["config"] == {
        "argv": {"1": ["Secrets may only be used in env values, never in argv."]},
        "env": {
            "A": ["{who}: an MCP server's config takes no arguments."],
            "B": ["{secret:b}: secret names are A-Z, 0-9 and _, starting A-Z."],
        },
    }
    both = _config(REMOTE, transport="stdio")
    error = await rejected(chat, both, 400, "VALIDATION_ERROR")
    assert error["details"]["config"] == {
        "argv": ["Required for transport 'stdio'."],
        "headers": ["Only for transport 'http'."],
        "url": ["Only for transport 'http'."],
    }
