"""Encoded reads of sessions, kept until the session next changes.

Every change to a session's stored state is followed by an event for that session (services
publish after committing), except the recorder's batched text writes, which call `changed`
themselves. `changed` drops the session's entries. A read that was on the database while the
session changed may hold either state, so it is not kept: `begin` takes a change clock before
the read and `store` keeps the result only if the session has not changed since.

All calls come from the event loop; nothing here is shared with the database threads.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable

from botical.jsonout import JSONText

ENTRY_OVERHEAD = 256  # bytes counted per entry besides its text, so tiny entries are bounded too
CHANGES_KEPT = 4096  # sessions whose last change time is remembered for reads in flight


class ReadCache:
    """An LRU of encoded results per session, bounded in bytes of memory (0 turns it off)."""

    def __init__(self, max_bytes: int, dropped: Callable[[str], None] = lambda s: None) -> None:
        self.max_bytes = max_bytes
        self._dropped = dropped  # told when a session's entries go (changed or evicted)
        self.size = 0
        self._entries: OrderedDict[str, dict[Hashable, JSONText]] = OrderedDict()
        self._clock = 0
        self._changed: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0  # latest change time pushed out of `_changed`

    def get(self, session_id: str, variant: Hashable) -> JSONText | None:
        entries = self._entries.get(session_id)
        if entries is None:
            return None
        self._entries.move_to_end(session_id)
        return entries.get(variant)

    def begin(self) -> int:
        """The change clock to pass to `store` for a read about to start."""
        return self._clock

    def store(self, session_id: str, variant: Hashable, text: JSONText, started: int) -> bool:
        """Keep a read made since `started`, unless its session changed meanwhile; whether
        the session has entries now."""
        if not self.max_bytes or self._changed.get(session_id, self._forgotten) > started:
            return session_id in self._entries
        cost = _cost(text)
        if cost > self.max_bytes:
            return session_id in self._entries
        entries = self._entries.setdefault(session_id, {})
        self._entries.move_to_end(session_id)
        old = entries.get(variant)
        if old is not None:
            self.size -= _cost(old)
        entries[variant] = text
        self.size += cost
        while self.size > self.max_bytes:
            evicted, dropped = self._entries.popitem(last=False)
            self.size -= sum(map(_cost, dropped.values()))
            self._dropped(evicted)
        return session_id in self._entries

    def changed(self, session_id: str) -> None:
        """The session's stored state changed: drop what is kept of it."""
        self._clock += 1
        self._changed[session_id] = self._clock
        self._changed.move_to_end(session_id)
        if len(self._changed) > CHANGES_KEPT:
            _, self._forgotten = self._changed.popitem(last=False)
        dropped = self._entries.pop(session_id, None)
        if dropped:
            self.size -= sum(map(_cost, dropped.values()))
            self._dropped(session_id)

    def clear(self) -> None:
        """Drop everything (sessions were removed in bulk, e.g. with their project)."""
        self._clock += 1
        self._forgotten = self._clock
        self._changed.clear()
        sessions = list(self._entries)
        self._entries.clear()
        self.size = 0
        for session_id in sessions:
            self._dropped(session_id)


def _cost(text: JSONText) -> int:
    """Memory an entry holds: the string object itself (1-4 bytes a character), plus the rest."""
    return sys.getsizeof(text) + ENTRY_OVERHEAD
