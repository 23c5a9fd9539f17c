"""Cursor paging over time-sortable ids: `{items, nextCursor}`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import peewee as pw

from botical.errors import ValidationError

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(last_id: str) -> str:
    """Opaque cursor for the page after `last_id`."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The id a cursor points after; VALIDATION_ERROR if it is not one of ours."""
    from botical.ids import is_id

    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not is_id(value, prefix):
        raise ValidationError(details={"cursor": ["Not a valid cursor."]})
    return value


def page_rows(
    query: pw.ModelSelect[Any],
    id_field: pw.Field,
    prefix: str,
    limit: int | None,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """Run one page of `query` ordered by id; return the rows and the next cursor (or None)."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(details={"limit": [f"Must be between 1 and {MAX_LIMIT}."]})
    if cursor:
        after = decode_cursor(cursor, prefix)
        query = query.where(id_field < after if newest_first else id_field > after)
    order = id_field.desc() if newest_first else id_field.asc()
    rows = list(query.order_by(order).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more else None


def page(
    query: pw.ModelSelect[Any],
    id_field: pw.Field,
    prefix: str,
    limit: int | None,
    cursor: str | None,
    to_dict: Callable[[Any], dict[str, Any]],
    newest_first: bool = False,
) -> dict[str, Any]:
    """One page of `query` as `{items, nextCursor}`."""
    rows, next_cursor = page_rows(query, id_field, prefix, limit, cursor, newest_first)
    return {"items": [to_dict(r) for r in rows], "nextCursor": next_cursor}
