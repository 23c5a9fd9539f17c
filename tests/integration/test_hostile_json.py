"""Generated JSON of every shape at every door of a real server: WebSocket frames, the params
of every method that `system.describe` lists, and the body of every REST route. Each input is
answered with a result or a documented error code (never INTERNAL_ERROR, a 500, or a closed
socket), and the socket stays usable. Hypothesis runs derandomized, so every run is the same."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import tornado.web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botical import jsonin
from botical.errors import ERROR_CODES, InternalError
from botical.testing.wsclient import WsClient
from tests.integration.ws_helpers import connect

DOCUMENTED = frozenset(ERROR_CODES) - {InternalError.code}
FIXED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORDS = st.sampled_from(["type", "id", "params", "sessionId", "projectId", "limit", "x", ""])
TEXT = st.text(max_size=12) | WORDS | st.sampled_from(["\x00", "\ud800", "[{", "]}"])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | TEXT


def _nested(value: Any, levels: int, in_objects: bool = False) -> Any:
    for _ in range(levels):
        value = {"k": value} if in_objects else [value]
    return value


JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
UNSTORABLE = st.sampled_from(["\x00", "\ud800", "a\udfffb"])
LEVELS = st.sampled_from([jsonin.MAX_DEPTH, jsonin.MAX_DEPTH + 1]) | st.integers(1, 600)
DEEP = st.builds(_nested, UNSTORABLE | JSON, LEVELS, st.booleans())
ANY_JSON = JSON | DEEP


def _text(value: Any) -> str:
    """JSON text as a client would send it (NaN, surrogates and all, escaped)."""
    return json.dumps(value)


@pytest.fixture
def botical_overrides() -> dict[str, Any]:
    # Thousands of frames a minute on one socket: the rate limiter is not what is tested here.
    return {"websocket": {"rate_limit": 100_000.0, "rate_burst": 100_000, "abuse_limit": 100_000}}


@pytest.fixture
def world(io_loop, botical_app, make_user, tmp_path) -> dict[str, Any]:
    """An owner who may run code, with a project on a workspace, a session, a custom tool,
    a connected socket and the method list `system.describe` gives."""

    async def make() -> dict[str, Any]:
        owner = await make_user("owner", admin=True, exec=True)
        workspace = tmp_path / "ws"
        workspace.mkdir()
        project = await owner.api.post("/api/projects", {"name": "P", "path": str(workspace)})
        pid = project.body["id"]
        session = await owner.api.post(f"/api/projects/{pid}/sessions", {})
        tool = await owner.api.post(
            f"/api/projects/{pid}/tools",
            {
                "name": "hello",
                "description": "d",
                "kind": "command",
                "config": {"argv": ["echo", "{x}"]},
                "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
            },
        )
        assert tool.status == 201, tool.body
        ws = await connect(botical_app, owner.token)
        methods = (await ws.request("system.describe"))["methods"]
        ids = {
            "prj": pid,
            "sess": session.body["id"],
            "usr": owner.id,
            "tool": tool.body["id"],
            "appr": "appr_01m8bqmrqxzkvare2dbz1z4ww7",
            "msg": "msg_01m8bqmrqxzkvare2dbz1z4ww7",
            "key": "key_01m8bqmrqxzkvare2dbz1z4ww7",
        }
        return {"owner": owner, "ws": ws, "methods": methods, "ids": ids}

    made = io_loop.run_sync(make)
    yield made
    made["ws"].close()


_counter = itertools.count()


async def _answer_of(ws: WsClient, frame_id: str) -> dict[str, Any]:
    """The answer to a frame: echoing its id, or with a null id when the frame could not be
    read (not JSON, or nested too deeply)."""

    def answers(frame: dict[str, Any]) -> bool:
        return frame.get("id") == frame_id or frame == {**frame, "type": "response", "id": None}

    return await ws.next_frame(answers, timeout=10)


async def _still_usable(ws: WsClient) -> None:
    ping = f"ping{next(_counter)}"
    ws.send_raw({"type": "ping", "id": ping})
    pong = await ws.next_frame(lambda f: f.get("id") == ping, timeout=10)
    assert pong["type"] == "pong"


def _assert_documented(frame: dict[str, Any]) -> None:
    if "error" in frame:
        assert frame["error"]["code"] in DOCUMENTED, frame


def _assert_others_documented(ws: WsClient) -> None:
    """Every other frame received so far (answers with a null id, events) is fine too."""
    for seen in ws.frames:
        _assert_documented(seen)
    ws.frames.clear()


# -- frames ---------------------------------------------------------------------------------

FRAME_FIELDS = {
    "method": st.sampled_from(["sessions.get", "system.describe", "nope"]) | JSON,
    "params": ANY_JSON,
    "channels": st.lists(st.sampled_from(["session:x", "bogus", ""]) | JSON, max_size=3) | JSON,
    "since": JSON,
    "epoch": JSON,
    "extra": JSON,
}
DICT_FRAMES = st.fixed_dictionaries(
    {"type": st.sampled_from(["request", "subscribe", "unsubscribe", "ping"]) | JSON},
    optional=FRAME_FIELDS,
)


@settings(FIXED, max_examples=150)
@given(frame=DICT_FRAMES | ANY_JSON, keep_id=st.booleans())
def test_any_frame_is_answered_and_the_socket_stays_open(io_loop, world, frame, keep_id):
    ws = world["ws"]

    async def check() -> None:
        frame_id = f"f{next(_counter)}"
        if isinstance(frame, dict) and keep_id:
            frame["id"] = frame_id
        ws.send_raw(_text(frame))
        if isinstance(frame, dict) and keep_id:
            _assert_documented(await _answer_of(ws, frame_id))
        await _still_usable(ws)
        _assert_others_documented(ws)

    io_loop.run_sync(check, timeout=30)


@settings(FIXED, max_examples=60)
@given(raw=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_any_text_frame_is_answered(io_loop, world, raw):
    ws = world["ws"]

    async def check() -> None:
        ws.send_raw(raw)
        await _still_usable(ws)
        _assert_others_documented(ws)

    io_loop.run_sync(check, timeout=30)


# -- every method's params --------------------------------------------------------------------


def _params(method: dict[str, Any], ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """Params for `method`: its own names (and a stray one) with real ids or any JSON."""
    names = [*sorted(method["params"].get("properties", {})), "stray"]
    real_ids = st.sampled_from(sorted(ids.values()))
    return st.dictionaries(st.sampled_from(names), real_ids | ANY_JSON | real_ids, max_size=4)


@settings(FIXED, max_examples=250)
@given(data=st.data())
def test_any_params_of_any_method_are_answered(io_loop, world, data):
    ws = world["ws"]
    # Signing out (tokens.revoke) closes this socket and deleting the project ends the world
    # the other examples use: both are exercised by their own tests.
    methods = [m for m in world["methods"] if m["name"] not in ("tokens.revoke", "projects.delete")]
    method = data.draw(st.sampled_from(methods), label="method")
    params = data.draw(_params(method, world["ids"]), label="params")

    async def check() -> None:
        frame_id = f"m{next(_counter)}"
        ws.send_raw(
            _text({"type": "request", "id": frame_id, "method": method["name"], "params": params})
        )
        answer = await _answer_of(ws, frame_id)
        _assert_documented(answer)
        await _still_usable(ws)
        _assert_others_documented(ws)

    io_loop.run_sync(check, timeout=30)


def test_every_listed_method_is_exercised(world):
    names = {m["name"] for m in world["methods"]}
    assert {"sessions.get", "messages.send", "todos.update", "system.describe"} <= names


# -- every REST body --------------------------------------------------------------------------

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ID_KINDS = {
    "projects": "prj",
    "members": "usr",
    "sessions": "sess",
    "tools": "tool",
    "approvals": "appr",
    "apikeys": "key",
    "messages": "msg",
}
_GROUP = re.compile(r"\(([^)]*)\)")


def _rest_targets(app: Any, ids: dict[str, str]) -> list[tuple[str, str]]:
    """(HTTP method, path) for every registered route and every method its handler has that
    may carry a body, path groups filled with real ids (by the segment before them)."""
    targets = []
    for registration in app.registries["routes"]:
        pattern, handler, _ = registration.value
        path = _GROUP.sub(lambda match: _fill(match, ids), pattern.rstrip("$"))
        for verb in BODY_METHODS:
            if getattr(handler, verb.lower()) is not getattr(
                tornado.web.RequestHandler, verb.lower()
            ):
                targets.append((verb, path))
    return targets


def _fill(match: re.Match[str], ids: dict[str, str]) -> str:
    """An id of the kind the segment before the group names, the first of alternatives
    (`approve|reject`), or a name (`default`, the built-in agent)."""
    group = match.group(1)
    if "_[" in group:  # an id: prefix_ and characters
        segment = match.string[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        return ids[ID_KINDS[segment]]
    return group.split("|")[0] if "|" in group else "default"


@settings(FIXED, max_examples=250)
@given(data=st.data())
def test_any_body_on_any_route_is_answered(io_loop, botical_app, world, data):
    targets = _rest_targets(botical_app, world["ids"])
    verb, path = data.draw(st.sampled_from(targets), label="target")
    if (verb, path) == ("DELETE", f"/api/projects/{world['ids']['prj']}"):
        verb = "PATCH"  # keep the project the other examples use
    if path == "/api/tokens/revoke":
        path = "/api/apikeys"  # keep the owner signed in for the other examples
    body = data.draw(
        ANY_JSON.map(lambda v: _text(v).encode()) | st.binary(max_size=40), label="body"
    )

    async def check() -> None:
        resp = await world["owner"].api.request(verb, path, raw=body)
        assert resp.status < 500, (verb, path, resp.status, resp.body)
        if resp.status >= 400:
            assert resp.error_code in DOCUMENTED, (verb, path, resp.body)

    io_loop.run_sync(check, timeout=30)


def test_every_route_with_a_body_is_a_target(botical_app, world):
    ids = world["ids"]
    targets = set(_rest_targets(botical_app, ids))
    assert {
        ("POST", "/api/projects"),
        ("PATCH", f"/api/sessions/{ids['sess']}"),
        ("PUT", f"/api/sessions/{ids['sess']}/todos"),
        ("POST", f"/api/projects/{ids['prj']}/tools"),
        ("POST", f"/api/approvals/{ids['appr']}/approve"),
        ("DELETE", f"/api/projects/{ids['prj']}/agents/default"),
    } <= targets


# -- the cases that broke, by hand --------------------------------------------------------------

DEEP_SURROGATE = "[" * 400 + '"\\ud800"' + "]" * 400


def test_a_deep_frame_with_a_lone_surrogate_is_an_invalid_frame(io_loop, world):
    ws = world["ws"]

    async def check() -> None:
        ws.send_raw(
            '{"type":"request","id":"deep","method":"sessions.get","params":{"x":'
            + DEEP_SURROGATE
            + "}}"
        )
        answer = await ws.next_frame(lambda f: f.get("type") == "response", timeout=15)
        assert (answer["id"], answer["error"]["code"]) == (None, "INVALID_FRAME")
        assert answer["error"]["details"] == {"_schema": [jsonin.TOO_DEEP]}
        await _still_usable(ws)

    io_loop.run_sync(check, timeout=30)


def test_a_deep_body_with_a_lone_surrogate_is_a_validation_error(io_loop, world):
    owner, pid = world["owner"], world["ids"]["prj"]

    async def check() -> None:
        resp = await owner.api.request("PATCH", f"/api/projects/{pid}", raw=DEEP_SURROGATE.encode())
        assert (resp.status, resp.error_code) == (400, "VALIDATION_ERROR")

    io_loop.run_sync(check, timeout=30)
