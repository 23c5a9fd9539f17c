"""The per-channel seq rule the client applies to every frame (docs/protocol.md 8.5): hand
over what continues the channel, drop what was handed over, stop at a gap."""

from __future__ import annotations

import pytest

from botical.client.channels import DELIVER, DUPLICATE, GAP, ChannelState


def _frame(seq: int, merged_from: int | None = None) -> dict:
    frame = {"type": "event", "channel": "session:s", "event": "part.updated", "seq": seq}
    if merged_from is not None:
        frame["mergedFrom"] = merged_from
    return frame


@pytest.mark.gen_test
async def test_seq_verdicts_cover_merged_frames():
    state = ChannelState("session:sess_x")
    state.last_seq = 5
    steps = [
        (_frame(6), DELIVER, 6),
        (_frame(6), DUPLICATE, 6),
        (_frame(9, merged_from=7), DELIVER, 9),  # stands for 7, 8 and 9
        (_frame(8), DUPLICATE, 9),
        (_frame(9), DUPLICATE, 9),
        (_frame(12), GAP, 9),  # 10 and 11 are missing: nothing is handed over
        (_frame(12, merged_from=10), DELIVER, 12),
        (_frame(13), DELIVER, 13),
    ]
    for frame, verdict, last_seq in steps:
        assert (state.verdict(frame), state.last_seq) == (verdict, last_seq), frame
    assert state.session_id == "sess_x"
    assert ChannelState("project:prj_x").session_id is None
