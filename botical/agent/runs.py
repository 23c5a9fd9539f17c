"""Which session has a run, across every node that shares the database.

A run is a row of `runs`: the node that starts it inserts it (the session is a unique key, and
every claim holds the session's row lock, see `agent.queue`), renews its lease while the run
lives, and deletes it when the run ends, handing the session to a waiting message if there is
one. A node that dies stops renewing; once the lease has run out any node reaps the run: it
adopts the row, marks what the run left unfinished as interrupted, and ends it as its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import peewee as pw

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import RUN_OF_SESSION, Run
from botical.errors import Conflict
from botical.services.approvals import ApprovalService
from botical.services.messages import MessageService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadRun:
    id: str
    session_id: str
    project_id: str


class RunLeases:
    def __init__(self, db: Database, node: str, lease: float) -> None:
        self._db = db
        self.node = node
        self.lease_ms = int(lease * 1000)

    def insert(self, run_id: str, session_id: str, project_id: str) -> None:
        """Record a new run of the session on this node (inside a transaction that holds the
        session's lock); CONFLICT if it already has one."""
        try:
            with self._db.peewee.atomic():  # a savepoint: PostgreSQL aborts on the error
                Run.create(
                    id=run_id,
                    session=session_id,
                    project_id=project_id,
                    node=self.node,
                    lease_until=now_ms() + self.lease_ms,
                )
        except pw.IntegrityError:
            raise Conflict("A run is already in progress in this session") from None

    async def renew(self, run_ids: list[str]) -> None:
        """Extend the leases of this node's live runs."""
        if run_ids:
            until = now_ms() + self.lease_ms
            await self._db.atomic(
                lambda: Run.update(lease_until=until).where(Run.id.in_(run_ids)).execute()
            )

    async def owner(self, session_id: str) -> tuple[str, str] | None:
        """`(run id, node)` of the session's run, or None."""
        rows = await self._db.run(RUN_OF_SESSION.rows, session_id)
        return (rows[0].id, rows[0].node) if rows else None

    async def reap(self, everything: bool = False) -> list[DeadRun]:
        """Adopt the runs whose lease ran out (or every run, when no other node can exist: at
        the start of a single process) and return them, each exactly once across nodes: this
        node now owns their rows and ends them (`agent.queue.hand_over`)."""

        def take() -> list[DeadRun]:
            query = Run.select()
            if not everything:
                query = query.where(Run.lease_until < now_ms())
            dead = []
            until = now_ms() + self.lease_ms
            for row in query:
                # Conditional on the lease: a run renewed meanwhile is not taken, and of two
                # nodes reaping at once only one adopts the row.
                taken = Run.update(node=self.node, lease_until=until).where(
                    Run.id == row.id, Run.lease_until == row.lease_until
                )
                if taken.execute():
                    dead.append(DeadRun(row.id, row.session_id, row.project_id))
            return dead

        return await self._db.atomic(take)


class RunBook:
    """The runs of every node: claims and leases in the database, cancels and ends on the
    bus (cluster-wide), and the reaping of runs whose node died."""

    def __init__(
        self,
        leases: RunLeases,
        bus: EventBus,
        messages: MessageService,
        approvals: ApprovalService,
        single_node: bool,
    ) -> None:
        self.leases = leases
        self._bus = bus
        self._messages = messages
        self._approvals = approvals
        self._single_node = single_node  # then every run found at start is a dead one's
        self._ended: dict[str, asyncio.Future[None]] = {}
        self._adopted: list[DeadRun] = []
        self._task: asyncio.Task[None] | None = None
        bus.subscribe("run.ended", self._run_ended, cluster=True)

    def start(
        self,
        local: Callable[[], list[str]],
        cancel: Callable[[str, str], Any],
        after: Callable[[DeadRun], Awaitable[None]],
    ) -> None:
        """Keep this node's runs (`local()` gives their ids) alive and reap dead ones, each
        then ended by `after(run)` (first those found at start-up); `cancel(run_id, reason)`
        stops a local run that another node was asked to stop."""
        self._bus.subscribe(
            "run.cancel",
            lambda event: cancel(event.data["runId"], event.data.get("reason", "cancelled")),
            cluster=True,
        )
        self._task = asyncio.create_task(self._keep(local, after))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def recover(self) -> int:
        """At start-up: what dead runs left unfinished is interrupted; return how many
        answers. A single process owns every run it finds; a node of several only those
        whose lease ran out. The runs are ended (their sessions handed over) once started."""
        if not self._single_node:
            self._adopted = await self.reap()
            return len(self._adopted)
        self._adopted = await self.leases.reap(everything=True)
        await self._approvals.expire_orphans()
        return await self._messages.mark_interrupted()

    async def reap(self) -> list[DeadRun]:
        """Adopt the runs whose lease ran out and interrupt them, telling their clients; the
        caller then ends each (`after`)."""
        dead = await self.leases.reap()
        if dead:
            runs = {run.id: run.project_id for run in dead}
            await self._approvals.expire_orphans(runs)
            await self._messages.mark_interrupted(runs)
            for run in dead:
                log.warning(
                    "run %s of session %s lost its node; interrupted", run.id, run.session_id
                )
        return dead

    def ended(self, run_id: str, session_id: str, project_id: str, status: str = "idle") -> None:
        """A run ended (here or, reaped, on a dead node): tell clients and waiting cancels."""
        data = {"sessionId": session_id, "status": status, "runId": run_id}
        self._bus.publish(Event("agent.status_changed", data, project_id, session_id))
        self._bus.publish(Event("run.ended", {"runId": run_id}))  # internal: no channel

    def request_cancel(self, run_id: str, reason: str = "cancelled") -> None:
        """Ask whichever node runs `run_id` to stop it (`reason` becomes its finish reason)."""
        self._bus.publish(Event("run.cancel", {"runId": run_id, "reason": reason}))

    async def cancel_remote(
        self, session_id: str, timeout: float, run_id: str | None = None
    ) -> dict[str, Any]:
        """Ask the node running the session's run (only if it is `run_id`, when given) to stop
        it and wait (bounded) for its end."""
        owner = await self.leases.owner(session_id)
        if owner is None or run_id not in (None, owner[0]):
            return {"cancelled": False, "runId": None}
        run_id = owner[0]
        ended = self._ended.setdefault(run_id, asyncio.get_running_loop().create_future())
        try:
            self.request_cancel(run_id)
            await asyncio.wait({ended}, timeout=timeout)
        finally:
            self._ended.pop(run_id, None)
        return {"cancelled": True, "runId": run_id}

    def _run_ended(self, event: Event) -> None:
        future = self._ended.get(event.data["runId"])
        if future is not None and not future.done():
            future.set_result(None)

    async def _keep(
        self, local: Callable[[], list[str]], after: Callable[[DeadRun], Awaitable[None]]
    ) -> None:
        adopted, self._adopted = self._adopted, []
        for run in adopted:
            await self._end_reaped(run, after)
        pause = self.leases.lease_ms / 3000
        while True:
            await asyncio.sleep(pause)
            try:
                await self.leases.renew(local())
                for run in await self.reap():
                    await self._end_reaped(run, after)
            except Exception:  # the database may be away for a while: try again next time
                log.exception("renewing and reaping runs failed")

    async def _end_reaped(self, run: DeadRun, after: Callable[[DeadRun], Awaitable[None]]):
        try:
            await after(run)
        except Exception:  # its row stays adopted with a lease: reaped again once it runs out
            log.exception("ending reaped run %s failed", run.id)
