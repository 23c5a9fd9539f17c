"""Tool approvals: one stored record per `ask`, answered once, first answer wins.

The runner calls `request` then `wait`; members answer with `approve` / `reject`. An unanswered
approval expires after the configured time and counts as rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import Approval
from botical.errors import Conflict, NotFound
from botical.ids import new_id

SCOPES = ("once", "session")


def approval_to_dict(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "sessionId": approval.session_id,
        "messageId": approval.message_id,
        "partId": approval.part_id,
        "runId": approval.run_id,
        "tool": approval.tool_name,
        "arguments": approval.arguments,
        "status": approval.status,
        "scope": approval.scope,
        "reason": approval.reason,
        "requestedBy": approval.requested_by_id,
        "resolvedBy": approval.resolved_by_id,
        "createdAt": approval.created_at,
        "expiresAt": approval.expires_at,
        "resolvedAt": approval.resolved_at,
    }


class ApprovalService:
    def __init__(self, db: Database, bus: EventBus, timeout: float) -> None:
        self._db = db
        self._bus = bus
        self.timeout = timeout
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # A run waits on the node that runs it; the answer may come through any node.
        bus.subscribe("tool.approval_resolved", self._resolved, cluster=True)

    @property
    def waiting(self) -> int:
        """How many approvals runs of this node wait for."""
        return len(self._waiters)

    def _resolved(self, event: Event) -> None:
        approval = event.data["approval"]
        future = self._waiters.get(approval["id"])
        if future is not None and not future.done():
            future.set_result(approval)

    def _publish(self, name: str, approval: dict[str, Any], project_id: str | None) -> None:
        self._bus.publish(
            Event(
                name,
                {"approval": approval},
                project_id=project_id,
                session_id=approval["sessionId"],
                user_id=approval["requestedBy"],
            )
        )

    async def request(
        self,
        project_id: str,
        session_id: str,
        message_id: str,
        part_id: str,
        run_id: str,
        tool: str,
        arguments: dict[str, Any],
        user_id: str,
    ):
        """Store a pending approval, announce it, and return it."""
        expires = now_ms() + int(self.timeout * 1000)

        def insert() -> Approval:
            return Approval.create(
                id=new_id("appr"),
                session=session_id,
                message_id=message_id,
                part_id=part_id,
                run_id=run_id,
                tool_name=tool,
                arguments=arguments,
                requested_by=user_id,
                expires_at=expires,
            )

        data = approval_to_dict(await self._db.atomic(insert))
        self._waiters[data["id"]] = asyncio.get_running_loop().create_future()
        self._publish("tool.approval_required", data, project_id)
        return data

    async def wait(self, approval_id: str, project_id: str) -> dict[str, Any]:
        """Wait for the answer; on timeout the approval expires. Returns the resolved approval."""
        future = self._waiters[approval_id]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            try:
                return await self._finish(approval_id, project_id, "expired", None, None, "expired")
            except Conflict:  # answered just as it expired: that answer stands
                return await self.get(approval_id)
        finally:
            self._waiters.pop(approval_id, None)

    async def approve(self, approval_id: str, user_id: str, project_id: str, scope: str = "once"):
        """Approve a pending call (`once`, or `session` for the rest of the session)."""
        return await self._finish(approval_id, project_id, "approved", user_id, scope, None)

    async def reject(self, approval_id: str, user_id: str, project_id: str, reason: str | None):
        """Reject a pending call; the reason is shown to the model."""
        return await self._finish(approval_id, project_id, "rejected", user_id, None, reason)

    async def cancel(self, approval_id: str, project_id: str, status: str = "cancelled") -> None:
        """Withdraw a pending approval because its run stopped."""
        with contextlib.suppress(Conflict):  # answered in the meantime: nothing to withdraw
            await self._finish(approval_id, project_id, status, None, None, status)

    async def _finish(
        self,
        approval_id: str,
        project_id: str,
        status: str,
        user_id: str | None,
        scope: str | None,
        reason: str | None,
    ) -> dict[str, Any]:
        def apply() -> Approval:
            now = now_ms()
            changed = (
                Approval.update(
                    status=status, resolved_by=user_id, scope=scope, reason=reason, resolved_at=now
                )
                .where(Approval.id == approval_id, Approval.status == "pending")
                .execute()
            )
            approval = Approval.get_or_none(Approval.id == approval_id)
            if approval is None:
                raise NotFound("Approval not found")
            if not changed:
                raise Conflict(f"Approval already {approval.status}")
            return approval

        data = approval_to_dict(await self._db.atomic(apply))
        self._publish("tool.approval_resolved", data, project_id)  # wakes the waiting run
        return data

    async def get(self, approval_id: str) -> dict[str, Any]:
        approval = await self._db.run(Approval.get_or_none, Approval.id == approval_id)
        if approval is None:
            raise NotFound("Approval not found")
        return approval_to_dict(approval)

    async def pending(self, session_id: str) -> list[dict[str, Any]]:
        """Pending approvals of a session, oldest first."""

        def select() -> list[Approval]:
            return list(
                Approval.select()
                .where(Approval.session == session_id, Approval.status == "pending")
                .order_by(Approval.id)
            )

        return [approval_to_dict(a) for a in await self._db.run(select)]

    async def granted_for_session(self, session_id: str, tool: str) -> bool:
        """Tell whether `tool` was approved for the rest of this session."""
        return await self._db.run(
            lambda: (
                Approval.select()
                .where(
                    Approval.session == session_id,
                    Approval.tool_name == tool,
                    Approval.status == "approved",
                    Approval.scope == "session",
                )
                .exists()
            )
        )

    async def expire_orphans(self, runs: dict[str, str] | None = None) -> int:
        """Pending approvals whose run died are interrupted: those of `runs` (run id ->
        project id), announced; or, at the start of a single process, every one."""

        def apply() -> list[Approval]:
            pending = Approval.select().where(Approval.status == "pending")
            if runs is not None:
                pending = pending.where(Approval.run_id.in_(list(runs)))
            found = list(pending)
            now = now_ms()
            Approval.update(status="interrupted", resolved_at=now).where(
                Approval.id.in_([a.id for a in found]), Approval.status == "pending"
            ).execute()
            for row in found:
                row.status, row.resolved_at = "interrupted", now
            return found

        found = await self._db.atomic(apply)
        if runs is not None:
            for approval in found:
                self._publish(
                    "tool.approval_resolved", approval_to_dict(approval), runs[str(approval.run_id)]
                )
        return len(found)
