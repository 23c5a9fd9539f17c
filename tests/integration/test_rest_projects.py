"""REST projects: CRUD, validation, paging, workspace paths and role checks."""

from __future__ import annotations

import os
import re

import pytest

from botical.ids import new_id

PROJECT_ID = re.compile(r"^prj_[0-9a-z]{26}$")


@pytest.fixture
def workspace(tmp_path):
    """The only workspace root non-admins may put projects under."""
    root = tmp_path / "workspace"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    return root


@pytest.fixture
def botical_overrides(workspace):
    return {"workspace_roots": [str(workspace)]}


async def _create(person, name="Demo", **fields):
    resp = await person.api.post("/api/projects", {"name": name, **fields})
    assert resp.status == 201, resp.body
    return resp.body


async def _add(owner, project_id, person, role):
    resp = await owner.api.post(
        f"/api/projects/{project_id}/members", {"userId": person.id, "role": role}
    )
    assert resp.status == 201, resp.body


def _assert_validation(resp, field):
    assert (resp.status, resp.error_code) == (400, "VALIDATION_ERROR"), resp.body
    assert field in resp.body["error"]["details"], resp.body


# --- CRUD ---


@pytest.mark.gen_test
async def test_create_returns_the_project_with_the_owner_role(make_user, botical_settings):
    alice = await make_user("alice")
    resp = await alice.api.post("/api/projects", {"name": "Demo", "description": "A test"})
    assert resp.status == 201, resp.body
    project = resp.body
    assert PROJECT_ID.match(project["id"]), project
    assert project["name"] == "Demo"
    assert project["description"] == "A test"
    # no path given: a default workspace of its own under the data directory, 0700
    workspace = botical_settings.data_path / "workspaces" / project["id"]
    assert project["path"] == str(workspace)
    assert workspace.is_dir() and (workspace.stat().st_mode & 0o777) == 0o700
    assert project["ownerId"] == alice.id
    assert project["role"] == "owner"
    assert project["createdAt"] == project["updatedAt"]


@pytest.mark.gen_test
async def test_get_returns_the_created_project(make_user):
    alice = await make_user("alice")
    created = await _create(alice)
    resp = await alice.api.get(f"/api/projects/{created['id']}")
    assert resp.status == 200, resp.body
    assert resp.body == created


@pytest.mark.gen_test
async def test_list_returns_items_and_next_cursor(make_user):
    alice = await make_user("alice")
    created = await _create(alice)
    resp = await alice.api.get("/api/projects")
    assert resp.status == 200, resp.body
    assert resp.body == {"items": [created], "nextCursor": None}


