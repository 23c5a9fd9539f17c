"""Requests answered at once from memory (`now` functions): only with a role the permissions
keep and which is enough, never past a refusal, and never at the cost of an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from marshmallow import Schema, fields, validate

import botical
from botical.auth.permissions import READ, WRITE
from botical.methods import method
from botical.testing.wsclient import WsError
from tests.integration.ws_helpers import add_member, connect, new_project, new_session


class ProjectParams(Schema):
    projectId = fields.String(required=True, validate=validate.Length(max=40))


class NowMethods:
    """`test.note` (members: from memory, else from the handler) and `test.broken` (its `now`
    raises)."""

    def __init__(self) -> None:
        self.handled = 0

    @botical.hookimpl
    def botical_register_methods(self, register: Any) -> None:
        def note_now(ctx, p):
            return {"from": "memory", "role": ctx.role.label, "project": ctx.project_id}

        @method("test.note", ProjectParams, role=WRITE, now=note_now)
        async def note(ctx, p):
            """Answer from the handler."""
            self.handled += 1
            return {"from": "handler", "role": ctx.role.label, "project": ctx.project_id}

        def broken_now(ctx, p):
            raise RuntimeError("a bug in a now function")

        @method("test.broken", ProjectParams, role=READ, now=broken_now)
        async def broken(ctx, p):
            """Answer from the handler."""
            return {"from": "handler"}

        register(note)
        register(broken)


@pytest.fixture
def now_methods():
    return NowMethods()


@pytest.fixture
def botical_plugins(now_methods):
    return (now_methods,)


@pytest.mark.gen_test(timeout=30)
async def test_memory_answers_only_once_the_callers_role_is_kept(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    identity = await botical_app.auth.authenticate(alice.token)
    dispatcher = botical_app.dispatcher
    botical_app.permissions.membership_changed()  # nothing kept yet
    params = {"sessionId": session_id, "includeMessages": True}
    assert dispatcher.answer_now(identity, None, "sessions.get", dict(params)) is None

    read = await ws.request("sessions.get", **params)  # reads, keeps the role and the result
    now = dispatcher.answer_now(identity, None, "sessions.get", dict(params))
    assert now is not None and read == json.loads(now)
    assert await ws.request("sessions.get", **params) == read

    for name, bad in [
        ("sessions.get", {"sessionId": "../x"}),
        ("sessions.get", {"sessionId": session_id, "extra": 1}),
        ("sessions.list", {"projectId": project_id}),  # no `now`
        ("no.such", {}),
    ]:
        assert dispatcher.answer_now(identity, None, name, bad) is None, (name, bad)
    ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_kept_role_below_the_minimum_goes_to_the_handler_which_refuses(
    botical_app, make_user, now_methods
):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await new_project(alice)
    await add_member(alice, project_id, bob, "viewer")
    owner = await connect(botical_app, alice.token)
    viewer = await connect(botical_app, bob.token)
    await viewer.request("sessions.list", projectId=project_id)  # bob's role is now kept
    with pytest.raises(WsError) as refused:
        await viewer.request("test.note", projectId=project_id)
    assert refused.value.code == "FORBIDDEN"

    first = await owner.request("test.note", projectId=project_id)
    second = await owner.request("test.note", projectId=project_id)
    assert first == {"from": "handler", "role": "owner", "project": project_id}
    assert second == {"from": "memory", "role": "owner", "project": project_id}
    assert now_methods.handled == 1

    resp = await alice.api.delete(f"/api/projects/{project_id}/members/{bob.id}")
    assert resp.status == 204
    bob_identity = await botical_app.auth.authenticate(bob.token)
    assert botical_app.permissions.kept(bob_identity, project_id) is None
    owner.close()
    viewer.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_project_scoped_key_is_confined_on_the_memory_path(botical_app, make_user):
    alice = await make_user("alice")
    mine = await new_project(alice, "Mine")
    other = await new_project(alice, "Other")
    owner = await connect(botical_app, alice.token)
    other_session = await new_session(owner, other)
    await owner.request("sessions.get", sessionId=other_session)  # alice's role in `other` kept
    _, key = await botical_app.apikeys.create(alice.id, project_id=mine)
    scoped = await connect(botical_app, key)
    with pytest.raises(WsError) as hidden:
        await scoped.request("sessions.get", sessionId=other_session)
    assert hidden.value.code == "NOT_FOUND"
    with pytest.raises(WsError) as hidden:
        await scoped.request("test.note", projectId=other)
    assert hidden.value.code == "NOT_FOUND"
    owner.close()
    scoped.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_now_function_is_logged_and_the_handler_answers(
    botical_app, make_user, caplog
):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    await ws.request("sessions.list", projectId=project_id)  # role kept: `now` will be tried
    assert await ws.request("test.broken", projectId=project_id) == {"from": "handler"}
    assert "answering test.broken from memory failed" in caplog.text
    ws.close()
