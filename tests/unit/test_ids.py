import time
from types import SimpleNamespace

import pytest

from botical import ids
from botical.errors import ValidationError
from botical.ids import PREFIXES, check_id, is_id, new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
DESIGNED_PREFIXES = ("prj", "sess", "msg", "part", "usr", "key", "tool", "todo", "appr", "run")


def decode_millis(value: str) -> int:
    body = value.split("_", 1)[1]
    millis = 0
    for char in body[:10]:
        millis = millis * 32 + CROCKFORD.index(char)
    return millis


def test_every_prefix_named_in_the_design_is_known():
    assert set(DESIGNED_PREFIXES) <= PREFIXES


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_new_id_is_prefix_underscore_and_26_crockford_characters(prefix):
    value = new_id(prefix)
    head, body = value.split("_")
    assert head == prefix
    assert len(body) == 26
    assert set(body) <= set(CROCKFORD)
    assert is_id(value, prefix)


def test_new_id_refuses_an_unknown_prefix():
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("nope")


def test_new_id_starts_with_the_current_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = new_id("msg")
    after = time.time_ns() // 1_000_000
    assert before <= decode_millis(value) <= after


def test_ids_made_later_sort_after_ids_made_earlier(monkeypatch):
    clock = iter(range(1_700_000_000_000, 1_700_000_000_200))
    fake_time = SimpleNamespace(time_ns=lambda: next(clock) * 1_000_000)
    monkeypatch.setattr(ids, "time", fake_time)
    made = [new_id("msg") for _ in range(200)]
    assert sorted(made) == made


def test_new_ids_are_unique():
    made = {new_id("part") for _ in range(10_000)}
    assert len(made) == 10_000


BODY = "01hxyzabcdefghjkmnpqrstvwx"  # 26 characters of the alphabet


def test_the_sample_body_makes_a_valid_id():
    assert is_id(f"prj_{BODY}", "prj")


@pytest.mark.parametrize(
    "value",
    [
        "../../etc/passwd",
        "prj_../../../../etc/passwd00",
        f"prj_{BODY[:20]}/../x",
        f"PRJ_{BODY}",
        f"prj_{BODY.upper()}",
        f"prj_{BODY[:-1]}",
        f"prj_{BODY}a",
        f"prj_{BODY[:-1]}i",
        f"prj_{BODY[:-1]}u",
        f"prj-{BODY}",
        f"prj_{BODY}\n",
        f" prj_{BODY}",
        f"sess_{BODY}",
        "prj_",
        "",
        None,
        42,
    ],
)
def test_is_id_rejects_malformed_values(value):
    assert not is_id(value, "prj")


def test_is_id_accepts_a_well_formed_id_of_that_prefix_only():
    value = new_id("sess")
    assert is_id(value, "sess")
    assert not is_id(value, "prj")


def test_check_id_returns_a_valid_id_unchanged():
    value = new_id("usr")
    assert check_id(value, "usr") == value


def test_check_id_raises_validation_error_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        check_id("../secret", "prj", field="projectId")
    assert caught.value.code == "VALIDATION_ERROR"
    assert list(caught.value.details) == ["projectId"]
    assert caught.value.to_payload()["details"] == {"projectId": ["Not a valid prj_ id."]}


def test_check_id_rejects_an_id_with_another_prefix():
    with pytest.raises(ValidationError):
        check_id(new_id("sess"), "prj")
