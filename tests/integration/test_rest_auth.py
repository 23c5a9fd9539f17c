"""REST authentication: every /api route needs a valid JWT or API key; health needs none."""

from __future__ import annotations

import logging
import time

import jwt
import pytest

from botical.ids import new_id

ROUTES = (
    ("GET", "/api/me", None),
    ("GET", "/api/projects", None),
    ("POST", "/api/projects", {"name": "Other"}),
    ("GET", "/api/projects/{p}", None),
    ("PATCH", "/api/projects/{p}", {"name": "Renamed"}),
    ("GET", "/api/projects/{p}/members", None),
    ("POST", "/api/projects/{p}/members", {"userId": "{u}", "role": "viewer"}),
    ("PATCH", "/api/projects/{p}/members/{u}", {"role": "member"}),
    ("DELETE", "/api/projects/{p}/members/{u}", None),
    ("DELETE", "/api/projects/{p}", None),
    ("GET", "/-/plugins", None),
)
# What the owner gets on each route, in order (bob is added, changed, removed; then the delete).
OWNER_STATUSES = (200, 200, 201, 200, 200, 200, 201, 200, 204, 204, 200)


async def _setup(make_user):
    """Alice owns a project; bob exists but is not a member."""
    alice = await make_user("alice")
    bob = await make_user("bob")
    created = await alice.api.post("/api/projects", {"name": "Demo"})
    assert created.status == 201, created.body
    return alice, bob, created.body["id"]


async def _call_every_route(client, project_id, user_id):
    responses = []
    for method, template, body in ROUTES:
        path = template.format(p=project_id, u=user_id)
        if isinstance(body, dict):
            body = {k: v.format(u=user_id) for k, v in body.items()}
        json_body = body if method in ("POST", "PATCH") else None
        responses.append(await client.request(method, path, json_body=json_body))
    return responses


async def _assert_rejected_everywhere(client, project_id, user_id):
    for (method, template, _), resp in zip(
        ROUTES, await _call_every_route(client, project_id, user_id), strict=True
    ):
        assert resp.status == 401, (method, template, resp.status, resp.body)
        assert resp.error_code == "UNAUTHORIZED", (method, template, resp.body)
        assert isinstance(resp.body["error"]["message"], str) and resp.body["error"]["message"]


def _secret(app) -> str:
    return (app.settings.data_path / "secret").read_text().strip()


def _claims(user_id: str, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + 600, "jti": new_id("tok"), "iss": "botical"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.gen_test
async def test_every_route_works_with_a_jwt(make_user):
    alice, bob, project_id = await _setup(make_user)
    responses = await _call_every_route(alice.api, project_id, bob.id)
    assert tuple(r.status for r in responses) == OWNER_STATUSES, [r.body for r in responses]


@pytest.mark.gen_test
async def test_every_route_needs_credentials(api, make_user):
    _, bob, project_id = await _setup(make_user)
    await _assert_rejected_everywhere(api, project_id, bob.id)


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer   ", "alice"])
@pytest.mark.gen_test
async def test_a_malformed_authorization_header_is_rejected(api, header):
    resp = await api.get("/api/me", headers={"Authorization": header})
    assert (resp.status, resp.error_code) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_a_token_in_the_query_string_is_not_accepted_by_rest(api, make_user):
    alice, _, _ = await _setup(make_user)
    resp = await api.get(f"/api/me?token={alice.token}")
    assert resp.status == 401


@pytest.mark.parametrize(
    "credential",
    ["garbage", "a.b.c", "bk_not-a-real-key", "x" * 5000],
    ids=["garbage", "three-dots", "unknown-api-key", "too-long"],
)
@pytest.mark.gen_test
async def test_every_route_rejects_a_garbage_credential(api, make_user, credential):
    _, bob, project_id = await _setup(make_user)
    await _assert_rejected_everywhere(api.with_token(credential), project_id, bob.id)


@pytest.mark.gen_test
async def test_every_route_rejects_an_expired_token(botical_app, api, make_user):
    alice, bob, project_id = await _setup(make_user)
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(alice.id, iat=past, exp=past + 60), _secret(botical_app), algorithm="HS256"
    )
    await _assert_rejected_everywhere(api.with_token(token), project_id, bob.id)


