"""Sends racing for one session are decided once in the database: on PostgreSQL they run at
the same time on several connections (the executor's pool), and the session row's lock
serializes them; whichever node they come from, exactly one claims the run."""

from __future__ import annotations

import asyncio

import pytest

from botical.agent.queue import SendRequest, admit, hand_over
from botical.agent.runs import RunLeases
from botical.db.models import Message, Project, Run, Session, User
from botical.errors import Conflict
from botical.ids import new_id

RACERS = 8


def _session() -> str:
    user = User.create(id=new_id("usr"), name="alice")
    project = Project.create(id=new_id("prj"), name="P", owner=user.id)
    return Session.create(id=new_id("sess"), project=project.id, created_by=user.id).id


def _request(session_id: str, user_id: str, if_busy: str, n: int) -> SendRequest:
    project_id = Session.get_by_id(session_id).project_id
    return SendRequest(
        session_id, project_id, user_id, f"m{n}", new_id("run"), "default", "echo", None, if_busy
    )


async def _race(db, leases, requests):
    return await asyncio.gather(
        *(db.atomic(admit, leases, r) for r in requests), return_exceptions=True
    )


@pytest.mark.parametrize("if_busy", ["queue", "interrupt"])
@pytest.mark.gen_test
async def test_of_many_sends_at_once_one_runs_and_the_others_wait(db, if_busy):
    session_id = await db.atomic(_session)
    user_id = await db.run(lambda: User.get().id)
    requests = [await db.run(_request, session_id, user_id, if_busy, n) for n in range(RACERS)]
    nodes = [RunLeases(db, f"node_{n}", 15.0) for n in range(2)]  # two nodes, one database
    admitted = await asyncio.gather(
        *(db.atomic(admit, nodes[n % 2], r) for n, r in enumerate(requests))
    )
    started = [a for a in admitted if a.started]
    assert len(started) == 1
    assert all(a.message["status"] == "queued" for a in admitted if not a.started)
    runs = await db.run(lambda: [r.id for r in Run.select()])
    assert runs == [started[0].message["runId"]]
    stops = {a.stop for a in admitted if not a.started}
    assert stops == ({runs[0]} if if_busy == "interrupt" else {None})


@pytest.mark.gen_test
async def test_of_many_rejecting_sends_at_once_one_runs_and_the_others_conflict(db):
    session_id = await db.atomic(_session)
    user_id = await db.run(lambda: User.get().id)
    requests = [await db.run(_request, session_id, user_id, "reject", n) for n in range(RACERS)]
    outcomes = await _race(db, RunLeases(db, "node_a", 15.0), requests)
    assert sum(1 for o in outcomes if isinstance(o, Conflict)) == RACERS - 1
    assert await db.run(lambda: Message.select().count()) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_send_racing_the_end_of_the_run_is_neither_lost_nor_run_twice(db):
    leases = RunLeases(db, "node_a", 15.0)
    session_id = await db.atomic(_session)
    user_id = await db.run(lambda: User.get().id)
    first = await db.atomic(admit, leases, await db.run(_request, session_id, user_id, "queue", 0))
    for n in range(1, 20):
        late = await db.run(_request, session_id, user_id, "queue", n)
        ended, sent = await asyncio.gather(
            db.atomic(hand_over, leases, first.message["runId"], session_id),
            db.atomic(admit, leases, late),
        )
        # either the send found the session free and claimed it, or it queued and the end
        # handed the session to it: in both cases its run is the session's run now
        runs = await db.run(lambda: [r.id for r in Run.select()])
        assert runs == [late.run_id], n
        started = sent.started or (
            ended.start is not None and ended.start["id"] == sent.message["id"]
        )
        assert started, n
        first = sent
