"""system.describe over a real socket: every registered method and channel, built-in or not."""

from __future__ import annotations

import types

import pytest
from marshmallow import Schema, fields, validate

import botical
from botical.methods import method
from botical.websocket.broadcaster import ChannelKind

BUILTIN_METHODS = {
    "projects.list": (None, "botical.methods.projects", "GET /api/projects"),
    "projects.create": (None, "botical.methods.projects", "POST /api/projects"),
    "projects.get": ("viewer", "botical.methods.projects", "GET /api/projects/{projectId}"),
    "projects.update": ("admin", "botical.methods.projects", "PATCH /api/projects/{projectId}"),
    "projects.delete": ("owner", "botical.methods.projects", "DELETE /api/projects/{projectId}"),
    "members.list": ("viewer", "botical.methods.projects", "GET /api/projects/{projectId}/members"),
    "projects.usage": ("viewer", "botical.methods.projects", "GET /api/projects/{projectId}/usage"),
    "members.add": ("admin", "botical.methods.projects", "POST /api/projects/{projectId}/members"),
    "members.update": (
        "admin",
        "botical.methods.projects",
        "PATCH /api/projects/{projectId}/members/{userId}",
    ),
    "members.remove": (
        "viewer",
        "botical.methods.projects",
        "DELETE /api/projects/{projectId}/members/{userId}",
    ),
    "sessions.create": (
        "member",
        "botical.methods.sessions",
        "POST /api/projects/{projectId}/sessions",
    ),
    "sessions.list": (
        "viewer",
        "botical.methods.sessions",
        "GET /api/projects/{projectId}/sessions",
    ),
    "sessions.get": ("viewer", "botical.methods.sessions", "GET /api/sessions/{sessionId}"),
    "sessions.update": ("member", "botical.methods.sessions", "PATCH /api/sessions/{sessionId}"),
    "sessions.archive": (
        "member",
        "botical.methods.sessions",
        "POST /api/sessions/{sessionId}/archive",
    ),
    "sessions.sync": ("viewer", "botical.methods.sessions", None),
    "sessions.fork": ("member", "botical.methods.sessions", "POST /api/sessions/{sessionId}/fork"),
    "messages.list": (
        "viewer",
        "botical.methods.messages",
        "GET /api/sessions/{sessionId}/messages",
    ),
    "messages.send": (
        "member",
        "botical.methods.messages",
        "POST /api/sessions/{sessionId}/messages",
    ),
    "messages.cancel": (
        "member",
        "botical.methods.messages",
        "POST /api/sessions/{sessionId}/cancel",
    ),
    "messages.retry": (
        "member",
        "botical.methods.messages",
        "POST /api/sessions/{sessionId}/retry",
    ),
    "messages.edit": (
        "member",
        "botical.methods.messages",
        "POST /api/sessions/{sessionId}/messages/{messageId}/edit",
    ),
    "messages.select": (
        "member",
        "botical.methods.messages",
        "POST /api/sessions/{sessionId}/messages/{messageId}/select",
    ),
    "agents.list": ("viewer", "botical.methods.agents", "GET /api/projects/{projectId}/agents"),
    "agents.get": (
        "viewer",
        "botical.methods.agents",
        "GET /api/projects/{projectId}/agents/{name}",
    ),
    "agents.create": ("admin", "botical.methods.agents", "POST /api/projects/{projectId}/agents"),
    "agents.delete": (
        "admin",
        "botical.methods.agents",
        "DELETE /api/projects/{projectId}/agents/{name}",
    ),
    "tools.list": ("viewer", "botical.methods.tools", "GET /api/projects/{projectId}/tools"),
    "tools.create": ("admin", "botical.methods.tools", "POST /api/projects/{projectId}/tools"),
    "tools.get": ("viewer", "botical.methods.tools", "GET /api/tools/{toolId}"),
    "tools.update": ("admin", "botical.methods.tools", "PATCH /api/tools/{toolId}"),
    "tools.delete": ("admin", "botical.methods.tools", "DELETE /api/tools/{toolId}"),
    "tools.approve": (
        "member",
        "botical.methods.tools",
        "POST /api/approvals/{approvalId}/approve",
    ),
    "tools.reject": ("member", "botical.methods.tools", "POST /api/approvals/{approvalId}/reject"),
    "tools.pending": ("viewer", "botical.methods.tools", "GET /api/sessions/{sessionId}/approvals"),
    "todos.get": ("viewer", "botical.methods.todos", "GET /api/sessions/{sessionId}/todos"),
    "todos.update": ("member", "botical.methods.todos", "PUT /api/sessions/{sessionId}/todos"),
    "users.me": (None, "botical.methods.users", "GET /api/me"),
    "apikeys.list": (None, "botical.methods.credentials", "GET /api/apikeys"),
    "apikeys.create": (None, "botical.methods.credentials", "POST /api/apikeys"),
    "apikeys.revoke": (None, "botical.methods.credentials", "POST /api/apikeys/{keyId}/revoke"),
    "tokens.revoke": (None, "botical.methods.credentials", "POST /api/tokens/revoke"),
    "subscriptions.list": (None, "botical.websocket.channels", None),
    "system.describe": (None, "botical.methods.system", None),
}

# DESIGN.md section 3, "Channels and events".
BUILTIN_CHANNELS = {
    "session:{id}": {
        "message.created",
        "message.updated",
        "message.deleted",
        "path.changed",
        "part.created",
        "part.updated",
        "session.updated",
        "tool.approval_required",
        "tool.approval_resolved",
        "agent.status_changed",
        "todo.updated",
    },
    "project:{id}": {"session.created", "session.updated", "agent.status_changed"},
}
USER_EVENTS_AT_LEAST = {"tool.approval_required"}


