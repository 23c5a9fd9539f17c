"""One run's work: the steps of the agent loop. Each step streams the model's answer into
parts, executes the tool calls it asks for (through the agent's permission rules and the
approval service), feeds the results back, and repeats until the model stops or the agent's
step limit is reached; then it records how the run ended.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botical.agent.catalog import Catalog
from botical.agent.context import load_history
from botical.agent.providers.base import (
    Finish,
    ModelMessage,
    ModelRequest,
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    split_model,
)
from botical.agent.stream import PartRecorder
from botical.agent.toolcalls import ToolCaller, check_arguments
from botical.auth.identity import Identity
from botical.bus import Event, EventBus
from botical.config import AgentSettings
from botical.db import Database
from botical.errors import BoticalError, internal_error
from botical.services.agents import AgentConfig
from botical.services.approvals import ApprovalService
from botical.services.messages import MessageService
from botical.services.projects import ProjectService
from botical.services.sessions import SessionService
from botical.tools.toolbox import Toolbox

if TYPE_CHECKING:
    from botical.app import Botical

log = logging.getLogger(__name__)
OPEN_CALL_STATUSES = ("pending", "waiting_approval", "running")


@dataclass(frozen=True)
class RunServices:
    """The services a run works through."""

    messages: MessageService
    sessions: SessionService
    approvals: ApprovalService
    projects: ProjectService
    catalog: Catalog
    toolbox: Toolbox


@dataclass
class Run:
    id: str
    session_id: str
    project_id: str
    identity: Identity
    task: asyncio.Task[None] | None = None
    message_id: str | None = None
    stop_status: str = "cancelled"
    stop_reason: str = "cancelled"  # the finish reason when stopped: cancelled, interrupted
    stopping: bool = False  # its task was cancelled
    ending: bool = False  # its end is being recorded
    recorder: PartRecorder | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"inputTokens": 0, "outputTokens": 0, "cachedTokens": 0}
    )

    def stop(self, status: str | None = None, reason: str | None = None) -> None:
        """Cancel the run's task, once: a second cancel would cut short its recording of how
        it stopped (two tabs stopping it at the same time)."""
        if self.task is None or self.stopping:
            return
        self.stopping = True
        self.stop_status = status or self.stop_status
        self.stop_reason = reason or self.stop_reason
        self.task.cancel()


class Steps:
    """Executes runs, built from the services a run uses; `tool_services` is what tools reach
    through their context (a sub-agent's task starts sessions and runs, todo tools change
    todos)."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        services: RunServices,
        settings: AgentSettings,
        tool_services: Botical,
    ) -> None:
        self.db = db
        self.bus = bus
        self.messages = services.messages
        self.sessions = services.sessions
        self.approvals = services.approvals
        self.projects = services.projects
        self.catalog = services.catalog
        self.toolbox = services.toolbox
        self.settings = settings
        self.tool_services = tool_services

    def status(self, run: Run, status: str) -> None:
        """Tell clients what the run is doing (agent.status_changed)."""
        self.bus.publish(
            Event(
                "agent.status_changed",
                {"sessionId": run.session_id, "status": status, "runId": run.id},
                project_id=run.project_id,
                session_id=run.session_id,
            )
        )

    async def execute(self, run: Run, user_message_id: str, config: AgentConfig, ref: str) -> str:
        """Run the steps and record how the run ended; return the final agent status."""
        app = self.tool_services
        with app.metrics.running(), app.tracing.run(run.id, run.session_id, run.project_id):
            return await self._execute(run, user_message_id, config, ref)

    async def _execute(self, run: Run, user_message_id: str, config: AgentConfig, ref: str) -> str:
        creating = asyncio.ensure_future(
            self.messages.create_assistant(
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
            self.db,
            self.bus,
            run.project_id,
            run.session_id,
            assistant["id"],
            self.settings.flush_interval,
            self.sessions.text_stored,
        )
        run.recorder = recorder
        try:
            if cancelled:
                raise asyncio.CancelledError
            reason = await self._steps(run, user_message_id, config, ref, recorder)
            await self._finish(run, recorder, "completed", reason)
            return "idle"
        except asyncio.CancelledError:  # cancelled, or interrupted by a shutdown: both say so
            await self._finish(run, recorder, run.stop_status, run.stop_reason)
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
        provider = self.catalog.provider(ref)
        project = await self.projects.get(run.project_id)
        project_tools = await self.toolbox.for_project(run.project_id)
        tools = {n: t for n, t in project_tools.items() if config.allows_tool(n)}
        specs = tuple(ToolSpec(t.name, t.description, t.json_schema()) for t in tools.values())
        turns = await self.db.run(load_history, run.session_id, user_message_id)
        workspace = Path(project["path"]) if project["path"] else None
        for step in range(1, config.max_steps + 1):
            self.tool_services.tracing.step(run.id, step)
            await recorder.add("step_start", None, {"step": step})
            self.status(run, "thinking")
            request = ModelRequest(split_model(ref)[1], config.prompt, tuple(turns), specs)
            streamed = self._stream(run, provider, request, recorder)
            calls, finish = await self.tool_services.tracing.provider_call(run.id, ref, streamed)
            await recorder.add(
                "step_finish",
                None,
                {
                    "step": step,
                    "finishReason": finish.reason,
                    "usage": {
                        "inputTokens": finish.input_tokens,
                        "outputTokens": finish.output_tokens,
                        "cachedTokens": finish.cached_tokens,
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
                self.approvals,
                self.tool_services,
                run,
                config,
                tools,
                recorder,
                workspace,
                lambda status: self.status(run, status),
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
        self, run: Run, provider: Provider, request: ModelRequest, recorder: PartRecorder
    ) -> tuple[list, Finish]:
        calls: list[tuple[ToolCallRequest, dict[str, Any]]] = []
        finish = Finish("stop")
        streaming = False
        async for event in provider.stream(request):
            if isinstance(event, TextDelta | ReasoningDelta):
                if not streaming:
                    streaming = True
                    self.status(run, "streaming")
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
        run.usage["cachedTokens"] += finish.cached_tokens
        return calls, finish

    async def _finish(
        self,
        run: Run,
        recorder: PartRecorder,
        status: str,
        reason: str,
        error: dict[str, Any] | None = None,
    ) -> None:
        self.tool_services.metrics.runs(status).inc()
        self.tool_services.tracing.run_ended(run.id, status)
        await recorder.close_open(status)
        for part in recorder.parts:
            if part["type"] == "tool_call" and part["status"] in OPEN_CALL_STATUSES:
                await recorder.update(part, status=status)
        assert run.message_id is not None
        answer = await self.messages.finish_assistant(
            run.project_id, run.message_id, status, reason, run.usage, error
        )
        await self.sessions.add_usage(run.session_id, answer["usage"])