@pytest.mark.gen_test
async def test_a_self_signed_token_with_the_server_secret_is_accepted(botical_app, api, make_user):
    """Control for the forged-token tests: the claims and secret they start from are valid."""
    alice, _, _ = await _setup(make_user)
    token = jwt.encode(_claims(alice.id), _secret(botical_app), algorithm="HS256")
    resp = await api.with_token(token).get("/api/me")
    assert resp.status == 200, resp.body
    assert resp.body["user"]["id"] == alice.id


FORGERIES = {
    "alg-none": lambda uid, secret: jwt.encode(_claims(uid), None, algorithm="none"),
    "wrong-secret": lambda uid, secret: jwt.encode(_claims(uid), "x" * 48, algorithm="HS256"),
    "alg-hs512": lambda uid, secret: jwt.encode(_claims(uid), secret, algorithm="HS512"),
    "wrong-issuer": lambda uid, secret: jwt.encode(_claims(uid, iss="evil"), secret, "HS256"),
    "no-issuer": lambda uid, secret: jwt.encode(_claims(uid, iss=None), secret, "HS256"),
    "no-jti": lambda uid, secret: jwt.encode(_claims(uid, jti=None), secret, "HS256"),
    "no-exp": lambda uid, secret: jwt.encode(_claims(uid, exp=None), secret, "HS256"),
    "sub-not-an-id": lambda uid, secret: jwt.encode(_claims("alice"), secret, "HS256"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
@pytest.mark.gen_test
async def test_every_route_rejects_a_forged_token(botical_app, api, make_user, forgery):
    alice, bob, project_id = await _setup(make_user)
    token = FORGERIES[forgery](alice.id, _secret(botical_app))
    await _assert_rejected_everywhere(api.with_token(token), project_id, bob.id)


@pytest.mark.gen_test
async def test_every_route_rejects_a_revoked_token(botical_app, make_user):
    alice, bob, project_id = await _setup(make_user)
    await botical_app.tokens.revoke(alice.token)
    await _assert_rejected_everywhere(alice.api, project_id, bob.id)


@pytest.mark.gen_test
async def test_revoking_one_token_leaves_the_others_working(botical_app, api, make_user):
    alice, _, _ = await _setup(make_user)
    other = botical_app.tokens.issue(alice.id).token
    await botical_app.tokens.revoke(alice.token)
    assert (await api.with_token(other).get("/api/me")).status == 200


@pytest.mark.gen_test
async def test_a_token_for_an_unknown_user_is_rejected(botical_app, api):
    token = jwt.encode(_claims(new_id("usr")), _secret(botical_app), algorithm="HS256")
    resp = await api.with_token(token).get("/api/me")
    assert (resp.status, resp.error_code) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_me_with_a_jwt_shows_the_user_and_token_auth(make_user):
    alice = await make_user("alice")
    resp = await alice.api.get("/api/me")
    assert resp.status == 200, resp.body
    assert resp.body["user"] == {
        "id": alice.id,
        "name": "alice",
        "isAdmin": False,
        "canExecuteCode": False,
    }
    assert resp.body["auth"]["kind"] == "token"
    assert resp.body["auth"]["projectId"] is None
    assert resp.body["auth"]["expiresAt"] > time.time() * 1000


@pytest.mark.gen_test
async def test_every_route_works_with_an_api_key(botical_app, api, make_user):
    alice, bob, project_id = await _setup(make_user)
    _, key = await botical_app.apikeys.create(alice.id)
    assert key.startswith("bk_")
    client = api.with_token(key)
    me = await client.get("/api/me")
    assert me.body["user"]["id"] == alice.id
    assert me.body["auth"] == {"kind": "apikey", "projectId": None, "expiresAt": None}
    responses = await _call_every_route(client, project_id, bob.id)
    assert tuple(r.status for r in responses) == OWNER_STATUSES, [r.body for r in responses]


@pytest.mark.gen_test
async def test_every_route_rejects_a_revoked_api_key(botical_app, api, make_user):
    alice, bob, project_id = await _setup(make_user)
    info, key = await botical_app.apikeys.create(alice.id)
    assert (await api.with_token(key).get("/api/me")).status == 200
    await botical_app.apikeys.revoke(info["id"])
    await _assert_rejected_everywhere(api.with_token(key), project_id, bob.id)


async def _scoped_client(app, api, make_user):
    alice = await make_user("alice")
    first = (await alice.api.post("/api/projects", {"name": "First"})).body["id"]
    second = (await alice.api.post("/api/projects", {"name": "Second"})).body["id"]
    _, key = await app.apikeys.create(alice.id, project_id=first)
    return api.with_token(key), first, second


@pytest.mark.gen_test
async def test_a_project_scoped_key_lists_only_its_project(botical_app, api, make_user):
    client, first, _ = await _scoped_client(botical_app, api, make_user)
    listed = await client.get("/api/projects")
    assert listed.status == 200, listed.body
    assert [p["id"] for p in listed.body["items"]] == [first]
    me = await client.get("/api/me")
    assert me.body["auth"]["projectId"] == first


@pytest.mark.gen_test
async def test_a_project_scoped_key_reaches_its_project(botical_app, api, make_user):
    client, first, _ = await _scoped_client(botical_app, api, make_user)
    assert (await client.get(f"/api/projects/{first}")).status == 200
    assert (await client.get(f"/api/projects/{first}/members")).status == 200


@pytest.mark.gen_test
async def test_a_project_scoped_key_cannot_see_another_project(botical_app, api, make_user):
    client, _, second = await _scoped_client(botical_app, api, make_user)
    for method, path in (
        ("GET", f"/api/projects/{second}"),
        ("PATCH", f"/api/projects/{second}"),
        ("DELETE", f"/api/projects/{second}"),
        ("GET", f"/api/projects/{second}/members"),
    ):
        resp = await client.request(method, path, json_body={} if method == "PATCH" else None)
        assert (resp.status, resp.error_code) == (404, "NOT_FOUND"), (method, path, resp.body)


@pytest.mark.gen_test
async def test_a_project_scoped_key_cannot_create_projects(botical_app, api, make_user):
    client, _, _ = await _scoped_client(botical_app, api, make_user)
    resp = await client.post("/api/projects", {"name": "Third"})
    assert (resp.status, resp.error_code) == (403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_health_needs_no_auth(api):
    resp = await api.get("/health")
    assert resp.status == 200
    assert resp.body["status"] == "ok"
    assert isinstance(resp.body["version"], str)


@pytest.mark.gen_test
async def test_health_ready_reports_the_database_ready(api):
    resp = await api.get("/health/ready")
    assert resp.status == 200
    assert resp.body == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/nope"),
        ("GET", "/api/nope"),
        ("POST", "/api/projects/x/y/z"),
        ("DELETE", "/api/me/nope"),
    ],
)
@pytest.mark.gen_test
async def test_unknown_routes_answer_json_not_found(api, make_user, method, path):
    alice = await make_user("alice")
    for client in (api, alice.api):
        resp = await client.request(method, path, json_body={} if method == "POST" else None)
        assert (resp.status, resp.error_code) == (404, "NOT_FOUND"), resp.body
        assert resp.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test
async def test_tokens_in_query_strings_are_not_logged(api, make_user, caplog):
    alice = await make_user("alice")
    caplog.set_level(logging.DEBUG)
    await api.get("/health?token=SECRET123")
    await api.get("/api/me?access_token=SECRET123&x=1")
    await alice.api.get("/api/me")
    access = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any("/health?token=" in line for line in access), access
    assert any("/api/me?access_token=" in line for line in access), access
    assert "SECRET123" not in caplog.text
    assert alice.token not in caplog.text
