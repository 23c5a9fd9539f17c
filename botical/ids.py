"""Prefixed, time-sortable identifiers (`prj_01h...`), and their validation."""

from __future__ import annotations

import os
import re
import threading
import time

from botical.errors import ValidationError

PREFIXES = frozenset(
    {
        "prj",
        "sess",
        "msg",
        "part",
        "usr",
        "key",
        "tool",
        "todo",
        "appr",
        "run",
        "agt",
        "conn",
        "tok",
        "node",
    }
)
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_BODY = 26
_PATTERN = re.compile(rf"^([a-z]+)_([{_ALPHABET}]{{{_BODY}}})$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


_MAX_RAND = (1 << 80) - 1
_last = [0, 0]  # time and random part of the last id made in this process
_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """Return a new id: prefix, 48-bit millisecond time and 80 random bits, sortable by time."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis <= _last[0] and _last[1] < _MAX_RAND:
            # same millisecond as the last id: count up, so ids keep their creation order
            millis, rand = _last[0], _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last[:] = [millis, rand]
    return f"{prefix}_{_encode(millis, 10)}{_encode(rand, 16)}"


def is_id(value: object, prefix: str) -> bool:
    """Tell whether `value` is a well-formed id with this prefix."""
    if not isinstance(value, str):
        return False
    match = _PATTERN.fullmatch(value)  # not .match: `$` also matches before a final "\n"
    return match is not None and match.group(1) == prefix


def check_id(value: object, prefix: str, field: str = "id") -> str:
    """Return `value` if it is a well-formed `prefix_` id, else raise VALIDATION_ERROR."""
    if not is_id(value, prefix):
        raise ValidationError(details={field: [f"Not a valid {prefix}_ id."]})
    return value  # type: ignore[return-value]
