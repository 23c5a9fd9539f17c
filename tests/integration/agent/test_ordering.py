"""Messages, parts and approvals are listed by id, so ids must keep their creation order."""

from __future__ import annotations

import time
from types import SimpleNamespace

from botical import ids


def test_ids_of_one_millisecond_keep_their_order(monkeypatch):
    now = time.time_ns()
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: now))
    made = [ids.new_id("msg") for _ in range(500)]
    assert sorted(made) == made
    assert len(set(made)) == 500
