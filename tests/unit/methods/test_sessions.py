"""sessions.* over a real socket: create, list, get, update, archive, sync, and who may."""

from __future__ import annotations

import pytest

from botical.ids import new_id
from tests.unit.methods.helpers import add_member, fails, new_project, run_finished


async def _owner(make_user, connect):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    return alice, project_id, await connect(alice)


def _text(message):
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


@pytest.mark.gen_test
async def test_create_returns_the_new_session(make_user, connect):
    alice, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id, title="First", agent="plan")
    assert session["id"].startswith("sess_")
    assert {k: session[k] for k in ("projectId", "title", "agent", "model", "status")} == {
        "projectId": project_id,
        "title": "First",
        "agent": "plan",
        "model": None,
        "status": "active",
    }
    assert session["createdBy"] == alice.id
    assert session["usage"] == {"inputTokens": 0, "outputTokens": 0, "cachedTokens": 0, "cost": 0.0}
    assert "messages" not in session
    idle = {"status": "idle", "runId": None}
    assert await ws.request("sessions.get", sessionId=session["id"]) == {**session, "run": idle}


@pytest.mark.gen_test
async def test_create_defaults_and_model(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    assert (session["title"], session["agent"], session["model"]) == ("", "default", None)
    chosen = await ws.request("sessions.create", projectId=project_id, model="echo")
    assert chosen["model"] == "echo"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"projectId": "nope"}, "projectId"),
        ({}, "projectId"),
        ({"projectId": "P", "agent": "no-such-agent"}, "agent"),
        ({"projectId": "P", "model": "nosuchprovider/x"}, "model"),
        ({"projectId": "P", "title": "t" * 501}, "title"),
        ({"projectId": "P", "parentId": "msg_1"}, "parentId"),
        ({"projectId": "P", "colour": "red"}, "colour"),
    ],
)
async def test_create_names_the_invalid_param(make_user, connect, params, field):
    _, project_id, ws = await _owner(make_user, connect)
    params = {k: project_id if v == "P" else v for k, v in params.items()}
    error = await fails(ws, "sessions.create", "VALIDATION_ERROR", **params)
    assert field in error.details


@pytest.mark.gen_test
async def test_create_with_a_parent_from_the_same_project_only(make_user, connect):
    alice, project_id, ws = await _owner(make_user, connect)
    parent = await ws.request("sessions.create", projectId=project_id)
    child = await ws.request("sessions.create", projectId=project_id, parentId=parent["id"])
    assert child["parentId"] == parent["id"]
    elsewhere = await new_project(alice)
    error = await fails(
        ws, "sessions.create", "VALIDATION_ERROR", projectId=elsewhere, parentId=parent["id"]
    )
    assert "parentId" in error.details


@pytest.mark.gen_test
async def test_list_pages_newest_first_with_a_cursor(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    ids = [
        (await ws.request("sessions.create", projectId=project_id, title=f"s{i}"))["id"]
        for i in range(5)
    ]
    first = await ws.request("sessions.list", projectId=project_id, limit=2)
    assert [s["id"] for s in first["items"]] == [ids[4], ids[3]]
    assert first["nextCursor"]
    second = await ws.request(
        "sessions.list", projectId=project_id, limit=2, cursor=first["nextCursor"]
    )
    assert [s["id"] for s in second["items"]] == [ids[2], ids[1]]
    third = await ws.request(
        "sessions.list", projectId=project_id, limit=2, cursor=second["nextCursor"]
    )
    assert [s["id"] for s in third["items"]] == [ids[0]]
    assert third["nextCursor"] is None
    everything = await ws.request("sessions.list", projectId=project_id)
    assert [s["id"] for s in everything["items"]] == ids[::-1]
    assert everything["nextCursor"] is None


@pytest.mark.gen_test
async def test_list_filters_by_status(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    kept = await ws.request("sessions.create", projectId=project_id)
    gone = await ws.request("sessions.create", projectId=project_id)
    await ws.request("sessions.archive", sessionId=gone["id"])
    active = await ws.request("sessions.list", projectId=project_id, status="active")
    archived = await ws.request("sessions.list", projectId=project_id, status="archived")
    assert [s["id"] for s in active["items"]] == [kept["id"]]
    assert [s["id"] for s in archived["items"]] == [gone["id"]]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "deleted"}, "status"),
    ],
)
async def test_list_rejects_bad_paging(make_user, connect, params, field):
    _, project_id, ws = await _owner(make_user, connect)
    error = await fails(ws, "sessions.list", "VALIDATION_ERROR", projectId=project_id, **params)
    assert field in error.details


