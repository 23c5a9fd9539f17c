"""The one parser of client JSON: nesting bounded without recursion, unstorable text refused."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botical import jsonin
from botical.errors import ParseError, ValidationError

STORABLE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | STORABLE
    | st.sampled_from(['"[', "]}", "\\", '\\"{', "\u20ac[", "["])  # brackets inside strings
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(STORABLE, inner, max_size=3),
    max_leaves=8,
)


def nest(value: Any, levels: list[bool]) -> Any:
    """`value` inside one array (True) or object (False) per level, outermost first."""
    for as_list in reversed(levels):
        value = [value] if as_list else {"k[": value}
    return value


def depth(value: Any) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


LEVELS = st.integers(0, 3 * jsonin.MAX_DEPTH).flatmap(
    lambda n: st.lists(st.booleans(), min_size=n, max_size=n)
)
DEEP = st.builds(nest, VALUES, LEVELS)
SETTINGS = settings(max_examples=300, derandomize=True, database=None, deadline=None)


@SETTINGS
@given(value=DEEP, ascii_only=st.booleans(), spaced=st.booleans())
def test_any_nesting_is_judged_like_the_parsed_value(value, ascii_only, spaced):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if spaced else None)
    if depth(value) > jsonin.MAX_DEPTH:
        with pytest.raises(ValidationError) as caught:
            jsonin.loads(text)
        assert caught.value.details == {"_schema": [jsonin.TOO_DEEP]}
        with pytest.raises(ValidationError):
            jsonin.check(value)
    else:
        assert jsonin.loads(text) == value
        jsonin.check(value)


@SETTINGS
@given(text=st.text(alphabet='[]{}"\\,:1 au', max_size=300))
def test_any_text_is_parsed_or_refused_with_a_client_error(text):
    with contextlib.suppress(ParseError, ValidationError):  # anything else fails the test
        jsonin.loads(text)


@pytest.mark.parametrize("levels", [65, 400, 100_000])
def test_a_lone_surrogate_deep_down_is_refused_without_recursion(levels):
    text = "[" * levels + '"\\ud800"' + "]" * levels
    with pytest.raises(ValidationError, match="Invalid parameters") as caught:
        jsonin.loads(text)
    assert caught.value.details == {"_schema": [jsonin.TOO_DEEP]}


def test_the_deepest_accepted_value_may_still_hold_no_unstorable_text():
    text = "[" * (jsonin.MAX_DEPTH - 1) + '{"a":"\\u0000"}' + "]" * (jsonin.MAX_DEPTH - 1)
    with pytest.raises(ValidationError) as caught:
        jsonin.loads(text)
    assert caught.value.details == {"_schema": [jsonin.UNSTORABLE]}


@pytest.mark.parametrize(
    "escape", ["\\n", "\\t", "\\b", "\\f", "\\r", "\\/", "\\\\", '\\"', "\\u005c"]
)
def test_no_escape_hides_the_brackets_after_its_string(escape):
    text = f'{{"k":"{escape}","v":' + "[" * 65 + "]" * 65 + "}"
    assert json.loads(text)  # valid JSON, 66 levels deep
    with pytest.raises(ValidationError):
        jsonin.loads(text)


def test_check_refuses_unstorable_text_in_keys():
    with pytest.raises(ValidationError) as caught:
        jsonin.check({"a\x00": 1})
    assert caught.value.details == {"_schema": [jsonin.UNSTORABLE]}