@pytest.mark.gen_test
async def test_list_pages_walk_every_project_once(make_user):
    alice = await make_user("alice")
    ids = [(await _create(alice, f"P{i}"))["id"] for i in range(5)]
    seen, sizes, cursor = [], [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await alice.api.get(f"/api/projects?{query}")
        assert resp.status == 200, resp.body
        seen += [p["id"] for p in resp.body["items"]]
        sizes.append(len(resp.body["items"]))
        cursor = resp.body["nextCursor"]
        if cursor is None:
            break
        assert len(sizes) < 5, "paging does not end"
    assert sizes == [2, 2, 1]
    assert seen == ids


@pytest.mark.gen_test
async def test_list_shows_only_the_callers_projects(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    await _create(alice, "Alice's")
    mine = await _create(bob, "Bob's")
    resp = await bob.api.get("/api/projects")
    assert [p["id"] for p in resp.body["items"]] == [mine["id"]]


@pytest.mark.gen_test
async def test_patch_changes_name_and_description(make_user):
    alice = await make_user("alice")
    created = await _create(alice)
    resp = await alice.api.patch(
        f"/api/projects/{created['id']}", {"name": "Renamed", "description": "New"}
    )
    assert resp.status == 200, resp.body
    assert (resp.body["name"], resp.body["description"]) == ("Renamed", "New")
    assert resp.body["updatedAt"] >= created["updatedAt"]
    fetched = (await alice.api.get(f"/api/projects/{created['id']}")).body
    assert (fetched["name"], fetched["description"]) == ("Renamed", "New")


@pytest.mark.gen_test
async def test_delete_answers_204_then_the_project_is_gone(make_user):
    alice = await make_user("alice")
    created = await _create(alice)
    resp = await alice.api.delete(f"/api/projects/{created['id']}")
    assert resp.status == 204
    assert resp.body is None
    again = await alice.api.get(f"/api/projects/{created['id']}")
    assert (again.status, again.error_code) == (404, "NOT_FOUND")
    assert (await alice.api.get("/api/projects")).body["items"] == []
    twice = await alice.api.delete(f"/api/projects/{created['id']}")
    assert twice.status == 404


# --- validation ---


@pytest.mark.gen_test
async def test_create_rejects_an_unknown_field(make_user):
    alice = await make_user("alice")
    resp = await alice.api.post("/api/projects", {"name": "Demo", "colour": "red"})
    _assert_validation(resp, "colour")
    assert (await alice.api.get("/api/projects")).body["items"] == []


@pytest.mark.gen_test
async def test_create_rejects_an_owner_field(make_user):
    """Identity comes only from the token, never from the body."""
    alice = await make_user("alice")
    bob = await make_user("bob")
    resp = await alice.api.post("/api/projects", {"name": "Demo", "ownerId": bob.id})
    _assert_validation(resp, "ownerId")


@pytest.mark.parametrize("body", [{}, {"description": "x"}, {"name": None}])
@pytest.mark.gen_test
async def test_create_requires_a_name(make_user, body):
    alice = await make_user("alice")
    _assert_validation(await alice.api.post("/api/projects", body), "name")


@pytest.mark.parametrize("name", ["", "x" * 201, 42])
@pytest.mark.gen_test
async def test_create_rejects_a_bad_name(make_user, name):
    alice = await make_user("alice")
    _assert_validation(await alice.api.post("/api/projects", {"name": name}), "name")


@pytest.mark.gen_test
async def test_create_accepts_a_name_of_200_characters(make_user):
    alice = await make_user("alice")
    assert (await _create(alice, "x" * 200))["name"] == "x" * 200


@pytest.mark.parametrize("raw", [b"{not json", b'{"name": "x"', b"\xff\xfe"])
@pytest.mark.gen_test
async def test_create_rejects_invalid_json(make_user, raw):
    alice = await make_user("alice")
    resp = await alice.api.request("POST", "/api/projects", raw=raw)
    assert (resp.status, resp.error_code) == (400, "PARSE_ERROR"), resp.body


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"name"', b"null", b"3"])
@pytest.mark.gen_test
async def test_create_rejects_a_body_that_is_not_an_object(make_user, raw):
    alice = await make_user("alice")
    resp = await alice.api.request("POST", "/api/projects", raw=raw)
    assert (resp.status, resp.error_code) == (400, "VALIDATION_ERROR"), resp.body


@pytest.mark.gen_test
async def test_create_rejects_deeply_nested_json(make_user):
    alice = await make_user("alice")
    raw = b'{"name": "x", "description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = await alice.api.request("POST", "/api/projects", raw=raw)
    assert (resp.status, resp.error_code) == (400, "PARSE_ERROR"), resp.body


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"name": "a\u0000b"}',
        rb'{"name": "\ud800"}',
        rb'{"name": "x", "path": "/tmp/a\u0000b"}',
        rb'{"name": "x", "path": "/tmp/\udfff"}',
    ],
    ids=["nul-in-name", "surrogate-in-name", "nul-in-path", "surrogate-in-path"],
)
@pytest.mark.gen_test
async def test_create_rejects_text_no_database_can_store(make_user, raw):
    alice = await make_user("alice", admin=True)
    resp = await alice.api.request("POST", "/api/projects", raw=raw)
    assert (resp.status, resp.error_code) == (400, "VALIDATION_ERROR"), resp.body
    assert (await alice.api.get("/api/projects")).body["items"] == []


@pytest.mark.gen_test
async def test_create_accepts_escaped_non_bmp_text(make_user):
    alice = await make_user("alice")
    resp = await alice.api.request("POST", "/api/projects", raw=rb'{"name": "\ud83d\ude00"}')
    assert (resp.status, resp.body["name"]) == (201, "\U0001f600"), resp.body


@pytest.mark.gen_test
async def test_patch_rejects_an_unknown_field(make_user):
    alice = await make_user("alice")
    created = await _create(alice)
    resp = await alice.api.patch(f"/api/projects/{created['id']}", {"ownerId": alice.id})
    _assert_validation(resp, "ownerId")


@pytest.mark.parametrize(
    "query,field",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=" + "a" * 300, "cursor"),
        ("sort=name", "sort"),
    ],
)
@pytest.mark.gen_test
async def test_list_rejects_bad_query_arguments(make_user, query, field):
    alice = await make_user("alice")
    _assert_validation(await alice.api.get(f"/api/projects?{query}"), field)


