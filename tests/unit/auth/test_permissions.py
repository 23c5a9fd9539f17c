import asyncio
import dataclasses
import threading
import time

import jwt
import pytest

from botical.auth import permissions as permissions_module
from botical.auth.identity import MAX_CREDENTIAL_LENGTH, bearer_token
from botical.auth.permissions import MANAGE, OWN, READ, WRITE, Permissions, Role
from botical.db import now_ms
from botical.db.models import ProjectMember, Session
from botical.errors import Forbidden, NotFound, Unauthorized, ValidationError
from botical.ids import new_id

from .conftest import SECRET

ROLES = list(Role)


@pytest.fixture
def permissions(db):
    return Permissions(db)


@pytest.fixture
def login(users, tokens, authenticator):
    """`await login(name, exec=False)` -> the Identity of a new user, authenticated by a token."""

    async def make(name, exec=False):
        user = await users.create(name, can_execute_code=exec)
        return await authenticator.authenticate(tokens.issue(user["id"]).token)

    return make


@pytest.fixture
def owner(io_loop, login):
    return io_loop.run_sync(lambda: login("olivia"))


@pytest.fixture
def project_id(io_loop, projects, owner):
    return io_loop.run_sync(lambda: projects.create(owner, "Demo"))["id"]


@pytest.fixture
def member_with(projects, login, project_id):
    """`await member_with(role)` -> the Identity of a new user holding `role` in the project."""
    count = iter(range(100))

    async def make(role):
        identity = await login(f"user{next(count)}")
        await projects.add_member(Role.OWNER, project_id, {"userId": identity.user_id}, role)
        return identity

    return make


@pytest.fixture
def session_id(io_loop, db, project_id):
    sid = new_id("sess")
    io_loop.run_sync(lambda: db.run(Session.create, id=sid, project=project_id))
    return sid


def test_roles_are_ordered_viewer_member_admin_owner():
    assert Role.VIEWER < Role.MEMBER < Role.ADMIN < Role.OWNER
    assert (READ, WRITE, MANAGE, OWN) == (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER)


def test_role_parse_reads_lower_case_names():
    assert [Role.parse(role.label) for role in ROLES] == ROLES


def test_role_parse_rejects_an_unknown_name_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        Role.parse("superuser")
    assert list(caught.value.details) == ["role"]


@pytest.mark.gen_test
async def test_a_non_member_gets_not_found(permissions, login, project_id):
    stranger = await login("stranger")
    with pytest.raises(NotFound):
        await permissions.require(stranger, project_id, Role.VIEWER)
    assert await permissions.role(stranger, project_id) is None


@pytest.mark.gen_test
async def test_an_unknown_project_is_not_found(permissions, owner):
    with pytest.raises(NotFound):
        await permissions.require(owner, new_id("prj"), Role.VIEWER)


@pytest.mark.gen_test
@pytest.mark.parametrize(("role", "minimum"), [(r, m) for r in ROLES[:3] for m in ROLES if r < m])
async def test_a_member_below_the_minimum_gets_forbidden(
    permissions, member_with, project_id, role, minimum
):
    identity = await member_with(role)
    with pytest.raises(Forbidden):
        await permissions.require(identity, project_id, minimum)
    assert not await permissions.may(identity, project_id, minimum)


@pytest.mark.gen_test
@pytest.mark.parametrize(("role", "minimum"), [(r, m) for r in ROLES[:3] for m in ROLES if r >= m])
async def test_a_member_at_or_above_the_minimum_passes(
    permissions, member_with, project_id, role, minimum
):
    identity = await member_with(role)
    assert await permissions.require(identity, project_id, minimum) == role
    assert await permissions.may(identity, project_id, minimum)


@pytest.mark.gen_test
async def test_the_creator_of_a_project_is_its_owner(permissions, owner, project_id):
    assert await permissions.require(owner, project_id, Role.OWNER) == Role.OWNER


@pytest.mark.gen_test
async def test_a_project_scoped_key_sees_only_its_project(
    permissions, projects, apikeys, authenticator, owner, project_id
):
    other = (await projects.create(owner, "Other"))["id"]
    _, plaintext = await apikeys.create(owner.user_id, project_id=project_id)
    scoped = await authenticator.authenticate(plaintext)
    assert await permissions.require(scoped, project_id, Role.OWNER) == Role.OWNER
    with pytest.raises(NotFound):
        await permissions.require(scoped, other, Role.VIEWER)
    assert await permissions.require(owner, other, Role.OWNER) == Role.OWNER


@pytest.mark.gen_test
async def test_require_session_returns_the_sessions_project(
    permissions, member_with, project_id, session_id
):
    viewer = await member_with(Role.VIEWER)
    assert await permissions.require_session(viewer, session_id, Role.VIEWER) == project_id


