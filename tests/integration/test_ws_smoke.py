import pytest

from botical.testing.wsclient import WsClient, WsError


@pytest.mark.gen_test
async def test_stream_over_socket(botical_app, make_user):
    alice = await make_user("alice")
    project = (await alice.api.post("/api/projects", {"name": "P"})).body
    ws = await WsClient.connect(f"ws://127.0.0.1:{botical_app.port}/ws", alice.token)
    session = await ws.request("sessions.create", projectId=project["id"], title="t")
    sub = await ws.subscribe(f"session:{session['id']}")
    print(sub)
    await ws.request("messages.send", sessionId=session["id"], content="hello there world")
    done = await ws.next_event("message.updated", message__role="assistant")
    print(done)
    print([(f["event"], f["seq"]) for f in ws.frames])
    with pytest.raises(WsError) as err:
        await ws.request("nope.x")
    print(err.value.code)
    d = await ws.request("system.describe")
    print([m["name"] for m in d["methods"]])
    ws.close()
