"""Sessions created without a title are titled by the server after their first message."""

from __future__ import annotations

import pytest

from tests.integration.ws_helpers import answer_frames, connect, new_project, send


@pytest.mark.gen_test(timeout=30)
async def test_an_untitled_session_takes_its_first_message_as_title(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session = await ws.request("sessions.create", projectId=project_id)
    assert session["title"] == ""
    await ws.subscribe(f"project:{project_id}")
    first = "\n\n  Fix   the login\tpage, please" + " and more" * 20 + "\nsecond line"
    run_id = await send(ws, session["id"], first)
    updated = await ws.next_event("session.updated", session__id=session["id"])
    title = updated["data"]["session"]["title"]
    assert title.startswith("Fix the login page, please and more")
    assert len(title) == 60 and title.endswith("…")
    await answer_frames(ws, run_id, f"project:{project_id}")

    await send(ws, session["id"], "a second message keeps the title")
    got = await ws.request("sessions.get", sessionId=session["id"])
    assert got["title"] == title
    ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_given_title_is_kept(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session = await ws.request("sessions.create", projectId=project_id, title="Mine")
    await send(ws, session["id"], "hello")
    assert (await ws.request("sessions.get", sessionId=session["id"]))["title"] == "Mine"
    ws.close()
