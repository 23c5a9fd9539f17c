import hashlib

import pytest

from botical.auth.apikeys import ApiKeyService
from botical.auth.identity import Identity
from botical.db import now_ms
from botical.db.models import ApiKey
from botical.errors import NotFound, Unauthorized
from botical.ids import new_id


@pytest.fixture
def project_id(io_loop, projects, alice):
    owner = Identity(alice, "alice", False, False, "token", "tok")
    return io_loop.run_sync(lambda: projects.create(owner, "Demo"))["id"]


async def stored_row(db, key_id):
    return await db.run(lambda: ApiKey.select().where(ApiKey.id == key_id).dicts().get())


async def set_last_used(db, key_id, value):
    await db.run(lambda: ApiKey.update(last_used_at=value).where(ApiKey.id == key_id).execute())


@pytest.mark.gen_test
async def test_a_new_key_starts_with_bk(apikeys, alice):
    _, plaintext = await apikeys.create(alice)
    assert plaintext.startswith("bk_")
    assert len(plaintext) > 40


@pytest.mark.gen_test
async def test_only_the_sha256_of_the_key_is_stored(db, apikeys, alice):
    view, plaintext = await apikeys.create(alice, name="laptop")
    row = await stored_row(db, view["id"])
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert not any(plaintext in str(value) for value in row.values())


@pytest.mark.gen_test
async def test_verify_returns_the_user_and_no_project_for_an_unscoped_key(apikeys, alice):
    view, plaintext = await apikeys.create(alice)
    verified = await apikeys.verify(plaintext)
    assert (verified.key_id, verified.user_id, verified.project_id) == (view["id"], alice, None)


@pytest.mark.gen_test
async def test_verify_returns_the_project_scope_of_a_scoped_key(apikeys, alice, project_id):
    _, plaintext = await apikeys.create(alice, project_id=project_id)
    assert (await apikeys.verify(plaintext)).project_id == project_id


@pytest.mark.gen_test
async def test_an_altered_key_is_rejected(apikeys, alice):
    _, plaintext = await apikeys.create(alice)
    altered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    with pytest.raises(Unauthorized):
        await apikeys.verify(altered)


@pytest.mark.gen_test
@pytest.mark.parametrize("plaintext", ["bk_unknown", "not-a-key", "", "bk_" + "a" * 200])
async def test_an_unknown_key_is_rejected(apikeys, alice, plaintext):
    with pytest.raises(Unauthorized):
        await apikeys.verify(plaintext)


@pytest.mark.gen_test
async def test_a_revoked_key_is_rejected(apikeys, alice):
    view, plaintext = await apikeys.create(alice)
    await apikeys.revoke(view["id"])
    with pytest.raises(Unauthorized):
        await apikeys.verify(plaintext)
    assert not await apikeys.is_active(view["id"])


@pytest.mark.gen_test
async def test_revoking_twice_keeps_the_first_revocation_time(apikeys, alice):
    view, _ = await apikeys.create(alice)
    first = await apikeys.revoke(view["id"])
    second = await apikeys.revoke(view["id"])
    assert first["revokedAt"] is not None
    assert second["revokedAt"] == first["revokedAt"]


@pytest.mark.gen_test
async def test_only_the_owner_may_revoke_a_key(apikeys, users, alice):
    bob = (await users.create("bob"))["id"]
    view, plaintext = await apikeys.create(alice)
    with pytest.raises(NotFound):
        await apikeys.revoke(view["id"], user_id=bob)
    assert (await apikeys.verify(plaintext)).user_id == alice


@pytest.mark.gen_test
async def test_revoking_an_unknown_key_is_not_found(apikeys):
    with pytest.raises(NotFound):
        await apikeys.revoke(new_id("key"))


@pytest.mark.gen_test
async def test_use_records_last_used_at(db, apikeys, alice):
    view, plaintext = await apikeys.create(alice)
    assert view["lastUsedAt"] is None
    before = now_ms()
    await apikeys.verify(plaintext)
    assert (await stored_row(db, view["id"]))["last_used_at"] >= before


@pytest.mark.gen_test
async def test_with_touch_interval_zero_every_use_updates_last_used_at(db, apikeys, alice):
    view, plaintext = await apikeys.create(alice)
    await set_last_used(db, view["id"], now_ms() - 10_000)
    before = now_ms()
    await apikeys.verify(plaintext)
    assert (await stored_row(db, view["id"]))["last_used_at"] >= before


@pytest.mark.gen_test
async def test_with_a_long_touch_interval_a_recent_use_is_not_rewritten(db, alice):
    apikeys = ApiKeyService(db, touch_interval=3600)
    view, plaintext = await apikeys.create(alice)
    recent = now_ms() - 10_000
    await set_last_used(db, view["id"], recent)
    await apikeys.verify(plaintext)
    await apikeys.verify(plaintext)
    assert (await stored_row(db, view["id"]))["last_used_at"] == recent


@pytest.mark.gen_test
async def test_a_key_for_an_unknown_user_is_not_found(apikeys):
    with pytest.raises(NotFound):
        await apikeys.create(new_id("usr"))


@pytest.mark.gen_test
async def test_a_key_for_an_unknown_project_is_not_found(apikeys, alice):
    with pytest.raises(NotFound):
        await apikeys.create(alice, project_id=new_id("prj"))


@pytest.mark.gen_test
async def test_the_public_view_never_holds_the_key_or_its_hash(apikeys, alice, project_id):
    view, plaintext = await apikeys.create(alice, project_id=project_id, name="ci")
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    views = [view, *await apikeys.list_for(alice), await apikeys.revoke(view["id"])]
    for shown in views:
        assert set(shown) == {
            "id",
            "name",
            "hint",
            "userId",
            "projectId",
            "createdAt",
            "lastUsedAt",
            "revokedAt",
        }
        assert not any(plaintext in str(v) or digest in str(v) for v in shown.values())
        assert shown["hint"] == plaintext[:7]
