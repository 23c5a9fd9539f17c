"""Custom http tools against a local Tornado server: URL templates, JSON bodies, secrets in
headers (never shown by the API), the response cap, error statuses and timeouts."""

from __future__ import annotations

import json

import pytest

from botical.testing.wsclient import WsClient
from tests.integration.tools.helpers import (
    STRING,
    allowing,
    call,
    call_status,
    define,
    http,
    result_of,
    schema,
)

SECRET = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def token_secret(monkeypatch):
    """Set before the app starts, as an operator would."""
    monkeypatch.setenv("BOTICAL_SECRET_TOKEN", SECRET)


def item_tool(remote):
    url = f"{remote.url}/items/{{item}}?q={{q}}"
    return http("api_item", schema(item=STRING, q=STRING), url=url)


async def auto_chat(chat, *tools):
    """Define the tools and return a session whose agent runs them without approval."""
    for tool in tools:
        await define(chat.person, chat.project["id"], tool)
    return await allowing(chat, "api_*")


@pytest.mark.gen_test
async def test_get_fills_the_url_template_with_encoded_values(chat, remote):
    tool = item_tool(remote)
    auto = await auto_chat(chat, tool)
    answer = await auto.answer(call("api_item", {"item": "a/b c", "q": "x&y=1#z"}))
    result = result_of(answer)
    assert result["isError"] is False, result
    assert json.loads(result["output"]) == {"item": "a/b c", "q": ["x&y=1#z"]}
    assert result["metadata"] == {"status": 200, "truncated": False}
    (request,) = remote.requests
    assert (request.method, request.path) == ("GET", "/items/a%2Fb%20c")
    assert request.body == b""


@pytest.mark.gen_test
async def test_post_sends_the_arguments_as_json(chat, remote):
    params = {
        "type": "object",
        "properties": {"title": STRING, "tags": {"type": "array", "items": STRING}},
        "required": ["title"],
    }
    tool = http("api_echo", params, method="POST", url=f"{remote.url}/echo")
    auto = await auto_chat(chat, tool)
    args = {"title": "héllo", "tags": ["a", "b"]}
    result = result_of(await auto.answer(call("api_echo", args)))
    assert (result["isError"], json.loads(result["output"])) == (False, args)
    (request,) = remote.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == args


@pytest.mark.gen_test
async def test_a_secret_header_reaches_the_server_and_no_api_answer(chat, remote, botical_app):
    headers = {"Authorization": "Bearer {secret:TOKEN}", "X-Item": "item-{item}"}
    tool = http("api_who", schema(item=STRING), url=f"{remote.url}/whoami", headers=headers)
    created = await chat.person.api.post(f"/api/projects/{chat.project['id']}/tools", tool)
    assert created.status == 201, created.body
    assert created.body["config"]["headers"]["Authorization"] == "Bearer {secret:TOKEN}"
    auto = await allowing(chat, "api_*")
    answer = await auto.answer(call("api_who", {"item": "7"}))
    (request,) = remote.requests
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["X-Item"] == "item-7"
    # the server echoed the header: the model sees it masked
    assert result_of(answer)["output"] == "you sent Bearer [secret]"
    tool_id = created.body["id"]
    project_id = chat.project["id"]
    api = chat.person.api
    answers = [
        created,
        await api.get(f"/api/tools/{tool_id}"),
        await api.get(f"/api/projects/{project_id}/tools"),
        await api.patch(f"/api/tools/{tool_id}", {"description": "who am I"}),
        await api.get(f"/api/sessions/{auto.sid}/messages"),
        await api.get(f"/api/sessions/{auto.sid}?includeMessages=true"),
    ]
    ws = await WsClient.connect(f"ws://127.0.0.1:{botical_app.port}/ws", chat.person.token)
    try:
        listed = await ws.request("tools.list", projectId=project_id)
    finally:
        ws.close()
    for body in [a.body for a in answers] + [listed]:
        assert SECRET not in json.dumps(body)
    assert all(a.status == 200 for a in answers[1:]), [a.body for a in answers]


