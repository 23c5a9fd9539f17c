"""One step's tool calls: argument checks, code-execution rights, the agent's permission rules,
approvals, execution, and the tool_result part each call ends with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botical import jsonin
from botical.agent.providers.base import ToolCallRequest
from botical.agent.stream import PartRecorder
from botical.auth.permissions import Permissions
from botical.errors import BoticalError, Forbidden, ProviderError, ValidationError
from botical.services.agents import AgentConfig
from botical.services.approvals import ApprovalService
from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult

if TYPE_CHECKING:
    from botical.agent.steps import Run
    from botical.app import Botical

log = logging.getLogger(__name__)
Outcome = tuple[str, ToolResult]  # the tool_call part's final status, and the result


@dataclass
class ToolCaller:
    approvals: ApprovalService
    services: Botical  # what tools reach through their context
    run: Run
    config: AgentConfig
    tools: dict[str, Tool]
    recorder: PartRecorder
    workspace: Path | None
    set_status: Callable[[str], None]

    async def call(self, call: ToolCallRequest, part: dict[str, Any]) -> ToolResult:
        """Decide on one call, run it if allowed, and record its status and result."""
        app, known = self.services, call.name in self.tools
        with app.tracing.tool_call(self.run.id, call.name) as span:
            status, result = await self._decide_and_execute(call, part)
            app.tracing.note(span, "botical.tool.outcome", status)
        app.metrics.tool_calls(call.name if known else "(unknown)", status).inc()
        await self.recorder.update(part, status=status)
        await self.recorder.add(
            "tool_result",
            "error" if result.is_error else "completed",
            {
                "toolCallId": call.id,
                "tool": call.name,
                "output": result.output,
                "isError": result.is_error,
                "metadata": result.metadata,
            },
        )
        return result

    async def _decide_and_execute(self, call: ToolCallRequest, part: dict[str, Any]) -> Outcome:
        tool = self.tools.get(call.name)
        if tool is None:
            return "error", ToolResult(f"Unknown tool {call.name!r}", is_error=True)
        try:
            args = tool.check_args(dict(call.arguments))
        except ToolFailure as exc:
            return "error", ToolResult(str(exc), is_error=True)
        if tool.needs_exec:
            try:
                Permissions.require_code_execution(self.run.identity)
            except Forbidden as exc:
                return "denied", ToolResult(exc.message, is_error=True)
        decision = self.config.decide(tool.name, tool.subject_of(args), tool.default_permission)
        if decision == "ask" and await self.approvals.granted_for_session(
            self.run.session_id, tool.name
        ):
            decision = "allow"
        if decision == "deny":
            return "denied", ToolResult("Denied by the agent's permission rules", is_error=True)
        if decision == "ask":
            refusal = await self._ask(call, part, args)
            if refusal is not None:
                return "rejected", refusal
        await self.recorder.update(part, status="running")
        self.set_status("running_tool")
        return await self._execute(tool, args)

    async def _ask(
        self, call: ToolCallRequest, part: dict[str, Any], args: dict[str, Any]
    ) -> ToolResult | None:
        """Ask for approval and wait; None when approved, else the refusal the model sees."""
        run, approvals = self.run, self.approvals
        approval = await approvals.request(
            run.project_id,
            run.session_id,
            part["messageId"],
            part["id"],
            run.id,
            call.name,
            args,
            run.identity.user_id,
        )
        await self.recorder.update(part, status="waiting_approval", approvalId=approval["id"])
        self.set_status("waiting_approval")
        try:
            answer = await approvals.wait(approval["id"], run.project_id)
        except asyncio.CancelledError:
            await approvals.cancel(approval["id"], run.project_id, run.stop_status)
            raise
        if answer["status"] == "approved":
            return None
        reason = answer.get("reason") or answer["status"]
        return ToolResult(
            f"The user did not approve this call ({answer['status']}): {reason}", is_error=True
        )

    async def _execute(self, tool: Tool, args: dict[str, Any]) -> Outcome:
        run = self.run
        ctx = ToolContext(
            run.identity,
            run.project_id,
            run.session_id,
            run.message_id or "",
            run.id,
            self.workspace,
            self.services,
            self.services.settings,
        )
        try:
            outcome = await tool.execute(ctx, args)
        except ToolFailure as exc:
            return "error", ToolResult(str(exc), is_error=True)
        except BoticalError as exc:
            return "error", ToolResult(exc.message, is_error=True)
        except Exception:
            log.exception("tool %s failed in run %s", tool.name, run.id)
            return "error", ToolResult("The tool failed unexpectedly", is_error=True)
        result = outcome if isinstance(outcome, ToolResult) else ToolResult(str(outcome))
        return ("error" if result.is_error else "completed"), result


def check_arguments(call: ToolCallRequest) -> None:
    """A provider (any plugin's) may hand over arguments nested too deeply to store or echo
    back safely: that is a malformed answer, as unparsable arguments are."""
    try:
        jsonin.check(dict(call.arguments))
    except ValidationError as exc:
        raise ProviderError(
            f"The model sent an invalid call of tool {call.name!r}: {exc.details['_schema'][0]}",
            details={"kind": "invalid_response"},
        ) from None