@pytest.mark.gen_test
async def test_get_includes_messages_and_parts_when_asked(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    await ws.subscribe(f"session:{session['id']}")
    sent = await ws.request("messages.send", sessionId=session["id"], content="hello there")
    await run_finished(ws, sent["runId"])
    plain = await ws.request("sessions.get", sessionId=session["id"])
    assert "messages" not in plain
    full = await ws.request("sessions.get", sessionId=session["id"], includeMessages=True)
    messages = full.pop("messages")
    assert [(m["role"], _text(m)) for m in messages] == [
        ("user", "hello there"),
        ("assistant", "hello there"),
    ]
    assert all(part["messageId"] == m["id"] for m in messages for part in m["parts"])
    assert full["id"] == plain["id"]


@pytest.mark.gen_test
async def test_get_a_session_that_does_not_exist(make_user, connect):
    _, _, ws = await _owner(make_user, connect)
    await fails(ws, "sessions.get", "NOT_FOUND", sessionId=new_id("sess"))
    error = await fails(ws, "sessions.get", "VALIDATION_ERROR", sessionId="prj_x")
    assert "sessionId" in error.details


@pytest.mark.gen_test
async def test_update_changes_title_agent_and_model(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id, title="old")
    updated = await ws.request(
        "sessions.update", sessionId=session["id"], title="new", agent="explore", model="echo"
    )
    assert (updated["title"], updated["agent"], updated["model"]) == ("new", "explore", "echo")
    assert updated["updatedAt"] >= session["updatedAt"]
    read = await ws.request("sessions.get", sessionId=session["id"])
    assert read == {**updated, "run": {"status": "idle", "runId": None}}
    cleared = await ws.request("sessions.update", sessionId=session["id"], model=None)
    assert (cleared["title"], cleared["model"]) == ("new", None)


@pytest.mark.gen_test
async def test_update_validates_names(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    error = await fails(
        ws, "sessions.update", "VALIDATION_ERROR", sessionId=session["id"], agent="x"
    )
    assert "agent" in error.details
    error = await fails(
        ws, "sessions.update", "VALIDATION_ERROR", sessionId=session["id"], status="archived"
    )
    assert "status" in error.details


@pytest.mark.gen_test
async def test_archive_keeps_the_session_readable_but_closed(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    archived = await ws.request("sessions.archive", sessionId=session["id"])
    assert archived["status"] == "archived"
    assert isinstance(archived["archivedAt"], int)
    assert (await ws.request("sessions.get", sessionId=session["id"]))["status"] == "archived"
    await fails(ws, "sessions.update", "CONFLICT", sessionId=session["id"], title="x")
    await fails(ws, "messages.send", "CONFLICT", sessionId=session["id"], content="hi")
    again = await ws.request("sessions.archive", sessionId=session["id"])
    assert again["archivedAt"] == archived["archivedAt"]


@pytest.mark.gen_test
async def test_archive_cancels_the_running_answer(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    await ws.subscribe(f"session:{session['id']}")
    sent = await ws.request("messages.send", sessionId=session["id"], content="/slow " + "w " * 200)
    await ws.next_event("part.updated", part__type="text")
    await ws.request("sessions.archive", sessionId=session["id"])
    await run_finished(ws, sent["runId"])
    sync = await ws.request("sessions.sync", sessionId=session["id"])
    assert sync["status"] == {"status": "idle", "runId": None}
    assert sync["messages"][-1]["status"] == "cancelled"


@pytest.mark.gen_test
async def test_sync_returns_the_state_and_the_seq_it_matches(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id, title="t")
    channel = f"session:{session['id']}"
    empty = await ws.request("sessions.sync", sessionId=session["id"])
    assert set(empty) == {
        "session",
        "messages",
        "todos",
        "pendingApprovals",
        "status",
        "queue",
        "seq",
    }
    assert (empty["messages"], empty["todos"], empty["pendingApprovals"], empty["seq"]) == (
        [],
        [],
        [],
        0,
    )
    await ws.subscribe(channel)
    sent = await ws.request("messages.send", sessionId=session["id"], content="one two")
    last = await run_finished(ws, sent["runId"])
    sync = await ws.request("sessions.sync", sessionId=session["id"])
    assert sync["seq"] == last["seq"]
    assert sync["status"] == {"status": "idle", "runId": None}
    assert "messages" not in sync["session"]
    assert sync["session"]["id"] == session["id"]
    assert [(m["role"], _text(m)) for m in sync["messages"]] == [
        ("user", "one two"),
        ("assistant", "one two"),
    ]
    assert (sync["todos"], sync["pendingApprovals"]) == ([], [])
    listed = await ws.request("subscriptions.list")
    assert {"channel": channel, "seq": sync["seq"]} in listed["items"]


@pytest.mark.gen_test
async def test_sync_rejects_a_negative_since(make_user, connect):
    _, project_id, ws = await _owner(make_user, connect)
    session = await ws.request("sessions.create", projectId=project_id)
    error = await fails(ws, "sessions.sync", "VALIDATION_ERROR", sessionId=session["id"], since=-1)
    assert "since" in error.details


@pytest.mark.gen_test
async def test_a_viewer_reads_but_cannot_create_or_change(make_user, connect):
    alice, project_id, owner_ws = await _owner(make_user, connect)
    viewer = await make_user("victor")
    await add_member(alice, project_id, viewer, "viewer")
    session = await owner_ws.request("sessions.create", projectId=project_id, title="t")
    ws = await connect(viewer)
    assert (await ws.request("sessions.get", sessionId=session["id"]))["title"] == "t"
    listed = await ws.request("sessions.list", projectId=project_id)
    assert [s["id"] for s in listed["items"]] == [session["id"]]
    await ws.request("sessions.sync", sessionId=session["id"])
    await fails(ws, "sessions.create", "FORBIDDEN", projectId=project_id)
    await fails(ws, "sessions.update", "FORBIDDEN", sessionId=session["id"], title="mine")
    await fails(ws, "sessions.archive", "FORBIDDEN", sessionId=session["id"])
    unchanged = await owner_ws.request("sessions.get", sessionId=session["id"])
    assert (unchanged["title"], unchanged["status"]) == ("t", "active")
    listed = await owner_ws.request("sessions.list", projectId=project_id)
    assert len(listed["items"]) == 1


@pytest.mark.gen_test
async def test_a_member_may_create_and_update(make_user, connect):
    alice, project_id, _ = await _owner(make_user, connect)
    bob = await make_user("bob")
    await add_member(alice, project_id, bob, "member")
    ws = await connect(bob)
    session = await ws.request("sessions.create", projectId=project_id, title="b")
    assert session["createdBy"] == bob.id
    assert (await ws.request("sessions.update", sessionId=session["id"], title="c"))["title"] == "c"


@pytest.mark.gen_test
async def test_a_stranger_cannot_tell_the_project_or_session_exists(make_user, connect):
    _, project_id, owner_ws = await _owner(make_user, connect)
    session = await owner_ws.request("sessions.create", projectId=project_id)
    mallory = await make_user("mallory")
    ws = await connect(mallory)
    await fails(ws, "sessions.list", "NOT_FOUND", projectId=project_id)
    await fails(ws, "sessions.create", "NOT_FOUND", projectId=project_id)
    await fails(ws, "sessions.get", "NOT_FOUND", sessionId=session["id"])
    await fails(ws, "sessions.sync", "NOT_FOUND", sessionId=session["id"])