@pytest.mark.gen_test
async def test_a_secret_can_come_from_the_data_directory(chat, remote, botical_app):
    secrets = botical_app.settings.data_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "FILE_TOKEN").write_text("from-a-file\n")
    headers = {"Authorization": "Bearer {secret:FILE_TOKEN}"}
    tool = http("api_who", schema(), url=f"{remote.url}/whoami", headers=headers)
    auto = await auto_chat(chat, tool)
    result = result_of(await auto.answer(call("api_who", {})))
    assert result["output"] == "you sent Bearer [secret]"
    (request,) = remote.requests
    assert request.headers["Authorization"] == "Bearer from-a-file"


@pytest.mark.gen_test
async def test_a_missing_secret_is_a_tool_error_and_nothing_is_sent(chat, remote):
    headers = {"Authorization": "Bearer {secret:NOT_SET_ANYWHERE}"}
    tool = http("api_who", schema(), url=f"{remote.url}/whoami", headers=headers)
    auto = await auto_chat(chat, tool)
    answer = await auto.answer(call("api_who", {}))
    result = result_of(answer)
    assert result["isError"] is True
    assert result["output"].startswith("Secret NOT_SET_ANYWHERE is not set")
    assert remote.requests == []


@pytest.mark.gen_test
async def test_a_large_answer_is_cut_at_the_cap(chat, remote):
    tool = http("api_big", schema(), url=f"{remote.url}/big", maxResponseBytes=1024)
    auto = await auto_chat(chat, tool)
    result = result_of(await auto.answer(call("api_big", {})))
    assert result["isError"] is False
    assert result["output"] == "a" * 1024 + "\n[response truncated at 1024 bytes]"
    assert result["metadata"] == {"status": 200, "truncated": True}


@pytest.mark.gen_test
async def test_a_non_2xx_answer_is_a_tool_error_with_status_and_body(chat, remote):
    tool = http("api_fail", schema(), url=f"{remote.url}/fail")
    auto = await auto_chat(chat, tool)
    answer = await auto.answer(call("api_fail", {}))
    result = result_of(answer)
    assert result["isError"] is True
    assert result["output"] == "HTTP 503 Service Unavailable\ndown for maintenance"
    assert result["metadata"]["status"] == 503
    assert call_status(answer) == "error"


@pytest.mark.gen_test
async def test_a_redirect_is_not_followed(chat, remote):
    headers = {"Authorization": "Bearer {secret:TOKEN}"}
    tool = http("api_moved", schema(), url=f"{remote.url}/redirect", headers=headers)
    auto = await auto_chat(chat, tool)
    result = result_of(await auto.answer(call("api_moved", {})))
    assert result["isError"] is True
    assert result["output"].startswith("HTTP 302 Found")
    assert [r.path for r in remote.requests] == ["/redirect"]


@pytest.mark.gen_test
async def test_a_request_that_takes_too_long_is_a_tool_error(chat, remote):
    tool = http("api_hang", schema(), url=f"{remote.url}/hang", timeout=1)
    auto = await auto_chat(chat, tool)
    result = result_of(await auto.answer(call("api_hang", {})))
    assert (result["isError"], result["output"]) == (True, "The request timed out after 1s")
    assert len(remote.requests) == 1


@pytest.mark.gen_test
async def test_an_http_tool_asks_for_approval_by_default(chat, remote):
    tool = item_tool(remote)
    await define(chat.person, chat.project["id"], tool)
    run_id = await chat.started(call("api_item", {"item": "x", "q": "y"}))
    await chat.approval(run_id)
    assert remote.requests == []
    await chat.approve(run_id)
    result = result_of(await chat.finished(run_id))
    assert json.loads(result["output"]) == {"item": "x", "q": ["y"]}
