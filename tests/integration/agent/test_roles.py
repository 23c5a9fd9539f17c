"""Project roles on sessions: a viewer reads but cannot act; a stranger sees nothing."""

from __future__ import annotations

import pytest


@pytest.fixture
def viewer(io_loop, chat, make_user):
    """A user added to the chat's project with the viewer role."""

    async def make():
        person = await make_user("vera")
        added = await chat.person.api.post(
            f"/api/projects/{chat.project['id']}/members", {"userId": person.id, "role": "viewer"}
        )
        assert added.status == 201, added.body
        return person

    return io_loop.run_sync(make)


@pytest.mark.gen_test
async def test_viewer_reads_session_and_messages(chat, viewer):
    await chat.answer("hello")
    session = await viewer.api.get(f"/api/sessions/{chat.sid}")
    messages = await viewer.api.get(f"/api/sessions/{chat.sid}/messages")
    assert (session.status, messages.status) == (200, 200)
    assert [m["role"] for m in messages.body["items"]] == ["user", "assistant"]


@pytest.mark.gen_test
async def test_viewer_cannot_send(chat, viewer, events):
    sent = await viewer.api.post(f"/api/sessions/{chat.sid}/messages", {"content": "hi"})
    assert (sent.status, sent.error_code) == (403, "FORBIDDEN")
    assert events.find("message.created") == []


@pytest.mark.gen_test
async def test_viewer_cannot_cancel(chat, viewer, events):
    run_id = await chat.started("/slow " + "word " * 200)
    await events.wait("part.updated", part__type="text")
    cancelled = await viewer.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    assert (cancelled.status, cancelled.error_code) == (403, "FORBIDDEN")
    assert events.find("agent.status_changed", runId=run_id, status="idle") == []


@pytest.mark.gen_test
async def test_viewer_cannot_approve(chat, viewer):
    run_id = await chat.started('/tool write {"path": "a.txt", "content": "x"}')
    approval = await chat.approval(run_id)
    approved = await viewer.api.post(f"/api/approvals/{approval['id']}/approve", {})
    assert (approved.status, approved.error_code) == (403, "FORBIDDEN")
    listed = await chat.person.api.get(f"/api/sessions/{chat.sid}/approvals")
    assert [a["status"] for a in listed.body["items"]] == ["pending"]


@pytest.mark.gen_test
async def test_stranger_gets_not_found(chat, make_user):
    stranger = await make_user("sam")
    for path in (f"/api/sessions/{chat.sid}", f"/api/sessions/{chat.sid}/messages"):
        got = await stranger.api.get(path)
        assert (got.status, got.error_code) == (404, "NOT_FOUND"), path


@pytest.mark.gen_test
async def test_strangers_cannot_tell_a_real_approval_id_from_a_made_up_one(chat, make_user):
    from botical.ids import new_id

    run_id = await chat.started('/tool write {"path": "x.txt", "content": "x"}')
    real = (await chat.approval(run_id))["id"]
    stranger = await make_user("stranger")
    answers = [
        await stranger.api.post(f"/api/approvals/{approval_id}/approve", {})
        for approval_id in (real, new_id("appr"))
    ]
    assert [a.status for a in answers] == [404, 404]
    assert answers[0].body == answers[1].body
