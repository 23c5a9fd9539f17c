"""An unanswered approval expires after `agent.approval_timeout` and counts as refused."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import parts


@pytest.fixture
def botical_overrides():
    return {"agent": {"approval_timeout": 1}}


@pytest.mark.gen_test(timeout=20)
async def test_unanswered_approval_expires(chat, events):
    run_id = await chat.started('/tool write {"path": "a.txt", "content": "x"}')
    approval = await chat.approval(run_id)
    resolved = await events.wait("tool.approval_resolved", approval__id=approval["id"], timeout=10)
    assert resolved.data["approval"]["status"] == "expired"
    answer = await chat.finished(run_id)
    assert [p["isError"] for p in parts(answer, "tool_result")] == [True]
    assert not (chat.workspace / "a.txt").exists()


@pytest.mark.gen_test(timeout=20)
async def test_expired_approval_cannot_be_approved(chat, events):
    run_id = await chat.started('/tool write {"path": "a.txt", "content": "x"}')
    approval = await chat.approval(run_id)
    await events.wait("tool.approval_resolved", approval__id=approval["id"], timeout=10)
    late = await chat.person.api.post(f"/api/approvals/{approval['id']}/approve", {})
    assert (late.status, late.error_code) == (409, "CONFLICT")
