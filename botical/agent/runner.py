"""Runs: one background run per session across every node, started by a message, an edit or a
retry, cancelled on request; what a run does is `agent.steps`, how a busy session takes a
message and who runs what waits is `agent.queue`. Every change is a bus event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import Any

from botical.agent import queue
from botical.agent.runs import DeadRun, RunBook
from botical.agent.steps import Run, Steps
from botical.auth.identity import Identity
from botical.errors import Conflict, ValidationError
from botical.ids import new_id
from botical.services.agents import AgentConfig
from botical.services.branches import edit_point, retry_point, retry_question
from botical.services.messages import insert_user_message, lock_session, user_message_dict
from botical.tools.base import ToolFailure

log = logging.getLogger(__name__)
CANCEL_WAIT = 10.0
Resolve = Callable[[], Awaitable[tuple[AgentConfig, str]]]


class Runner:
    """Starts, cancels and retries agent runs; at most one per session."""

    def __init__(self, steps: Steps, book: RunBook) -> None:
        self.steps = steps
        self.book = book
        self.db = steps.db
        self.messages = steps.messages
        self.sessions = steps.sessions
        self.catalog = steps.catalog
        self._runs: dict[str, Run] = {}
        self._ending: set[asyncio.Future[None]] = set()
        self._stopping = False

    # -- public API -------------------------------------------------------------------------

    def start(self) -> None:
        """Keep this node's runs' leases, reap dead nodes' runs, obey remote cancels."""
        self.book.start(lambda: [run.id for run in self._runs.values()], self._stop, self._reaped)

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
        if_busy: str = "reject",
    ) -> dict[str, Any]:
        """Store the user's message and start a run answering it, or, while the session is
        busy, do what `if_busy` says (`agent.queue`); return `{message, runId}`."""
        self._accepting()
        if idempotency_key:
            found = await self.messages.find_by_key(session_id, idempotency_key)
            if found:
                return {"message": found, "runId": found["runId"]}
        session = await self.sessions.get(session_id)
        config, ref = await self.catalog.resolve(project_id, session, agent, model)
        request = queue.SendRequest(
            session_id,
            project_id,
            identity.user_id,
            content,
            new_id("run"),
            config.name,
            ref,
            idempotency_key,
            if_busy,
        )
        admitted = await self.db.atomic(queue.admit, self.book.leases, request)
        message = admitted.message
        if admitted.created:
            self.messages.announce(message, admitted.project_id)
        if admitted.started:
            run = self._register(Run(request.run_id, session_id, admitted.project_id, identity))
            self._launch(run, message["id"], _known(config, ref))
        elif admitted.stop:
            self.stop(session_id, admitted.stop, "interrupted")
        if admitted.created and not session["title"]:
            await self.sessions.title_from(session_id, content)
        return {"message": message, "runId": message["runId"]}

    async def edit(
        self,
        identity: Identity,
        project_id: str,
        session_id: str,
        message_id: str,
        content: str,
        agent: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Send a new version of a user message (a sibling of it) and answer it."""
        self._accepting()
        session = await self.sessions.get(session_id)
        config, ref = await self.catalog.resolve(project_id, session, agent, model)
        run_id = new_id("run")

        def apply() -> tuple[dict[str, Any], str]:
            locked = lock_session(session_id)
            original = edit_point(locked, message_id)
            self.book.leases.insert(run_id, session_id, locked.project_id)
            message, parts = insert_user_message(
                session_id, identity.user_id, content, run_id, config.name, ref, original.parent_id
            )
            return user_message_dict(message, parts), locked.project_id

        message, project = await self.db.atomic(apply)
        self.messages.announce(message, project)
        run = self._register(Run(run_id, session_id, project, identity))
        self._launch(run, message["id"], _known(config, ref))
        return {"message": message, "runId": run_id}

    async def retry(
        self,
        identity: Identity,
        project_id: str,
        session_id: str,
        message_id: str | None = None,
        agent: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Answer a user message again, as a new version of its answer (by default the last
        question of the active path, with the agent and model it was sent with)."""
        self._accepting()
        question = await self.db.run(retry_question, session_id, message_id)
        session = await self.sessions.get(session_id)
        config, ref = await self.catalog.resolve(
            project_id, session, agent or question.agent, model or question.model
        )
        run_id = new_id("run")

        def apply() -> tuple[str, str]:
            locked = lock_session(session_id)
            self.book.leases.insert(run_id, session_id, locked.project_id)
            return retry_point(locked, message_id).id, locked.project_id

        question_id, project = await self.db.atomic(apply)
        self.messages.path_changed(session_id, project, question_id, [])
        run = self._register(Run(run_id, session_id, project, identity))
        self._launch(run, question_id, _known(config, ref))
        return {"runId": run_id}

    async def cancel(
        self, session_id: str, message_id: str | None = None, status: str = "cancelled"
    ) -> dict[str, Any]:
        """Stop the session's run, wherever it runs, and wait (bounded) until it has recorded
        that it stopped; with `message_id`, take that message out of the queue instead (or
        stop its run if it already runs)."""
        run_id = None
        if message_id is not None:
            removed, run_id, project = await self.db.atomic(queue.unqueue, session_id, message_id)
            if removed is not None:
                self.messages.deleted(removed, project)
                return {"cancelled": True, "runId": removed.run_id}
            if run_id is None:
                return {"cancelled": False, "runId": None}
        run = self._runs.get(session_id)
        if run is None or run.task is None or run.task.done():
            return await self.book.cancel_remote(session_id, CANCEL_WAIT, run_id)
        if run_id is not None and run.id != run_id:
            return {"cancelled": False, "runId": None}
        run.stop(status, status)  # its finish reason says the same: cancelled or interrupted
        await asyncio.wait({run.task}, timeout=CANCEL_WAIT)
        return {"cancelled": True, "runId": run.id}

    def stop(self, session_id: str, run_id: str, reason: str) -> None:
        """Ask a run to stop, at once and without waiting, here or on its node; it records
        `reason` as its finish reason."""
        run = self._runs.get(session_id)
        if run is not None and run.id == run_id:
            self._stop(run_id, reason)
        else:
            self.book.request_cancel(run_id, reason)

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
        new one. A session with messages waiting is left for another node (or the next start)
        to take over."""
        self._stopping = True
        await self.book.stop()
        runs = list(self._runs)
        await asyncio.gather(*(self.cancel(s, status="interrupted") for s in runs))

    async def recover(self) -> int:
        """At start-up: mark what dead runs left unfinished as interrupted."""
        return await self.book.recover()

    # -- internals --------------------------------------------------------------------------

    def _accepting(self) -> None:
        if self._stopping:
            raise Conflict("The server is shutting down")

    def _register(self, run: Run) -> Run:
        previous = self._runs.get(run.session_id)
        if previous is not None and not previous.ending:  # the database said the session was free
            log.error("session %s already had run %s here", run.session_id, previous.id)
        self._runs[run.session_id] = run
        return run

    def _stop(self, run_id: str, reason: str) -> None:
        """Stop a run of this node, if it runs here (a request from any node)."""
        for run in self._runs.values():
            if run.id == run_id:
                run.stop(reason=reason)

    def _launch(
        self, run: Run, question_id: str, resolve: Resolve, context: Context | None = None
    ) -> None:
        """Start the run's task, in the context of the request that asked for it (its trace),
        or in `context`."""
        run.task = asyncio.create_task(self._guarded(run, question_id, resolve), context=context)
        run.task.add_done_callback(lambda task: self._never_started(task, run))

    def _never_started(self, task: asyncio.Task[None], run: Run) -> None:
        """A task cancelled before its first step never runs `_guarded`'s cleanup."""
        if not run.ending:
            ending = asyncio.ensure_future(self._end(run, "idle"))
            self._ending.add(ending)
            ending.add_done_callback(self._ending.discard)

    async def _guarded(self, run: Run, question_id: str, resolve: Resolve) -> None:
        status = "error"
        try:
            config, ref = await resolve()
            status = await self.steps.execute(run, question_id, config, ref)
        except Exception:
            log.exception("run %s failed before it could record an answer", run.id)
        finally:
            await asyncio.shield(self._end(run, status))

    async def _end(self, run: Run, status: str) -> None:
        run.ending = True
        if self._runs.get(run.session_id) is run:
            del self._runs[run.session_id]
        await self._hand_over(run.id, run.session_id, run.project_id, status)

    async def _reaped(self, run: DeadRun) -> None:
        await self._hand_over(run.id, run.session_id, run.project_id, "idle")

    async def _hand_over(self, run_id: str, session_id: str, project_id: str, status: str):
        """A run ended: free its session or start the message waiting first (`agent.queue`),
        then tell clients, in that order."""
        try:
            outcome = await self.db.atomic(
                queue.hand_over, self.book.leases, run_id, session_id, not self._stopping
            )
        except Exception:  # its row's lease runs out and a reaper ends it again
            log.exception("could not end run %s of session %s", run_id, session_id)
            self.book.ended(run_id, session_id, project_id, status)
            return
        project_id = outcome.project_id
        self.book.ended(run_id, session_id, project_id, status)
        for gone in outcome.dropped + outcome.removed:
            self.messages.deleted(gone, project_id)
        if outcome.path is not None:
            self.messages.path_changed(session_id, project_id, *outcome.path)
        if outcome.start is not None and outcome.user is not None:
            message = outcome.start
            self.messages.announce(message, project_id, created=False)
            identity = _sender(outcome.user, message["id"])
            run = self._register(Run(message["runId"], session_id, project_id, identity))
            # A fresh context: not the ended run's, whose trace this message is no part of
            self._launch(run, message["id"], self._resolver(run, message), Context())

    def _resolver(self, run: Run, message: dict[str, Any]) -> Resolve:
        """The agent and model a waiting message was sent with, or the built-in default agent
        if its agent was deleted meanwhile."""

        async def resolve() -> tuple[AgentConfig, str]:
            session = await self.sessions.get(run.session_id)
            try:
                return await self.catalog.resolve(
                    run.project_id, session, message["agent"], message["model"]
                )
            except ValidationError:
                return await self.catalog.resolve(
                    run.project_id, session, "default", message["model"]
                )

        return resolve


def _known(config: AgentConfig, ref: str) -> Resolve:
    async def resolve() -> tuple[AgentConfig, str]:
        return config, ref

    return resolve


def _sender(user: dict[str, Any], message_id: str) -> Identity:
    """Who a waiting message's run acts as: its sender, with their rights as they are now."""
    return Identity(
        user_id=user["id"],
        name=user["name"],
        is_admin=user["isAdmin"],
        can_execute_code=user["canExecuteCode"],
        kind="queued",
        credential_id=message_id,
    )