@pytest.mark.gen_test
async def test_require_session_hides_the_session_from_a_non_member(permissions, login, session_id):
    with pytest.raises(NotFound, match="Session not found"):
        await permissions.require_session(await login("stranger"), session_id, Role.VIEWER)


@pytest.mark.gen_test
async def test_require_session_forbids_a_member_below_the_minimum(
    permissions, member_with, session_id
):
    viewer = await member_with(Role.VIEWER)
    with pytest.raises(Forbidden):
        await permissions.require_session(viewer, session_id, Role.MEMBER)


@pytest.mark.gen_test
async def test_require_session_of_an_unknown_session_is_not_found(permissions, owner):
    with pytest.raises(NotFound):
        await permissions.require_session(owner, new_id("sess"), Role.VIEWER)


@pytest.mark.gen_test
async def test_code_execution_needs_the_users_flag(login):
    Permissions.require_code_execution(await login("runner", exec=True))
    with pytest.raises(Forbidden):
        Permissions.require_code_execution(await login("reader", exec=False))


@pytest.mark.gen_test
async def test_authenticator_accepts_a_token(authenticator, tokens, alice):
    issued = tokens.issue(alice)
    identity = await authenticator.authenticate(issued.token)
    assert (identity.user_id, identity.name, identity.kind) == (alice, "alice", "token")
    assert (identity.credential_id, identity.expires_at) == (issued.jti, issued.expires_at)
    assert identity.project_scope is None


@pytest.mark.gen_test
async def test_authenticator_accepts_an_api_key(authenticator, apikeys, owner, project_id):
    view, plaintext = await apikeys.create(owner.user_id, project_id=project_id)
    identity = await authenticator.authenticate(plaintext)
    assert (identity.user_id, identity.kind, identity.credential_id) == (
        owner.user_id,
        "apikey",
        view["id"],
    )
    assert (identity.project_scope, identity.expires_at) == (project_id, None)


@pytest.mark.gen_test
@pytest.mark.parametrize("credential", [None, ""])
async def test_authenticator_rejects_a_missing_credential(authenticator, credential):
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(credential)


@pytest.mark.gen_test
async def test_authenticator_rejects_a_token_of_an_unknown_user(authenticator, tokens):
    with pytest.raises(Unauthorized, match="Unknown user"):
        await authenticator.authenticate(tokens.issue(new_id("usr")).token)


def padded_token(user_id, pad):
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + 60, "jti": new_id("tok"), "iss": "botical"}
    return jwt.encode({**claims, "pad": "x" * pad}, SECRET, algorithm="HS256")


@pytest.mark.gen_test
async def test_authenticator_rejects_an_over_long_credential_even_if_validly_signed(
    authenticator, alice
):
    short, long = padded_token(alice, 100), padded_token(alice, MAX_CREDENTIAL_LENGTH)
    assert (await authenticator.authenticate(short)).user_id == alice
    assert len(long) > MAX_CREDENTIAL_LENGTH
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(long)


@pytest.mark.gen_test
async def test_a_token_identity_is_no_longer_valid_once_revoked(authenticator, tokens, alice):
    issued = tokens.issue(alice)
    identity = await authenticator.authenticate(issued.token)
    assert await authenticator.still_valid(identity)
    await tokens.revoke(issued.token)
    assert not await authenticator.still_valid(identity)


@pytest.mark.gen_test
async def test_an_api_key_identity_is_no_longer_valid_once_revoked(authenticator, apikeys, alice):
    view, plaintext = await apikeys.create(alice)
    identity = await authenticator.authenticate(plaintext)
    assert await authenticator.still_valid(identity)
    await apikeys.revoke(view["id"])
    assert not await authenticator.still_valid(identity)


@pytest.mark.gen_test
async def test_a_token_identity_is_no_longer_valid_once_expired(authenticator, tokens, alice):
    identity = await authenticator.authenticate(tokens.issue(alice).token)
    expired = dataclasses.replace(identity, expires_at=now_ms() - 1)
    assert not await authenticator.still_valid(expired)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_reads_only_bearer_credentials(header, expected):
    assert bearer_token(header) == expected


# --- kept roles ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def kept(db, bus, clock):
    """Permissions that keep roles for 10 s, told of membership changes as in the server."""
    permissions = Permissions(db, role_ttl=10.0, clock=clock)
    for name in ("member.*", "project.deleted"):
        bus.subscribe(name, permissions.membership_changed)
    return permissions


def _set_role_directly(db, project_id, user_id, role):
    """Change a role the way another process sharing the database would: no event here."""
    return db.atomic(
        lambda: (
            ProjectMember.update(role=role.label)
            .where(ProjectMember.project == project_id, ProjectMember.user == user_id)
            .execute()
        )
    )


