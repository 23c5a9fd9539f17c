"""The run loop: one background run per session, step by step, every change a bus event.

A run streams the model's answer into parts, executes the tool calls it asks for (through the
agent's permission rules and the approval service), feeds the results back, and repeats until
the model stops or the agent's step limit is reached.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botical.agent.context import load_history
from botical.agent.providers.base import (
    Finish,
    ModelMessage,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    split_model,
)
from botical.agent.stream import PartRecorder
from botical.agent.toolcalls import ToolCaller, check_arguments
from botical.auth.identity import Identity
from botical.bus import Event
from botical.errors import BoticalError, Conflict, NotFound, ValidationError, internal_error
from botical.ids import new_id
from botical.services.agents import AgentConfig
from botical.tools.base import ToolFailure

log = logging.getLogger(__name__)
CANCEL_WAIT = 10.0
OPEN_CALL_STATUSES = ("pending", "waiting_approval", "running")


@dataclass
class Run:
    id: str
    session_id: str
    project_id: str
    identity: Identity
    task: asyncio.Task[None] | None = None
    message_id: str | None = None
    stop_status: str = "cancelled"
    recorder: PartRecorder | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"inputTokens": 0, "outputTokens": 0})


class Runner:
    """Starts, cancels and retries agent runs; at most one per session."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._runs: dict[str, Run] = {}
        self._stopping = False

    # -- public API -------------------------------------------------------------------------

    def status(self, session_id: str) -> dict[str, Any]:
        """`{status: running|idle, runId}` for a session."""
        run = self._runs.get(session_id)
        return {"status": "running" if run else "idle", "runId": run.id if run else None}

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
            found = await self.app.messages.find_by_key(session_id, idempotency_key)
            if found:
                return {"message": found, "runId": found["runId"]}
        run = self._claim(identity, project_id, session_id)
        try:
            session = await self.app.sessions.get(session_id)
            config, model_ref = await self._resolve(project_id, session, agent, model)
            message, created = await self.app.messages.create_user_message(
                session_id,
                identity.user_id,
                content,
                run.id,
                config.name,
                model_ref,
                idempotency_key,
            )
        except BaseException:
            self._release(run)
            raise
        if not created:
            self._release(run)
            return {"message": message, "runId": message["runId"]}
        self._launch(run, message["id"], config, model_ref)
        return {"message": message, "runId": run.id}

    async def retry(
        self, identity: Identity, project_id: str, session_id: str, message_id: str | None = None
    ) -> dict[str, Any]:
        """Answer a user message again (the last one by default); later messages are superseded."""
        run = self._claim(identity, project_id, session_id)
        try:
            user_message = await self.app.messages.retry_point(session_id, message_id, project_id)
            session = await self.app.sessions.get(session_id)
            config, model_ref = await self._resolve(
                project_id, session, user_message["agent"], user_message["model"]
            )
        except BaseException:
            self._release(run)
            raise
        self._launch(run, user_message["id"], config, model_ref)
        return {"runId": run.id}

    async def cancel(self, session_id: str, status: str = "cancelled") -> dict[str, Any]:
        """Stop the session's run and wait (bounded) until it has recorded that it stopped."""
        run = self._runs.get(session_id)
        if run is None or run.task is None:
            return {"cancelled": False, "runId": None}
        run.stop_status = status
        run.task.cancel()
        await asyncio.wait({run.task}, timeout=CANCEL_WAIT)
        return {"cancelled": True, "runId": run.id}

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
        return await self.app.messages.get(run.message_id)

    async def shutdown(self) -> None:
        """Stop every run (their messages are marked interrupted) and start no new one."""
        self._stopping = True
        runs = list(self._runs)
        await asyncio.gather(*(self.cancel(s, "interrupted") for s in runs))

    async def recover(self) -> int:
        """At start-up: mark runs that a previous process left unfinished as interrupted."""
        await self.app.approvals.expire_orphans()
        return await self.app.messages.mark_interrupted()

    async def check_names(self, project_id: str, changes: dict[str, Any]) -> None:
        """Validate an agent name and a model reference for a project."""
        if changes.get("agent"):
            try:
                await self.app.agents.get(project_id, changes["agent"])
            except NotFound:
                raise ValidationError(details={"agent": ["Unknown agent."]}) from None
        if changes.get("model"):
            self._provider(changes["model"])

    # -- internals --------------------------------------------------------------------------

    def _claim(self, identity: Identity, project_id: str, session_id: str) -> Run:
        if self._stopping:
            raise Conflict("The server is shutting down")
        if session_id in self._runs:
            raise Conflict("A run is already in progress in this session")
        run = Run(new_id("run"), session_id, project_id, identity)
        self._runs[session_id] = run
        return run

    def _release(self, run: Run) -> None:
        if self._runs.get(run.session_id) is run:
            del self._runs[run.session_id]

    def _launch(self, run: Run, user_message_id: str, config: AgentConfig, model_ref: str):
        run.task = asyncio.create_task(self._guarded(run, user_message_id, config, model_ref))
        # a task cancelled before its first step never runs `_guarded`'s cleanup
        run.task.add_done_callback(lambda _: self._release(run))

    async def _resolve(
        self, project_id: str, session: dict[str, Any], agent: str | None, model: str | None
    ) -> tuple[AgentConfig, str]:
        name = agent or session["agent"]
        await self.check_names(project_id, {"agent": name})
        config = await self.app.agents.get(project_id, name)
        ref = model or session["model"] or config.model or self.app.settings.agent.default_model
        self._provider(ref)
        return config, ref

    def _provider(self, ref: str) -> Any:
        name, _ = split_model(ref)
        provider = self.app.providers.get(name)
        if provider is None:
            raise ValidationError(details={"model": [f"Unknown provider {name!r}."]})
        return provider

    def _status(self, run: Run, status: str) -> None:
        self.app.bus.publish(
            Event(
                "agent.status_changed",
                {"sessionId": run.session_id, "status": status, "runId": run.id},
                project_id=run.project_id,
                session_id=run.session_id,
            )
        )

    async def _guarded(self, run: Run, user_message_id: str, config: AgentConfig, ref: str):
        status = "error"
        try:
            status = await self._execute(run, user_message_id, config, ref)
        except Exception:
            log.exception("run %s failed before it could record an answer", run.id)
        finally:
            self._release(run)
            self._status(run, status)

    async def _execute(self, run: Run, user_message_id: str, config: AgentConfig, ref: str) -> str:
        """Run the steps and record how the run ended; return the final agent status."""
        app = self.app
        creating = asyncio.ensure_future(
            app.messages.create_assistant(
                run.project_id, run.session_id, user_message_id, run.id, config.name, ref
            )
        )
        cancelled = False
        try:
            assistant = await asyncio.shield(creating)
        except asyncio.CancelledError:  # the row is written anyway: record the stop on it below
            assistant, cancelled = await creating, True
        run.message_id = assistant["id"]
        recorder = PartRecorder(
            app.db,
            app.bus,
            run.project_id,
            run.session_id,
            assistant["id"],
            app.settings.agent.flush_interval,
            app.sessions.text_stored,
        )
        run.recorder = recorder
        try:
            if cancelled:
                raise asyncio.CancelledError
            reason = await self._steps(run, user_message_id, config, ref, recorder)
            await self._finish(run, recorder, "completed", reason)
            return "idle"
        except asyncio.CancelledError:  # cancelled, or interrupted by a shutdown: both say so
            await self._finish(run, recorder, run.stop_status, run.stop_status)
            return "idle"
        except Exception as exc:
            if isinstance(exc, BoticalError):
                error = exc
                log.info("run %s ended with %s: %s", run.id, exc.code, exc.message)
            else:
                error = internal_error()
                log.exception("run %s failed", run.id)
            payload = error.to_payload()
            await recorder.close_open("error")  # the text so far, before the error that ended it
            await recorder.add("step_finish", None, {"finishReason": "error", "error": payload})
            await self._finish(run, recorder, "error", "error", payload)
            return "error"

    async def _steps(
        self, run: Run, user_message_id: str, config: AgentConfig, ref: str, recorder: PartRecorder
    ) -> str:
        app = self.app
        provider = self._provider(ref)
        project = await app.projects.get(run.project_id)
        project_tools = await app.tools_for(run.project_id)
        tools = {n: t for n, t in project_tools.items() if config.allows_tool(n)}
        specs = tuple(ToolSpec(t.name, t.description, t.json_schema()) for t in tools.values())
        turns = await app.db.run(load_history, run.session_id, user_message_id)
        workspace = Path(project["path"]) if project["path"] else None
        for step in range(1, config.max_steps + 1):
            await recorder.add("step_start", None, {"step": step})
            self._status(run, "thinking")
            request = ModelRequest(split_model(ref)[1], config.prompt, tuple(turns), specs)
            calls, finish = await self._stream(run, provider, request, recorder)
            await recorder.add(
                "step_finish",
                None,
                {
                    "step": step,
                    "finishReason": finish.reason,
                    "usage": {
                        "inputTokens": finish.input_tokens,
                        "outputTokens": finish.output_tokens,
                    },
                },
            )
            turns.append(
                ModelMessage(
                    "assistant", recorder.step_text(), tool_calls=tuple(c for c, _ in calls)
                )
            )
            if not calls:
                return finish.reason
            caller = ToolCaller(
                self.app,
                run,
                config,
                tools,
                recorder,
                workspace,
                lambda status: self._status(run, status),
            )
            for call, part in calls:
                result = await caller.call(call, part)
                turns.append(
                    ModelMessage(
                        "tool",
                        result.output,
                        tool_call_id=call.id,
                        name=call.name,
                        is_error=result.is_error,
                    )
                )
        return "max_steps"

    async def _stream(
        self, run: Run, provider: Any, request: ModelRequest, recorder: PartRecorder
    ) -> tuple[list, Finish]:
        calls: list[tuple[ToolCallRequest, dict[str, Any]]] = []
        finish = Finish("stop")
        streaming = False
        async for event in provider.stream(request):
            if isinstance(event, TextDelta | ReasoningDelta):
                if not streaming:
                    streaming = True
                    self._status(run, "streaming")
                kind = "text" if isinstance(event, TextDelta) else "reasoning"
                await recorder.delta(kind, event.text)
            elif isinstance(event, ToolCallRequest):
                check_arguments(event)
                await recorder.close_open()
                part = await recorder.add(
                    "tool_call",
                    "pending",
                    {
                        "toolCallId": event.id,
                        "tool": event.name,
                        "arguments": dict(event.arguments),
                    },
                )
                calls.append((event, part))
            elif isinstance(event, Finish):
                finish = event
        await recorder.close_open()
        run.usage["inputTokens"] += finish.input_tokens
        run.usage["outputTokens"] += finish.output_tokens
        return calls, finish

    async def _finish(
        self,
        run: Run,
        recorder: PartRecorder,
        status: str,
        reason: str,
        error: dict[str, Any] | None = None,
    ) -> None:
        await recorder.close_open(status)
        for part in recorder.parts:
            if part["type"] == "tool_call" and part["status"] in OPEN_CALL_STATUSES:
                await recorder.update(part, status=status)
        assert run.message_id is not None
        await self.app.messages.finish_assistant(
            run.project_id, run.message_id, status, reason, run.usage, error
        )
        await self.app.sessions.add_usage(
            run.session_id, run.usage["inputTokens"], run.usage["outputTokens"], 0.0
        )