class ShoutParams(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10))
    times = fields.Integer(validate=validate.Range(min=1, max=3))


class ShoutResult(Schema):
    text = fields.String()


@method("probe.shout", ShoutParams, ShoutResult, role=None, scope=None)
async def shout(ctx, p):
    """Say it louder."""
    return {"text": p["text"].upper() * p.get("times", 1)}


def _probe_plugin() -> types.ModuleType:
    plugin = types.ModuleType("describe_probe")

    @botical.hookimpl
    def botical_register_methods(register):
        register(shout)

    @botical.hookimpl
    def botical_register_channels(register):
        register(ChannelKind("probe", lambda e: (), lambda *a: None, ("probe.ping",), "Probes"))

    plugin.botical_register_methods = botical_register_methods
    plugin.botical_register_channels = botical_register_channels
    return plugin


@pytest.fixture
def botical_plugins():
    return (_probe_plugin(),)


async def _describe(make_user, connect):
    alice = await make_user("alice")
    ws = await connect(alice)
    return await ws.request("system.describe"), ws


@pytest.mark.gen_test
async def test_describe_lists_every_registered_method(botical_app, make_user, connect):
    described, _ = await _describe(make_user, connect)
    names = [m["name"] for m in described["methods"]]
    assert len(names) == len(set(names))
    assert set(names) == {r.name for r in botical_app.registries["methods"]}
    assert set(BUILTIN_METHODS) | {"probe.shout"} <= set(names)
    assert described["protocol"] == 1
    assert described["version"] == botical.__version__


@pytest.mark.gen_test
async def test_each_builtin_method_has_its_role_plugin_and_schemas(make_user, connect):
    described, _ = await _describe(make_user, connect)
    by_name = {m["name"]: m for m in described["methods"]}
    for name, (role, plugin, route) in BUILTIN_METHODS.items():
        entry = by_name[name]
        assert set(entry) == {"name", "description", "role", "params", "result", "rest", "plugin"}
        assert (entry["role"], entry["plugin"]) == (role, plugin), name
        rest = entry["rest"] and f"{entry['rest']['verb']} {entry['rest']['path']}"
        assert rest == route, name
        assert entry["description"], name
        assert entry["params"]["type"] == "object", name
        assert entry["params"]["additionalProperties"] is False, name
        assert entry["result"]["type"] == (
            "null"
            if (route and route.startswith("DELETE")) or name == "tokens.revoke"
            else "object"
        ), name


@pytest.mark.gen_test
async def test_method_schemas_describe_params_and_results(make_user, connect):
    described, _ = await _describe(make_user, connect)
    by_name = {m["name"]: m for m in described["methods"]}
    create = by_name["sessions.create"]
    assert create["params"]["required"] == ["projectId"]
    assert set(create["params"]["properties"]) == {
        "projectId",
        "title",
        "agent",
        "parentId",
        "model",
    }
    assert create["params"]["properties"]["title"] == {"type": "string", "maxLength": 500}
    assert create["params"]["properties"]["model"]["type"] == ["string", "null"]
    assert {"id", "projectId", "title", "status"} <= set(create["result"]["properties"])
    assert create["description"] == "Create a session in a project."
    listing = by_name["sessions.list"]["params"]["properties"]
    assert listing["limit"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert listing["status"]["enum"] == ["active", "archived"]
    send = by_name["messages.send"]
    assert set(send["params"]["required"]) == {"sessionId", "content"}
    assert set(send["result"]["properties"]) == {"message", "runId"}
    approve = by_name["tools.approve"]["params"]["properties"]
    assert approve["scope"]["enum"] == ["once", "session"]
    assert by_name["system.describe"]["params"]["properties"] == {}


@pytest.mark.gen_test
async def test_a_plugins_method_is_described_and_callable(make_user, connect):
    described, ws = await _describe(make_user, connect)
    (probe,) = [m for m in described["methods"] if m["name"] == "probe.shout"]
    assert probe == {
        "name": "probe.shout",
        "description": "Say it louder.",
        "role": None,
        "params": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 10},
                "times": {"type": "integer", "minimum": 1, "maximum": 3},
            },
            "additionalProperties": False,
            "required": ["text"],
        },
        "result": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "additionalProperties": False,
        },
        "rest": None,
        "plugin": probe["plugin"],
    }
    assert probe["plugin"] not in {p for _, p, _ in BUILTIN_METHODS.values()}
    assert await ws.request("probe.shout", text="hi", times=2) == {"text": "HIHI"}


@pytest.mark.gen_test
async def test_describe_lists_the_channels_with_their_events(make_user, connect):
    described, _ = await _describe(make_user, connect)
    by_pattern = {c["pattern"]: c for c in described["channels"]}
    assert set(by_pattern) == {"session:{id}", "project:{id}", "user:{id}", "probe:{id}"}
    for pattern, events in BUILTIN_CHANNELS.items():
        assert set(by_pattern[pattern]["events"]) == events, pattern
    assert set(by_pattern["user:{id}"]["events"]) >= USER_EVENTS_AT_LEAST
    assert not {"message.created", "part.updated"} & set(by_pattern["user:{id}"]["events"])
    for pattern in ("session:{id}", "project:{id}", "user:{id}"):
        channel = by_pattern[pattern]
        assert channel["plugin"] == "botical.websocket.channels"
        assert channel["description"]
    assert by_pattern["probe:{id}"]["events"] == ["probe.ping"]
    assert by_pattern["probe:{id}"]["description"] == "Probes"