@pytest.mark.gen_test
async def test_list_rejects_a_cursor_for_another_kind_of_id(make_user):
    """A cursor is opaque: one that decodes to a user id is not a project cursor."""
    import base64

    alice = await make_user("alice")
    cursor = base64.urlsafe_b64encode(alice.id.encode()).decode().rstrip("=")
    _assert_validation(await alice.api.get(f"/api/projects?cursor={cursor}"), "cursor")


@pytest.mark.parametrize("bad_id", ["prj_123", "usr_" + "0" * 26, "prj_" + "0" * 25 + "u"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.gen_test
async def test_a_malformed_project_id_is_a_validation_error(make_user, bad_id, method):
    alice = await make_user("alice")
    resp = await alice.api.request(
        method, f"/api/projects/{bad_id}", json_body={} if method == "PATCH" else None
    )
    _assert_validation(resp, "projectId")


@pytest.mark.parametrize("bad_id", ["PRJ_X", "..%2F..%2Fetc", "prj-1", "%00"])
@pytest.mark.gen_test
async def test_a_project_id_outside_the_id_alphabet_is_not_found(make_user, bad_id):
    alice = await make_user("alice")
    resp = await alice.api.get(f"/api/projects/{bad_id}")
    assert (resp.status, resp.error_code) == (404, "NOT_FOUND"), resp.body


@pytest.mark.gen_test
async def test_an_unknown_project_is_not_found(make_user):
    alice = await make_user("alice")
    resp = await alice.api.get(f"/api/projects/{new_id('prj')}")
    assert (resp.status, resp.error_code) == (404, "NOT_FOUND")


# --- workspace paths ---


@pytest.mark.gen_test
async def test_a_path_with_dot_dot_is_stored_resolved(make_user, workspace):
    alice = await make_user("alice")
    project = await _create(alice, path=str(workspace / "a" / ".." / "b"))
    assert project["path"] == os.path.realpath(workspace / "b")
    fetched = (await alice.api.get(f"/api/projects/{project['id']}")).body
    assert fetched["path"] == os.path.realpath(workspace / "b")


@pytest.mark.gen_test
async def test_a_symlinked_path_is_stored_as_its_target(make_user, workspace):
    alice = await make_user("alice")
    (workspace / "link").symlink_to(workspace / "a", target_is_directory=True)
    project = await _create(alice, path=str(workspace / "link"))
    assert project["path"] == os.path.realpath(workspace / "a")


@pytest.mark.gen_test
async def test_a_path_that_does_not_exist_is_a_validation_error(make_user, workspace):
    alice = await make_user("alice")
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(workspace / "nope")})
    _assert_validation(resp, "path")


@pytest.mark.gen_test
async def test_a_path_to_a_file_is_a_validation_error(make_user, workspace):
    alice = await make_user("alice")
    (workspace / "file.txt").write_text("x")
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(workspace / "file.txt")})
    _assert_validation(resp, "path")


@pytest.mark.gen_test
async def test_a_path_inside_the_workspace_root_works_for_a_user(make_user, workspace):
    alice = await make_user("alice")
    project = await _create(alice, path=str(workspace / "a"))
    assert project["path"] == os.path.realpath(workspace / "a")


@pytest.mark.gen_test
async def test_a_path_outside_the_workspace_roots_is_forbidden_for_a_user(make_user, tmp_path):
    alice = await make_user("alice")
    (tmp_path / "elsewhere").mkdir()
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(tmp_path / "elsewhere")})
    assert (resp.status, resp.error_code) == (403, "FORBIDDEN"), resp.body
    assert (await alice.api.get("/api/projects")).body["items"] == []


@pytest.mark.gen_test
async def test_a_sibling_sharing_the_roots_prefix_is_forbidden(make_user, workspace):
    alice = await make_user("alice")
    evil = workspace.parent / (workspace.name + "-evil")
    evil.mkdir()
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(evil)})
    assert (resp.status, resp.error_code) == (403, "FORBIDDEN"), resp.body


@pytest.mark.gen_test
async def test_a_symlink_escaping_the_workspace_root_is_forbidden(make_user, workspace, tmp_path):
    alice = await make_user("alice")
    (tmp_path / "outside").mkdir()
    (workspace / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(workspace / "escape")})
    assert (resp.status, resp.error_code) == (403, "FORBIDDEN"), resp.body


