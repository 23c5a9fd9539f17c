"""REST project members: adding, listing, changing roles, removing, and who may do each."""

from __future__ import annotations

import asyncio

import pytest

from botical.ids import new_id


async def _project(owner):
    resp = await owner.api.post("/api/projects", {"name": "Team"})
    assert resp.status == 201, resp.body
    return resp.body["id"]


async def _add(owner, project_id, person, role):
    resp = await owner.api.post(
        f"/api/projects/{project_id}/members", {"userId": person.id, "role": role}
    )
    assert resp.status == 201, resp.body
    return resp.body


async def _roles(person, project_id):
    resp = await person.api.get(f"/api/projects/{project_id}/members")
    assert resp.status == 200, resp.body
    return {m["userName"]: m["role"] for m in resp.body["items"]}


def _members(project_id, user_id=None):
    base = f"/api/projects/{project_id}/members"
    return f"{base}/{user_id}" if user_id else base


def _assert_error(resp, status, code):
    assert (resp.status, resp.error_code) == (status, code), resp.body


# --- adding ---


@pytest.mark.gen_test
async def test_add_a_member_by_user_id(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    resp = await alice.api.post(_members(project_id), {"userId": bob.id, "role": "member"})
    assert resp.status == 201, resp.body
    assert resp.body["projectId"] == project_id
    assert (resp.body["userId"], resp.body["userName"], resp.body["role"]) == (
        bob.id,
        "bob",
        "member",
    )
    assert isinstance(resp.body["createdAt"], int)


@pytest.mark.gen_test
async def test_add_a_member_by_user_name(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    resp = await alice.api.post(_members(project_id), {"userName": "bob", "role": "viewer"})
    assert resp.status == 201, resp.body
    assert (resp.body["userId"], resp.body["role"]) == (bob.id, "viewer")
    got = await bob.api.get(f"/api/projects/{project_id}")
    assert (got.status, got.body["role"]) == (200, "viewer")


@pytest.mark.gen_test
async def test_adding_a_member_twice_is_a_conflict(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    again = await alice.api.post(_members(project_id), {"userName": "bob", "role": "admin"})
    _assert_error(again, 409, "CONFLICT")
    assert (await _roles(alice, project_id))["bob"] == "viewer"


@pytest.mark.gen_test
async def test_adding_the_owner_again_is_a_conflict(make_user):
    alice = await make_user("alice")
    project_id = await _project(alice)
    resp = await alice.api.post(_members(project_id), {"userId": alice.id, "role": "viewer"})
    _assert_error(resp, 409, "CONFLICT")


@pytest.mark.parametrize(
    "body",
    [{"role": "viewer"}, {"userId": "{id}", "userName": "bob", "role": "viewer"}],
    ids=["neither", "both"],
)
@pytest.mark.gen_test
async def test_add_needs_exactly_one_of_user_id_and_user_name(make_user, body):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    body = {k: v.format(id=bob.id) for k, v in body.items()}
    resp = await alice.api.post(_members(project_id), body)
    _assert_error(resp, 400, "VALIDATION_ERROR")
    assert "_schema" in resp.body["error"]["details"]
    assert list(await _roles(alice, project_id)) == ["alice"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"userName": "bob"}, "role"),
        ({"userName": "bob", "role": "god"}, "role"),
        ({"userName": "bob", "role": "viewer", "isAdmin": True}, "isAdmin"),
        ({"userName": "", "role": "viewer"}, "userName"),
    ],
    ids=["no-role", "unknown-role", "unknown-field", "empty-name"],
)
@pytest.mark.gen_test
async def test_add_validates_the_body(make_user, body, field):
    alice = await make_user("alice")
    await make_user("bob")
    project_id = await _project(alice)
    resp = await alice.api.post(_members(project_id), body)
    _assert_error(resp, 400, "VALIDATION_ERROR")
    assert field in resp.body["error"]["details"], resp.body


