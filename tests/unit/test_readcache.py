"""The session read cache: entries live until their session changes, reads that raced a change
are not kept, and memory stays within its bound."""

import sys

from botical.jsonout import JSONText
from botical.services import readcache
from botical.services.readcache import ENTRY_OVERHEAD, ReadCache


def text(n: int = 10, fill: str = "x") -> JSONText:
    return JSONText(f'"{fill * (n - 2)}"')


def cost(value: str) -> int:
    return sys.getsizeof(value) + ENTRY_OVERHEAD


def test_a_stored_read_is_returned_until_its_session_changes():
    cache = ReadCache(1 << 20)
    started = cache.begin()
    cache.store("s1", True, text(fill="a"), started)
    cache.store("s2", True, text(fill="b"), started)
    assert cache.get("s1", True) == text(fill="a")
    assert cache.get("s1", False) is None  # variants are kept apart
    cache.changed("s1")
    assert cache.get("s1", True) is None
    assert cache.get("s2", True) == text(fill="b")


def test_a_read_that_overlapped_a_change_of_its_session_is_not_kept():
    cache = ReadCache(1 << 20)
    started = cache.begin()
    cache.changed("s1")  # committed while the read was on the database
    cache.store("s1", True, text(), started)
    assert cache.get("s1", True) is None
    cache.store("s2", True, text(), started)  # another session's change does not matter
    assert cache.get("s2", True) == text()
    again = cache.begin()
    cache.store("s1", True, text(), again)
    assert cache.get("s1", True) == text()


def test_a_race_is_still_seen_after_the_change_itself_is_forgotten(monkeypatch):
    monkeypatch.setattr(readcache, "CHANGES_KEPT", 3)
    cache = ReadCache(1 << 20)
    started = cache.begin()
    for name in ("s1", "s2", "s3", "s4", "s5"):
        cache.changed(name)  # s1 and s2 drop out of what is remembered
    cache.store("s1", True, text(), started)
    cache.store("s9", True, text(), started)  # never changed, but unknown: kept out to be safe
    assert cache.get("s1", True) is None
    assert cache.get("s9", True) is None


def test_memory_stays_within_the_bound_least_recently_read_first():
    entry = 100
    cache = ReadCache(3 * cost(text(entry)))
    for name in ("s1", "s2", "s3"):
        cache.store(name, True, text(entry), cache.begin())
    assert cache.get("s1", True) is not None  # s1 is now the most recently read
    cache.store("s4", True, text(entry), cache.begin())
    assert cache.get("s2", True) is None
    assert [cache.get(n, True) is not None for n in ("s1", "s3", "s4")] == [True] * 3
    assert cache.size == 3 * cost(text(entry))
    cache.store("s5", True, text(cache.max_bytes), cache.begin())  # larger than the bound
    assert cache.get("s5", True) is None
    assert cache.size <= cache.max_bytes


def test_replacing_an_entry_and_dropping_a_session_keep_the_size_exact():
    cache = ReadCache(1 << 20)
    cache.store("s1", True, text(50), cache.begin())
    cache.store("s1", True, text(80), cache.begin())
    cache.store("s1", False, text(20), cache.begin())
    assert cache.size == cost(text(80)) + cost(text(20))
    cache.changed("s1")
    assert cache.size == 0


def test_clear_drops_everything_and_every_read_in_flight():
    cache = ReadCache(1 << 20)
    started = cache.begin()
    cache.store("s1", True, text(), started)
    cache.clear()
    assert (cache.get("s1", True), cache.size) == (None, 0)
    cache.store("s2", True, text(), started)
    assert cache.get("s2", True) is None


def test_a_zero_bound_keeps_nothing():
    cache = ReadCache(0)
    cache.store("s1", True, text(), cache.begin())
    assert cache.get("s1", True) is None


def test_the_bound_counts_memory_not_characters():
    ascii_text, wide = JSONText('"' + "a" * 1000 + '"'), JSONText('"' + "\U0001f600" * 1000 + '"')
    cache = ReadCache(3 * cost(ascii_text))
    cache.store("s1", True, ascii_text, cache.begin())
    cache.store("s2", True, wide, cache.begin())  # 4 bytes a character: alone above the bound
    assert cache.get("s1", True) is not None
    assert cache.get("s2", True) is None
