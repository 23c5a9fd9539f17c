"""botical chat's state machine, trigger by trigger (the whole chat runs under a pty in
tests/integration/client/test_chat.py)."""

from __future__ import annotations

from botical.chat.turn import TRANSITIONS, State, Turn


def _approval(approval_id: str, run_id: str = "run_1", status: str = "pending") -> dict:
    return {"id": approval_id, "runId": run_id, "status": status, "tool": "write"}


def test_a_message_is_sent_streamed_and_ended():
    turn = Turn()
    assert turn.send() and turn.state is State.SENDING
    assert not turn.send()  # one message at a time
    assert turn.sent("run_1") is False and turn.state is State.STREAMING
    assert not turn.ended("run_other")  # not ours
    assert turn.ended("run_1") and turn.state is State.IDLE and turn.run_id is None


def test_the_run_may_end_before_send_answers():
    turn = Turn()
    turn.send()
    turn.ended("run_1")  # the events came first
    assert turn.sent("run_1") is False
    assert turn.state is State.IDLE


def test_approvals_are_asked_in_order_then_streaming_goes_on():
    turn = Turn()
    turn.send()
    turn.approval_required(_approval("appr_1"))  # before messages.send answered
    assert turn.state is State.SENDING and turn.asking is None
    turn.sent("run_1")
    assert turn.state is State.AWAITING_APPROVAL and turn.asking["id"] == "appr_1"
    turn.approval_required(_approval("appr_2"))
    turn.approval_required(_approval("appr_2"))  # a resync repeats it: asked once
    assert turn.approval_gone("appr_1") and turn.asking["id"] == "appr_2"
    assert turn.approval_gone("appr_2") and turn.state is State.STREAMING
    assert not turn.approval_gone("appr_2")  # the server's resolved event, later


def test_an_approval_resolved_elsewhere_is_not_asked_any_more():
    turn = Turn()
    turn.send()
    turn.sent("run_1")
    turn.approval_required(_approval("appr_1"))
    turn.approval_required(_approval("appr_0", status="approved"))  # already answered
    assert [a["id"] for a in turn.approvals] == ["appr_1"]
    assert turn.approval_gone("appr_1")
    assert turn.state is State.STREAMING


def test_when_idle_an_approval_of_another_run_is_asked_and_waited_for():
    turn = Turn()
    turn.approval_required(_approval("appr_1", run_id="run_elsewhere"))
    assert turn.state is State.AWAITING_APPROVAL and turn.run_id == "run_elsewhere"
    turn.approval_gone("appr_1")
    assert turn.state is State.STREAMING
    assert turn.ended("run_elsewhere") and turn.state is State.IDLE


def test_ctrl_c_cancels_a_run_and_a_second_quits():
    turn = Turn()
    turn.send()
    turn.sent("run_1")
    assert turn.interrupt() is True and turn.state is State.CANCELLING
    assert turn.interrupt() is False and turn.state is State.DONE


def test_ctrl_c_while_sending_cancels_once_the_run_is_known():
    turn = Turn()
    turn.send()
    assert turn.interrupt() is False  # no run id yet
    assert turn.state is State.CANCELLING
    assert turn.sent("run_1") is True  # now cancel it
    assert turn.ended("run_1") and turn.state is State.IDLE


def test_ctrl_c_when_idle_quits_and_a_refused_send_is_idle_again():
    turn = Turn()
    turn.send()
    turn.refused()
    assert turn.state is State.IDLE
    turn.interrupt()
    assert turn.state is State.DONE
    assert not turn.send()  # done is done


def test_every_state_is_in_the_table_and_every_target_is_a_state():
    assert set(TRANSITIONS) == set(State)
    assert all(target in State for moves in TRANSITIONS.values() for target in moves.values())


def test_when_the_answer_ends_the_next_queued_run_of_this_chat_is_followed():
    turn = Turn()
    turn.send()
    turn.sent("run_1")
    turn.queued("run_2")
    turn.queued("run_3", first=True)  # an interrupt goes ahead of what waits
    turn.queued("run_1")  # the run being followed is not waiting
    assert turn.waiting == ["run_3", "run_2"]
    assert turn.ended("run_1") and (turn.state, turn.run_id) == (State.STREAMING, "run_3")
    turn.unqueued("run_2")  # taken back
    assert turn.ended("run_3") and (turn.state, turn.run_id) == (State.IDLE, None)


def test_a_cancelled_answer_hands_over_to_the_queue_and_quitting_forgets_it():
    turn = Turn()
    turn.send()
    turn.sent("run_1")
    turn.queued("run_2")
    assert turn.interrupt() and turn.state is State.CANCELLING
    assert turn.ended("run_1") and (turn.state, turn.run_id) == (State.STREAMING, "run_2")
    turn.queued("run_gone")
    turn.ended("run_gone")  # it ended before it was followed: not waited for
    assert turn.waiting == []
    turn.queued("run_4")
    turn.quit()
    assert (turn.state, turn.waiting) == (State.DONE, [])
