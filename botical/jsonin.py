"""Parsing JSON from clients (REST bodies and WebSocket frames) into values we can store."""

from __future__ import annotations

import json
import re
from typing import Any

from botical.errors import ParseError, ValidationError

# Only these escapes can produce a NUL or a lone surrogate; raw ones fail json.loads already.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
UNSTORABLE = "Strings may not contain NUL characters or unpaired surrogates."


def loads(raw: str | bytes, what: str = "Body") -> Any:
    """Decode client JSON: PARSE_ERROR if it is not JSON, VALIDATION_ERROR if it holds text no
    database column can store (NUL, unpaired surrogates)."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParseError(f"{what} is not valid JSON") from None
    if _SUSPECT_ESCAPE.search(text) is not None and _has_unstorable_text(data):
        raise ValidationError(details={"_schema": [UNSTORABLE]})
    return data


def _has_unstorable_text(value: Any) -> bool:
    """Tell whether a parsed JSON value holds a NUL or an unpaired surrogate in any string."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(v) for v in value)
    return False
