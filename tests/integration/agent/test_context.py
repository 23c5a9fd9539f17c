"""What the model sees: the new message once, earlier turns and tool calls replayed; retry; errors.

The `rec` and `rececho` providers of the Recorder plugin keep every ModelRequest they receive.
"""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import DEEP_CALL, FAIL, parts, text_of


@pytest.fixture
def botical_plugins(recorder):
    return (recorder,)


def turns(request) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in request.messages]


@pytest.fixture
def rec_chat(io_loop, chat):
    """The `chat` session, switched to the recording `rec` model."""
    return io_loop.run_sync(lambda: chat.new_session(model="rec"))


@pytest.mark.gen_test
async def test_first_request_holds_the_message_once(rec_chat, recorder):
    await rec_chat.answer("hello")
    assert [turns(r) for r in recorder.requests] == [[("user", "hello")]]


@pytest.mark.gen_test
async def test_second_request_replays_the_first_exchange(rec_chat, recorder):
    await rec_chat.answer("one")
    await rec_chat.answer("two")
    assert turns(recorder.requests[1]) == [
        ("user", "one"),
        ("assistant", "answer 1"),
        ("user", "two"),
    ]


@pytest.mark.gen_test
async def test_tool_result_goes_back_to_the_model(chat, recorder):
    (chat.workspace / "notes.txt").write_text("seven apples")
    session = await chat.new_session(model="rececho")
    answer = await session.answer('/tool read {"path": "notes.txt"}')
    _, second = recorder.requests
    call = second.messages[-2]
    assert (call.role, [(c.name, dict(c.arguments)) for c in call.tool_calls]) == (
        "assistant",
        [("read", {"path": "notes.txt"})],
    )
    result = second.messages[-1]
    assert (result.role, result.tool_call_id, result.content) == (
        "tool",
        call.tool_calls[0].id,
        "seven apples",
    )
    assert text_of(answer) == "Tool read returned: seven apples"


@pytest.mark.gen_test
async def test_tool_calls_are_replayed_in_later_turns(chat, recorder):
    (chat.workspace / "notes.txt").write_text("seven apples")
    session = await chat.new_session(model="rececho")
    await session.answer('/tool read {"path": "notes.txt"}')
    await session.answer("thanks")
    later = recorder.requests[-1].messages
    assert [(m.role, m.content) for m in later] == [
        ("user", '/tool read {"path": "notes.txt"}'),
        ("assistant", ""),
        ("tool", "seven apples"),
        ("assistant", "Tool read returned: seven apples"),
        ("user", "thanks"),
    ]
    assert later[2].tool_call_id == later[1].tool_calls[0].id


@pytest.mark.gen_test
async def test_retry_answers_again_without_duplicating(rec_chat, recorder, events):
    first = await rec_chat.answer("hello")
    retried = await rec_chat.person.api.post(f"/api/sessions/{rec_chat.sid}/retry", {})
    assert retried.status == 202, retried.body
    again = await rec_chat.finished(retried.body["runId"])
    messages = await rec_chat.messages()
    assert [m["role"] for m in messages if m["role"] == "user"] == ["user"]
    assert {m["id"]: (m["status"], m["versions"]["index"]) for m in messages[1:]} == {
        first["id"]: ("completed", 1),  # the first answer stays, as version 1 of 2
        again["id"]: ("completed", 2),
    }
    assert turns(recorder.requests[-1]) == [("user", "hello")]


@pytest.mark.gen_test
async def test_the_model_is_sent_only_the_active_path(rec_chat, recorder):
    first = await rec_chat.answer("one")
    await rec_chat.answer("two")  # answered "answer 2"
    api, sid = rec_chat.person.api, rec_chat.sid
    question = next(m for m in await rec_chat.messages() if m["role"] == "user")
    edited = await api.post(
        f"/api/sessions/{sid}/messages/{question['id']}/edit", {"content": "uno"}
    )
    assert edited.status == 202, edited.body
    await rec_chat.finished(edited.body["runId"])
    assert turns(recorder.requests[-1]) == [("user", "uno")]  # not "one", nor what followed
    await rec_chat.answer("dos")
    assert turns(recorder.requests[-1]) == [
        ("user", "uno"),
        ("assistant", "answer 3"),
        ("user", "dos"),
    ]

    selected = await api.post(f"/api/sessions/{sid}/messages/{question['id']}/select", {})
    assert selected.status == 200, selected.body
    assert [m["id"] for m in selected.body["messages"]][:2] == [question["id"], first["id"]]
    await rec_chat.answer("three")
    assert turns(recorder.requests[-1]) == [
        ("user", "one"),
        ("assistant", "answer 1"),
        ("user", "two"),
        ("assistant", "answer 2"),
        ("user", "three"),
    ]


@pytest.mark.gen_test
async def test_provider_error_ends_the_message_with_an_error(rec_chat):
    run_id = await rec_chat.started(FAIL)
    failed = await rec_chat.finished(run_id, status="error")
    assert (failed["status"], failed["error"]["code"]) == ("error", "PROVIDER_ERROR")
    step_finish = parts(failed, "step_finish")[-1]
    assert step_finish["error"]["code"] == "PROVIDER_ERROR"
    assert step_finish["error"]["message"] == "Rate limit reached"
    (partial,) = parts(failed, "text")  # the text so far, closed before the error part
    assert (partial["text"], partial["status"]) == ("partial ", "error")
    assert partial["position"] < step_finish["position"]
    closed = rec_chat.events.find("part.updated", part__id=partial["id"], part__status="error")
    error_part = rec_chat.events.find("part.created", part__id=step_finish["id"])
    assert rec_chat.events.events.index(closed[0]) < rec_chat.events.events.index(error_part[0])


@pytest.mark.gen_test
async def test_session_is_usable_after_a_provider_error(rec_chat):
    await rec_chat.finished(await rec_chat.started(FAIL), status="error")
    answer = await rec_chat.answer("again")
    assert (answer["status"], text_of(answer)) == ("completed", "answer 2")


@pytest.mark.gen_test
async def test_a_call_nested_too_deeply_ends_the_run_as_an_invalid_answer(rec_chat):
    answer = await rec_chat.finished(await rec_chat.started(DEEP_CALL), status="error")
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "PROVIDER_ERROR"
    assert answer["error"]["details"] == {"kind": "invalid_response"}
    assert "nest at most 64 levels" in answer["error"]["message"]
    assert parts(answer, "tool_call") == []  # nothing that deep was stored