@pytest.mark.parametrize(
    "ref",
    [{"userName": "nobody"}, {"userId": new_id("usr")}],
    ids=["by-name", "by-id"],
)
@pytest.mark.gen_test
async def test_adding_an_unknown_user_is_not_found(make_user, ref):
    alice = await make_user("alice")
    project_id = await _project(alice)
    resp = await alice.api.post(_members(project_id), {**ref, "role": "viewer"})
    _assert_error(resp, 404, "NOT_FOUND")


@pytest.mark.parametrize("role", ["viewer", "member"])
@pytest.mark.gen_test
async def test_below_admin_cannot_add_members(make_user, role):
    alice = await make_user("alice")
    bob = await make_user("bob")
    await make_user("carol")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, role)
    resp = await bob.api.post(_members(project_id), {"userName": "carol", "role": "viewer"})
    _assert_error(resp, 403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_an_admin_can_add_members_but_not_owners(make_user):
    alice = await make_user("alice")
    ada = await make_user("ada")
    await make_user("carol")
    await make_user("dave")
    project_id = await _project(alice)
    await _add(alice, project_id, ada, "admin")
    ok = await ada.api.post(_members(project_id), {"userName": "carol", "role": "admin"})
    assert ok.status == 201, ok.body
    owner = await ada.api.post(_members(project_id), {"userName": "dave", "role": "owner"})
    _assert_error(owner, 403, "FORBIDDEN")
    assert "dave" not in await _roles(alice, project_id)


@pytest.mark.gen_test
async def test_a_non_member_cannot_add_members(make_user):
    alice = await make_user("alice")
    mallory = await make_user("mallory")
    project_id = await _project(alice)
    resp = await mallory.api.post(_members(project_id), {"userId": mallory.id, "role": "owner"})
    _assert_error(resp, 404, "NOT_FOUND")
    assert list(await _roles(alice, project_id)) == ["alice"]


# --- listing ---


@pytest.mark.gen_test
async def test_list_members_shows_every_member_with_its_role(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    carol = await make_user("carol")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    await _add(alice, project_id, carol, "admin")
    resp = await bob.api.get(_members(project_id))
    assert resp.status == 200, resp.body
    assert resp.body["nextCursor"] is None
    assert {(m["userId"], m["userName"], m["role"]) for m in resp.body["items"]} == {
        (alice.id, "alice", "owner"),
        (bob.id, "bob", "viewer"),
        (carol.id, "carol", "admin"),
    }
    assert all(m["projectId"] == project_id for m in resp.body["items"])


@pytest.mark.gen_test
async def test_a_non_member_cannot_list_members(make_user):
    alice = await make_user("alice")
    mallory = await make_user("mallory")
    project_id = await _project(alice)
    _assert_error(await mallory.api.get(_members(project_id)), 404, "NOT_FOUND")


# --- changing roles ---


@pytest.mark.gen_test
async def test_an_owner_changes_a_members_role(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    resp = await alice.api.patch(_members(project_id, bob.id), {"role": "admin"})
    assert resp.status == 200, resp.body
    assert (resp.body["userId"], resp.body["role"]) == (bob.id, "admin")
    assert (await _roles(alice, project_id))["bob"] == "admin"
    renamed = await bob.api.patch(f"/api/projects/{project_id}", {"name": "Bob's now"})
    assert renamed.status == 200, renamed.body


@pytest.mark.gen_test
async def test_change_role_validates_the_role(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    for body in ({}, {"role": "superuser"}, {"role": "admin", "userId": alice.id}):
        resp = await alice.api.patch(_members(project_id, bob.id), body)
        _assert_error(resp, 400, "VALIDATION_ERROR")
    assert (await _roles(alice, project_id))["bob"] == "viewer"


@pytest.mark.gen_test
async def test_changing_a_non_member_is_not_found(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    for user_id in (bob.id, new_id("usr")):
        resp = await alice.api.patch(_members(project_id, user_id), {"role": "viewer"})
        _assert_error(resp, 404, "NOT_FOUND")


@pytest.mark.gen_test
async def test_a_malformed_user_id_in_the_url_is_a_validation_error(make_user):
    alice = await make_user("alice")
    project_id = await _project(alice)
    resp = await alice.api.patch(_members(project_id, "usr_123"), {"role": "viewer"})
    _assert_error(resp, 400, "VALIDATION_ERROR")
    assert "userId" in resp.body["error"]["details"]


@pytest.mark.gen_test
async def test_an_admin_cannot_make_someone_an_owner(make_user):
    alice = await make_user("alice")
    ada = await make_user("ada")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, ada, "admin")
    await _add(alice, project_id, bob, "member")
    for target in (bob, ada):
        resp = await ada.api.patch(_members(project_id, target.id), {"role": "owner"})
        _assert_error(resp, 403, "FORBIDDEN")
    assert await _roles(alice, project_id) == {"alice": "owner", "ada": "admin", "bob": "member"}


@pytest.mark.gen_test
async def test_an_admin_cannot_change_an_owner(make_user):
    alice = await make_user("alice")
    ada = await make_user("ada")
    project_id = await _project(alice)
    await _add(alice, project_id, ada, "admin")
    resp = await ada.api.patch(_members(project_id, alice.id), {"role": "viewer"})
    _assert_error(resp, 403, "FORBIDDEN")
    removed = await ada.api.delete(_members(project_id, alice.id))
    _assert_error(removed, 403, "FORBIDDEN")
    assert (await _roles(alice, project_id))["alice"] == "owner"


@pytest.mark.gen_test
async def test_an_admin_changes_roles_below_owner(make_user):
    alice = await make_user("alice")
    ada = await make_user("ada")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, ada, "admin")
    await _add(alice, project_id, bob, "viewer")
    resp = await ada.api.patch(_members(project_id, bob.id), {"role": "member"})
    assert (resp.status, resp.body["role"]) == (200, "member")


@pytest.mark.gen_test
async def test_a_member_cannot_change_roles(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "member")
    resp = await bob.api.patch(_members(project_id, bob.id), {"role": "admin"})
    _assert_error(resp, 403, "FORBIDDEN")
    assert (await _roles(alice, project_id))["bob"] == "member"


@pytest.mark.gen_test
async def test_the_last_owner_cannot_be_demoted(make_user):
    alice = await make_user("alice")
    project_id = await _project(alice)
    resp = await alice.api.patch(_members(project_id, alice.id), {"role": "admin"})
    _assert_error(resp, 409, "CONFLICT")
    assert (await _roles(alice, project_id))["alice"] == "owner"


@pytest.mark.gen_test
async def test_an_owner_can_step_down_once_there_is_another_owner(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "admin")
    promoted = await alice.api.patch(_members(project_id, bob.id), {"role": "owner"})
    assert (promoted.status, promoted.body["role"]) == (200, "owner")
    demoted = await alice.api.patch(_members(project_id, alice.id), {"role": "admin"})
    assert (demoted.status, demoted.body["role"]) == (200, "admin")
    last = await bob.api.patch(_members(project_id, bob.id), {"role": "admin"})
    _assert_error(last, 409, "CONFLICT")


# --- removing ---


@pytest.mark.gen_test
async def test_the_last_owner_cannot_be_removed(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "admin")
    _assert_error(await alice.api.delete(_members(project_id, alice.id)), 409, "CONFLICT")
    assert (await alice.api.get(f"/api/projects/{project_id}")).status == 200


@pytest.mark.gen_test
async def test_a_member_can_leave(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    resp = await bob.api.delete(_members(project_id, bob.id))
    assert resp.status == 204, resp.body
    assert "bob" not in await _roles(alice, project_id)
    _assert_error(await bob.api.get(f"/api/projects/{project_id}"), 404, "NOT_FOUND")


@pytest.mark.gen_test
async def test_an_owner_can_leave_when_another_owner_remains(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "owner")
    assert (await alice.api.delete(_members(project_id, alice.id))).status == 204
    assert await _roles(bob, project_id) == {"bob": "owner"}


@pytest.mark.parametrize("role", ["viewer", "member"])
@pytest.mark.gen_test
async def test_below_admin_cannot_remove_others(make_user, role):
    alice = await make_user("alice")
    bob = await make_user("bob")
    carol = await make_user("carol")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, role)
    await _add(alice, project_id, carol, "viewer")
    _assert_error(await bob.api.delete(_members(project_id, carol.id)), 403, "FORBIDDEN")
    assert "carol" in await _roles(alice, project_id)


@pytest.mark.gen_test
async def test_a_removed_member_loses_access(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "admin")
    assert (await bob.api.get(f"/api/projects/{project_id}")).status == 200
    assert (await alice.api.delete(_members(project_id, bob.id))).status == 204
    _assert_error(await bob.api.get(f"/api/projects/{project_id}"), 404, "NOT_FOUND")
    _assert_error(await bob.api.get(_members(project_id)), 404, "NOT_FOUND")
    renamed = await bob.api.patch(f"/api/projects/{project_id}", {"name": "Mine"})
    _assert_error(renamed, 404, "NOT_FOUND")
    assert (await bob.api.get("/api/projects")).body["items"] == []


@pytest.mark.gen_test
async def test_removing_a_non_member_is_not_found(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await _project(alice)
    for user_id in (bob.id, new_id("usr")):
        _assert_error(await alice.api.delete(_members(project_id, user_id)), 404, "NOT_FOUND")


@pytest.mark.gen_test
async def test_a_non_member_cannot_remove_members(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    mallory = await make_user("mallory")
    project_id = await _project(alice)
    await _add(alice, project_id, bob, "viewer")
    _assert_error(await mallory.api.delete(_members(project_id, bob.id)), 404, "NOT_FOUND")
    assert "bob" in await _roles(alice, project_id)


# --- concurrency (the races show on PostgreSQL, where requests run in parallel) ---

ROUNDS = 10


@pytest.mark.gen_test(timeout=60)
async def test_two_owners_demoting_themselves_at_once_keep_an_owner(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    for _ in range(ROUNDS):
        project_id = await _project(alice)
        await _add(alice, project_id, bob, "owner")
        results = await asyncio.gather(
            alice.api.patch(_members(project_id, alice.id), {"role": "admin"}),
            bob.api.patch(_members(project_id, bob.id), {"role": "admin"}),
        )
        assert sorted(r.status for r in results) == [200, 409], [r.body for r in results]
        assert list((await _roles(alice, project_id)).values()).count("owner") == 1


@pytest.mark.gen_test(timeout=60)
async def test_two_owners_leaving_at_once_keep_an_owner(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    for _ in range(ROUNDS):
        project_id = await _project(alice)
        await _add(alice, project_id, bob, "owner")
        results = await asyncio.gather(
            alice.api.delete(_members(project_id, alice.id)),
            bob.api.delete(_members(project_id, bob.id)),
        )
        assert sorted(r.status for r in results) == [204, 409], [r.body for r in results]
        stayed = alice if results[1].status == 204 else bob
        assert list((await _roles(stayed, project_id)).values()) == ["owner"]


@pytest.mark.gen_test(timeout=60)
async def test_adding_the_same_user_twice_at_once_is_one_conflict(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    for _ in range(ROUNDS):
        project_id = await _project(alice)
        body = {"userId": bob.id, "role": "viewer"}
        results = await asyncio.gather(
            alice.api.post(_members(project_id), body), alice.api.post(_members(project_id), body)
        )
        assert sorted(r.status for r in results) == [201, 409], [r.body for r in results]
        assert results[0].error_code == "CONFLICT" or results[1].error_code == "CONFLICT"
