"""API keys and sign-out through the server (REST and WebSocket): a credential revoked here
closes its open sockets at once, not at the next periodic revalidation."""

from __future__ import annotations

import pytest

from botical.testing.harness import ApiClient
from botical.testing.wsclient import WsError
from tests.integration.ws_helpers import connect, new_project


@pytest.fixture
def botical_overrides():
    # Far beyond any test's timeout: only the revocation itself can close these sockets.
    return {"websocket": {"revalidate_interval": 3600}}


@pytest.mark.gen_test
async def test_a_key_revoked_over_rest_closes_its_sockets_at_once(botical_app, make_user):
    alice = await make_user("alice")
    created = await alice.api.post("/api/apikeys", {"name": "ci"})
    assert created.status == 201, created.body
    key, secret = created.body["key"], created.body["secret"]
    assert secret.startswith("bk_") and key["hint"] == secret[:7] and "secret" not in key
    by_key = await connect(botical_app, secret)
    by_token = await connect(botical_app, alice.token)
    listed = await alice.api.get("/api/apikeys")
    assert [k["id"] for k in listed.body["items"]] == [key["id"]]

    revoked = await alice.api.post(f"/api/apikeys/{key['id']}/revoke")
    assert revoked.status == 200 and revoked.body["revokedAt"] is not None
    assert await by_key.closed() == 4001
    assert await by_token.request("subscriptions.list") == {"items": []}  # another credential
    assert (await ApiClient(botical_app.url, secret).get("/api/me")).status == 401
    by_token.close()


@pytest.mark.gen_test
async def test_signing_out_closes_the_sockets_of_that_token_only(botical_app, make_user):
    alice = await make_user("alice")
    second = botical_app.tokens.issue(alice.id).token
    leaving = await connect(botical_app, alice.token)
    staying = await connect(botical_app, second)
    assert await leaving.request("tokens.revoke") is None
    assert await leaving.closed() == 4001
    assert (await alice.api.get("/api/me")).status == 401
    assert (await staying.request("users.me"))["user"]["id"] == alice.id
    signed_out = await ApiClient(botical_app.url, second).post("/api/tokens/revoke")
    assert signed_out.status == 204
    assert await staying.closed() == 4001


@pytest.mark.gen_test
async def test_keys_are_the_callers_own(botical_app, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    key = (await alice.api.post("/api/apikeys")).body["key"]
    assert (await bob.api.post(f"/api/apikeys/{key['id']}/revoke")).error_code == "NOT_FOUND"
    assert (await bob.api.get("/api/apikeys")).body["items"] == []
    project_id = await new_project(alice)
    refused = await bob.api.post("/api/apikeys", {"projectId": project_id})
    assert refused.error_code == "NOT_FOUND"  # bob is not a member: the project stays hidden


@pytest.mark.gen_test
async def test_a_project_scoped_key_cannot_mint_wider_keys(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    scoped = (await alice.api.post("/api/apikeys", {"projectId": project_id})).body["secret"]
    ws = await connect(botical_app, scoped)
    with pytest.raises(WsError) as refused:
        await ws.request("apikeys.create", name="wider")
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(WsError) as not_a_token:
        await ws.request("tokens.revoke")
    assert not_a_token.value.code == "VALIDATION_ERROR"
    ws.close()
