"""JSON out: the one compact encoder, and text already encoded that writers splice in as is."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 text kept as is (every response and event goes through here)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class JSONText(str):
    """A value already encoded as JSON (a cached read): responses embed it without encoding
    it again. Only code that produced it with `dumps` may make one."""

    __slots__ = ()
