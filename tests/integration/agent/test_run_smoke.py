import pytest


@pytest.mark.gen_test
async def test_echo_answer(botical_app, make_user, events):
    alice = await make_user("alice")
    project = (await alice.api.post("/api/projects", {"name": "P"})).body
    session = (await alice.api.post(f"/api/projects/{project['id']}/sessions", {})).body
    sent = await alice.api.post(
        f"/api/sessions/{session['id']}/messages", {"content": "hello brave new world"}
    )
    assert sent.status == 202, sent.body
    done = await events.wait("message.updated", message__role="assistant")
    assert done.data["message"]["status"] == "completed", done.data
    msgs = (await alice.api.get(f"/api/sessions/{session['id']}/messages")).body["items"]
    text = "".join(p.get("text", "") for p in msgs[1]["parts"] if p["type"] == "text")
    assert text == "hello brave new world"
    print([e.name for e in events.events])
