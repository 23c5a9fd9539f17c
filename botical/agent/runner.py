"""Runs: one background run per session across every node, started by a message or a retry,
cancelled on request; what a run does is `agent.steps`. Every change is a bus event."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botical.agent.runs import RunBook
from botical.agent.steps import Run, Steps
from botical.auth.identity import Identity
from botical.errors import Conflict
from botical.ids import new_id
from botical.services.agents import AgentConfig
from botical.tools.base import ToolFailure

log = logging.getLogger(__name__)
CANCEL_WAIT = 10.0


class Runner:
    """Starts, cancels and retries agent runs; at most one per session."""

    def __init__(self, steps: Steps, book: RunBook) -> None:
        self.steps = steps
        self.book = book
        self.messages = steps.messages
        self.sessions = steps.sessions
        self.catalog = steps.catalog
        self._runs: dict[str, Run] = {}
        self._ending: set[asyncio.Future[None]] = set()
        self._stopping = False

    # -- public API -------------------------------------------------------------------------

    def start(self) -> None:
        """Keep this node's runs' leases, reap dead nodes' runs, obey remote cancels."""
        self.book.start(lambda: [run.id for run in self._runs.values()], self._cancel_run)

    def live_text(self, session_id: str) -> dict[str, str]:
        """The text streamed so far into the session's open part, by part id (or nothing)."""
        run = self._runs.get(session_id)
        return run.recorder.live_text() if run and run.recorder else {}

    async def send(
        self,
        identity: Identity,
        project_id: str,
        session_id: str,
        content: str,
        agent: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Store the user's message and start a run answering it; return `{message, runId}`."""
        if idempotency_key:
            found = await self.messages.find_by_key(session_id, idempotency_key)
            if found:
                return {"message": found, "runId": found["runId"]}
        run = await self._claim(identity, project_id, session_id)
        try:
            session = await self.sessions.get(session_id)
            config, model_ref = await self.catalog.resolve(project_id, session, agent, model)
            message, created = await self.messages.create_user_message(
                session_id,
                identity.user_id,
                content,
                run.id,
                config.name,
                model_ref,
                idempotency_key,
            )
            if created and not session["title"]:
                await self.sessions.title_from(session_id, content)
        except BaseException:
            await self._release(run)
            raise
        if not created:
            await self._release(run)
            return {"message": message, "runId": message["runId"]}
        self._launch(run, message["id"], config, model_ref)
        return {"message": message, "runId": run.id}

    async def retry(
        self, identity: Identity, project_id: str, session_id: str, message_id: str | None = None
    ) -> dict[str, Any]:
        """Answer a user message again (the last one by default); later messages are superseded."""
        run = await self._claim(identity, project_id, session_id)
        try:
            user_message = await self.messages.retry_point(session_id, message_id, project_id)
            session = await self.sessions.get(session_id)
            config, model_ref = await self.catalog.resolve(
                project_id, session, user_message["agent"], user_message["model"]
            )
        except BaseException:
            await self._release(run)
            raise
        self._launch(run, user_message["id"], config, model_ref)
        return {"runId": run.id}

    async def cancel(self, session_id: str, status: str = "cancelled") -> dict[str, Any]:
        """Stop the session's run, wherever it runs, and wait (bounded) until it has recorded
        that it stopped."""
        run = self._runs.get(session_id)
        if run is None or run.task is None:
            return await self.book.cancel_remote(session_id, CANCEL_WAIT)
        run.stop_status = status
        run.task.cancel()
        await asyncio.wait({run.task}, timeout=CANCEL_WAIT)
        return {"cancelled": True, "runId": run.id}

    def _cancel_run(self, run_id: str) -> None:
        """Another node asked to cancel a run: stop it if it runs here."""
        for run in self._runs.values():
            if run.id == run_id and run.task is not None:
                run.task.cancel()

    async def run_to_end(
        self, identity: Identity, project_id: str, session_id: str, content: str
    ) -> dict[str, Any]:
        """Send a message and wait for the whole answer (sub-agents); return the answer."""
        await self.send(identity, project_id, session_id, content)
        run = self._runs[session_id]
        assert run.task is not None
        await run.task  # cancelling the caller cancels this run too...
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # ...which records it and returns normally
            raise asyncio.CancelledError
        if run.message_id is None:
            raise ToolFailure("The sub-agent did not answer")
        return await self.messages.get(run.message_id)

    async def shutdown(self) -> None:
        """Stop every run of this node (their messages are marked interrupted) and start no
        new one."""
        self._stopping = True
        await self.book.stop()
        runs = list(self._runs)
        await asyncio.gather(*(self.cancel(s, "interrupted") for s in runs))

    async def recover(self) -> int:
        """At start-up: mark what dead runs left unfinished as interrupted."""
        return await self.book.recover()

    # -- internals --------------------------------------------------------------------------

    async def _claim(self, identity: Identity, project_id: str, session_id: str) -> Run:
        if self._stopping:
            raise Conflict("The server is shutting down")
        if session_id in self._runs:
            raise Conflict("A run is already in progress in this session")
        run = Run(new_id("run"), session_id, project_id, identity)
        self._runs[session_id] = run  # first, so a second send here conflicts at once
        try:
            await self.book.leases.claim(run.id, session_id, project_id)  # and on any node
        except BaseException:
            self._runs.pop(session_id, None)
            raise
        return run

    async def _release(self, run: Run) -> None:
        if self._runs.get(run.session_id) is run:
            del self._runs[run.session_id]
        await self.book.leases.release(run.id)

    def _launch(self, run: Run, user_message_id: str, config: AgentConfig, model_ref: str):
        run.task = asyncio.create_task(self._guarded(run, user_message_id, config, model_ref))
        run.task.add_done_callback(lambda task: self._never_started(task, run))

    def _never_started(self, task: asyncio.Task[None], run: Run) -> None:
        """A task cancelled before its first step never runs `_guarded`'s cleanup."""
        if self._runs.get(run.session_id) is run:
            ending = asyncio.ensure_future(self._end(run, "idle"))
            self._ending.add(ending)
            ending.add_done_callback(self._ending.discard)

    async def _end(self, run: Run, status: str) -> None:
        await self._release(run)
        self.book.ended(run.id, run.session_id, run.project_id, status)

    async def _guarded(self, run: Run, user_message_id: str, config: AgentConfig, ref: str):
        status = "error"
        try:
            status = await self.steps.execute(run, user_message_id, config, ref)
        except Exception:
            log.exception("run %s failed before it could record an answer", run.id)
        finally:
            await asyncio.shield(self._end(run, status))