@pytest.mark.gen_test
async def test_a_kept_role_is_used_until_its_time_runs_out(
    db, kept, clock, member_with, project_id
):
    identity = await member_with(Role.MEMBER)
    assert await kept.require(identity, project_id, WRITE) == Role.MEMBER
    await _set_role_directly(db, project_id, identity.user_id, Role.VIEWER)
    assert await kept.role(identity, project_id) == Role.MEMBER  # kept: no query
    clock.now += 10.5
    assert await kept.role(identity, project_id) == Role.VIEWER
    with pytest.raises(Forbidden):
        await kept.require(identity, project_id, WRITE)


@pytest.mark.gen_test
async def test_without_a_time_roles_are_read_every_time(db, member_with, project_id):
    permissions = Permissions(db)  # role_ttl 0
    identity = await member_with(Role.MEMBER)
    assert await permissions.role(identity, project_id) == Role.MEMBER
    await _set_role_directly(db, project_id, identity.user_id, Role.VIEWER)
    assert await permissions.role(identity, project_id) == Role.VIEWER


@pytest.mark.gen_test
async def test_a_removed_member_loses_access_at_once(
    kept, projects, owner, member_with, project_id, session_id
):
    identity = await member_with(Role.MEMBER)
    assert await kept.require_session(identity, session_id, WRITE) == project_id
    await projects.remove_member(owner, Role.OWNER, project_id, identity.user_id)
    with pytest.raises(NotFound, match="Session not found"):
        await kept.require_session(identity, session_id, READ)
    with pytest.raises(NotFound):
        await kept.require(identity, project_id, READ)


@pytest.mark.gen_test
async def test_a_lowered_role_applies_at_once(kept, projects, member_with, project_id, session_id):
    identity = await member_with(Role.ADMIN)
    assert await kept.require(identity, project_id, MANAGE) == Role.ADMIN
    await projects.set_role(Role.OWNER, project_id, identity.user_id, Role.VIEWER)
    with pytest.raises(Forbidden):
        await kept.require(identity, project_id, WRITE)
    with pytest.raises(Forbidden):
        await kept.require_session(identity, session_id, WRITE)


@pytest.mark.gen_test
async def test_a_deleted_project_hides_its_sessions_at_once(
    kept, projects, owner, project_id, session_id
):
    assert await kept.require_session(owner, session_id, OWN) == project_id
    await projects.delete(owner, project_id)
    with pytest.raises(NotFound, match="Session not found"):
        await kept.require_session(owner, session_id, READ)


@pytest.mark.gen_test
async def test_a_role_read_while_membership_changed_is_not_kept(
    db, kept, member_with, project_id, monkeypatch
):
    identity = await member_with(Role.MEMBER)
    loop = asyncio.get_running_loop()
    on_database, release = asyncio.Event(), threading.Event()
    real = permissions_module._member_role

    def held_read(*args):  # runs on the database thread: signal, then wait for the test
        loop.call_soon_threadsafe(on_database.set)
        release.wait(5)
        return real(*args)

    monkeypatch.setattr(permissions_module, "_member_role", held_read)
    reading = asyncio.ensure_future(kept.role(identity, project_id))
    await asyncio.wait_for(on_database.wait(), 5)
    kept.membership_changed()  # while the read is on the database
    release.set()
    assert await reading == Role.MEMBER
    monkeypatch.setattr(permissions_module, "_member_role", real)
    await _set_role_directly(db, project_id, identity.user_id, Role.VIEWER)
    assert await kept.role(identity, project_id) == Role.VIEWER


@pytest.mark.gen_test
async def test_refusals_are_never_kept(db, kept, projects, login, project_id):
    stranger = await login("stranger")
    assert await kept.role(stranger, project_id) is None
    await db.atomic(
        lambda: ProjectMember.create(project=project_id, user=stranger.user_id, role="viewer")
    )
    assert await kept.role(stranger, project_id) == Role.VIEWER


@pytest.mark.gen_test
async def test_a_project_scoped_key_stays_confined_when_roles_are_kept(
    db, kept, projects, apikeys, authenticator, owner, project_id
):
    other = (await projects.create(owner, "Other"))["id"]
    other_session = new_id("sess")
    await db.run(Session.create, id=other_session, project=other)
    assert await kept.require_session(owner, other_session, READ) == other  # role now kept
    _, plaintext = await apikeys.create(owner.user_id, project_id=project_id)
    scoped = await authenticator.authenticate(plaintext)
    with pytest.raises(NotFound):
        await kept.require_session(scoped, other_session, READ)
    with pytest.raises(NotFound):
        await kept.require(scoped, other, READ)