@pytest.mark.gen_test
async def test_dot_dot_escaping_the_workspace_root_is_forbidden(make_user, workspace):
    alice = await make_user("alice")
    resp = await alice.api.post("/api/projects", {"name": "D", "path": str(workspace / "..")})
    assert (resp.status, resp.error_code) == (403, "FORBIDDEN"), resp.body


@pytest.mark.gen_test
async def test_an_admin_may_use_any_existing_directory(make_user, tmp_path):
    root = await make_user("root", admin=True)
    (tmp_path / "elsewhere").mkdir()
    project = await _create(root, path=str(tmp_path / "elsewhere"))
    assert project["path"] == os.path.realpath(tmp_path / "elsewhere")


@pytest.mark.gen_test
async def test_an_admin_still_needs_an_existing_directory(make_user, tmp_path):
    root = await make_user("root", admin=True)
    resp = await root.api.post("/api/projects", {"name": "D", "path": str(tmp_path / "nope")})
    _assert_validation(resp, "path")


@pytest.mark.gen_test
async def test_patch_path_is_checked_like_create(make_user, workspace, tmp_path):
    alice = await make_user("alice")
    project = await _create(alice)
    url = f"/api/projects/{project['id']}"
    (tmp_path / "elsewhere").mkdir()
    outside = await alice.api.patch(url, {"path": str(tmp_path / "elsewhere")})
    assert (outside.status, outside.error_code) == (403, "FORBIDDEN"), outside.body
    inside = await alice.api.patch(url, {"path": str(workspace / "a" / ".." / "b")})
    assert inside.status == 200, inside.body
    assert inside.body["path"] == os.path.realpath(workspace / "b")


# --- roles ---


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.gen_test
async def test_a_non_member_cannot_tell_a_project_exists(make_user, method):
    alice = await make_user("alice")
    mallory = await make_user("mallory")
    project = await _create(alice)
    body = {"name": "Mine"} if method == "PATCH" else None
    theirs = await mallory.api.request(method, f"/api/projects/{project['id']}", json_body=body)
    missing = await mallory.api.request(method, f"/api/projects/{new_id('prj')}", json_body=body)
    assert (theirs.status, theirs.error_code) == (404, "NOT_FOUND")
    assert theirs.body == missing.body
    assert (await alice.api.get(f"/api/projects/{project['id']}")).body["name"] == "Demo"


@pytest.mark.gen_test
async def test_a_viewer_can_read_but_not_patch(make_user):
    alice = await make_user("alice")
    vic = await make_user("vic")
    project = await _create(alice)
    await _add(alice, project["id"], vic, "viewer")
    got = await vic.api.get(f"/api/projects/{project['id']}")
    assert (got.status, got.body["role"]) == (200, "viewer")
    listed = await vic.api.get("/api/projects")
    assert [(p["id"], p["role"]) for p in listed.body["items"]] == [(project["id"], "viewer")]
    patched = await vic.api.patch(f"/api/projects/{project['id']}", {"name": "Mine"})
    assert (patched.status, patched.error_code) == (403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_a_member_cannot_patch(make_user):
    alice = await make_user("alice")
    mia = await make_user("mia")
    project = await _create(alice)
    await _add(alice, project["id"], mia, "member")
    patched = await mia.api.patch(f"/api/projects/{project['id']}", {"name": "Mine"})
    assert (patched.status, patched.error_code) == (403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_an_admin_can_patch_but_not_delete(make_user):
    alice = await make_user("alice")
    ada = await make_user("ada")
    project = await _create(alice)
    await _add(alice, project["id"], ada, "admin")
    patched = await ada.api.patch(f"/api/projects/{project['id']}", {"name": "Renamed"})
    assert (patched.status, patched.body["name"]) == (200, "Renamed")
    deleted = await ada.api.delete(f"/api/projects/{project['id']}")
    assert (deleted.status, deleted.error_code) == (403, "FORBIDDEN")
    assert (await alice.api.get(f"/api/projects/{project['id']}")).status == 200


@pytest.mark.gen_test
async def test_only_an_owner_can_delete(make_user):
    alice = await make_user("alice")
    vic = await make_user("vic")
    mia = await make_user("mia")
    project = await _create(alice)
    await _add(alice, project["id"], vic, "viewer")
    await _add(alice, project["id"], mia, "member")
    for person in (vic, mia):
        resp = await person.api.delete(f"/api/projects/{project['id']}")
        assert (resp.status, resp.error_code) == (403, "FORBIDDEN")
    assert (await alice.api.delete(f"/api/projects/{project['id']}")).status == 204
    gone = await vic.api.get(f"/api/projects/{project['id']}")
    assert gone.status == 404
