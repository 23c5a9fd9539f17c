"""Parsing JSON from clients (REST bodies and WebSocket frames) into values we can store.

Every check here is iterative: input of any shape is answered with an error, never with a
RecursionError. Arrays and objects may nest at most MAX_DEPTH levels (the outermost value is
level 1), which is checked on the text before it is parsed.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

from botical.errors import ParseError, ValidationError

MAX_DEPTH = 64
TOO_DEEP = f"Arrays and objects may nest at most {MAX_DEPTH} levels deep."
UNSTORABLE = "Strings may not contain NUL characters or unpaired surrogates."
# Only these escapes can produce a NUL or a lone surrogate; raw ones fail json.loads already.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# The scan works on bytes, where deleting and mapping characters are single C calls. Kept:
# brackets, quotes, backslashes and the characters a valid escape puts after a backslash (so
# `\"` stays an escaped quote and `\u0022` cannot become one).
_KEPT = b'[]{}"\\bfnrtu/'
_SKIPPED = bytes(b for b in range(256) if b not in _KEPT)
_OTHER_THAN_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
# A string, or an unterminated one up to the end: every match attempt succeeds at its first
# quote, in one pass, so no text makes this scan slower than linear.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


def loads(raw: str | bytes, what: str = "Body") -> Any:
    """Decode client JSON: PARSE_ERROR if it is not JSON, VALIDATION_ERROR if it nests deeper
    than MAX_DEPTH or holds text no database column can store (NUL, unpaired surrogates)."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise ParseError(f"{what} is not valid JSON") from None
    if _nests_too_deep(text):
        raise ValidationError(details={"_schema": [TOO_DEEP]})
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ParseError(f"{what} is not valid JSON") from None
    if _SUSPECT_ESCAPE.search(text) is not None and _has_unstorable_text(data):
        raise ValidationError(details={"_schema": [UNSTORABLE]})
    return data


def check(value: Any) -> None:
    """VALIDATION_ERROR if a value parsed elsewhere (a model's tool-call arguments) nests deeper
    than MAX_DEPTH or holds unstorable text."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValidationError(details={"_schema": [TOO_DEEP]})
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and _unstorable(item):
            raise ValidationError(details={"_schema": [UNSTORABLE]})


def _nests_too_deep(text: str) -> bool:
    """Whether arrays and objects in JSON text nest deeper than MAX_DEPTH, counting brackets
    outside strings as steps up and down (on malformed text the answer may be either; such text
    is refused all the same)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # nearly every frame and body: nothing to scan
    reduced = text.encode("utf-8", "surrogatepass").translate(None, _SKIPPED)
    brackets = _STRING.sub(b"", reduced).translate(_STEPS, _OTHER_THAN_BRACKETS)
    return max(accumulate(array("b", brackets)), default=0) > MAX_DEPTH


def _has_unstorable_text(value: Any) -> bool:
    """Tell whether a parsed JSON value holds a NUL or an unpaired surrogate in any string."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False
