import base64
import json
import stat
import time

import jwt
import pytest

from botical.auth.tokens import REQUIRED_CLAIMS, TokenService, load_or_create_secret
from botical.errors import ConfigError, Unauthorized
from botical.ids import new_id

from .conftest import MAX_TTL, SECRET, TTL

DROP = object()


def claims(**changes):
    """Valid claims for a token of a made-up user, with `changes` applied (DROP removes one)."""
    now = int(time.time())
    base = {
        "sub": new_id("usr"),
        "iat": now,
        "exp": now + 600,
        "jti": new_id("tok"),
        "iss": "botical",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def sign(payload, secret=SECRET, algorithm="HS256"):
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def rejected(tokens, token):
    with pytest.raises(Unauthorized) as caught:
        await tokens.verify(token)
    return caught.value


@pytest.mark.gen_test
async def test_an_issued_token_verifies_to_its_claims(tokens):
    user_id = new_id("usr")
    issued = tokens.issue(user_id)
    got = await tokens.verify(issued.token)
    assert (got["sub"], got["jti"], got["iss"]) == (user_id, issued.jti, "botical")
    assert got["exp"] - got["iat"] == TTL
    assert issued.expires_at == got["exp"] * 1000


@pytest.mark.gen_test
async def test_a_hand_made_token_with_valid_claims_verifies(tokens):
    made = claims()
    assert (await tokens.verify(sign(made)))["jti"] == made["jti"]


@pytest.mark.gen_test
async def test_a_token_signed_with_another_secret_is_rejected(db, tokens):
    other = TokenService("o" * 64, db, TTL, MAX_TTL)
    await rejected(tokens, other.issue(new_id("usr")).token)


@pytest.mark.gen_test
async def test_a_token_with_alg_none_is_rejected(tokens):
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    await rejected(tokens, unsigned)


@pytest.mark.gen_test
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_a_token_signed_with_another_algorithm_is_rejected(tokens, algorithm):
    await rejected(tokens, sign(claims(), algorithm=algorithm))


@pytest.mark.gen_test
async def test_an_expired_token_is_rejected_as_expired(tokens):
    now = int(time.time())
    error = await rejected(tokens, sign(claims(iat=now - 120, exp=now - 60)))
    assert error.message == "Token expired"


@pytest.mark.gen_test
async def test_a_revoked_token_is_rejected(tokens, alice):
    issued = tokens.issue(alice)
    assert await tokens.revoke(issued.token) == issued.jti
    error = await rejected(tokens, issued.token)
    assert error.message == "Token revoked"


@pytest.mark.gen_test
async def test_revoking_one_token_leaves_the_others_valid(tokens, alice):
    revoked, kept = tokens.issue(alice), tokens.issue(alice)
    await tokens.revoke(revoked.token)
    assert (await tokens.verify(kept.token))["jti"] == kept.jti
    assert not await tokens.is_revoked(kept.jti)


@pytest.mark.gen_test
async def test_revoking_a_token_twice_is_harmless(tokens, alice):
    issued = tokens.issue(alice)
    await tokens.revoke(issued.token)
    await tokens.revoke(issued.token)
    assert await tokens.is_revoked(issued.jti)


@pytest.mark.gen_test
@pytest.mark.parametrize("token", ["garbage", "", "a.b", "a.b.c", "...", "Bearer x.y.z"])
async def test_a_malformed_token_is_rejected(tokens, token):
    await rejected(tokens, token)


@pytest.mark.gen_test
async def test_a_token_with_two_of_its_three_segments_is_rejected(tokens):
    header, payload, _ = tokens.issue(new_id("usr")).token.split(".")
    await rejected(tokens, f"{header}.{payload}")


@pytest.mark.gen_test
@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_a_token_missing_a_required_claim_is_rejected(tokens, claim):
    await rejected(tokens, sign(claims(**{claim: DROP})))


def test_the_required_claims_are_the_designed_ones():
    assert set(REQUIRED_CLAIMS) == {"exp", "iat", "sub", "jti", "iss"}


@pytest.mark.gen_test
async def test_a_token_from_another_issuer_is_rejected(tokens):
    await rejected(tokens, sign(claims(iss="someone-else")))


@pytest.mark.gen_test
@pytest.mark.parametrize("sub", ["admin", new_id("prj"), "usr_../../etc/passwd", 42])
async def test_a_token_whose_subject_is_not_a_user_id_is_rejected(tokens, sub):
    await rejected(tokens, sign(claims(sub=sub)))


def test_ttl_up_to_the_maximum_is_accepted(tokens):
    issued = tokens.issue(new_id("usr"), ttl=MAX_TTL)
    assert issued.expires_at - time.time() * 1000 > (MAX_TTL - 60) * 1000


@pytest.mark.parametrize("ttl", [MAX_TTL + 1, 0, -1])
def test_ttl_outside_one_second_to_the_maximum_is_refused(tokens, ttl):
    with pytest.raises(ValueError):
        tokens.issue(new_id("usr"), ttl=ttl)


def test_a_secret_shorter_than_32_bytes_is_refused(db):
    with pytest.raises(ConfigError):
        TokenService("x" * 31, db, TTL, MAX_TTL)


def test_a_secret_of_32_bytes_is_accepted(db):
    TokenService("x" * 32, db, TTL, MAX_TTL).issue(new_id("usr"))


def test_a_configured_secret_is_used_and_no_file_is_written(tmp_path):
    assert load_or_create_secret(SECRET, tmp_path) == SECRET
    assert not (tmp_path / "secret").exists()


def test_the_secret_file_is_created_with_mode_0600(tmp_path):
    secret = load_or_create_secret("", tmp_path)
    assert len(secret.encode()) >= 32
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


def test_the_secret_file_is_reused_on_the_next_start(tmp_path):
    first = load_or_create_secret("", tmp_path)
    assert load_or_create_secret("", tmp_path) == first


def test_a_secret_file_readable_by_others_is_refused(tmp_path):
    load_or_create_secret("", tmp_path)
    (tmp_path / "secret").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_secret("", tmp_path)
