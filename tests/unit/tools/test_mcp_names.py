"""Names of MCP tools: Botical's `mcp.<server>.<tool>`, and what model APIs are sent."""

from __future__ import annotations

import pytest

from botical.agent.providers.base import ModelMessage, ModelRequest, ToolCallRequest, ToolSpec
from botical.agent.providers.names import WIRE_NAME, WireNames, wire_name
from botical.tools.mcp_content import MAX_NAME, tool_name


@pytest.mark.parametrize(
    ("server", "remote", "name"),
    [
        ("github", "create_issue", "mcp.github.create_issue"),
        ("fs", "read-file.v2", "mcp.fs.read-file.v2"),
        ("fs", "read file", "mcp.fs.read_file_"),
        ("s", "x" * 58, "mcp.s." + "x" * 58),  # 64 characters: kept
        ("s", "x" * 59, "mcp.s." + "x" * 49 + "_"),  # cut, and a hash of the whole name
    ],
)
def test_botical_names(server, remote, name):
    assert tool_name(server, remote).startswith(name)
    assert len(tool_name(server, remote)) <= MAX_NAME


def test_long_or_odd_names_stay_distinct():
    names = {tool_name("a" * 32, f"{'t' * 40}{i}") for i in range(20)}
    names |= {tool_name("s", "read file"), tool_name("s", "read_file")}
    assert len(names) == 22
    assert all(len(n) <= MAX_NAME for n in names)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("bash", "bash"),
        ("mcp.github.create_issue", "mcp__github__create_issue"),
        ("mcp.fs.read-file.v2", "mcp__fs__read-file__v2"),
    ],
)
def test_wire_names(name, wire):
    assert wire_name(name) == wire


def test_every_wire_name_is_accepted_and_long_ones_are_cut():
    long = "mcp." + "s" * 32 + "." + "t" * 27
    assert len(long) == 64
    assert WIRE_NAME.match(wire_name(long))
    assert wire_name(long) != wire_name(long[:-1] + "u")


def test_a_request_maps_its_tools_and_history_and_calls_come_back():
    spec = ToolSpec("mcp.a.b", "", {})
    request = ModelRequest(
        "m",
        "",
        (
            ModelMessage("assistant", tool_calls=(ToolCallRequest("1", "mcp.a.b", {}),)),
            ModelMessage("tool", "ok", tool_call_id="1", name="mcp.a.b"),
            ModelMessage("assistant", tool_calls=(ToolCallRequest("2", "mcp.gone.x", {}),)),
        ),
        (spec, ToolSpec("read", "", {})),
    )
    names = WireNames(request)
    sent = names.outbound(request)
    assert [t.name for t in sent.tools] == ["mcp__a__b", "read"]
    assert sent.messages[0].tool_calls[0].name == "mcp__a__b"
    assert sent.messages[1].name == "mcp__a__b"
    assert sent.messages[2].tool_calls[0].name == "mcp__gone__x"  # a tool no longer offered
    assert names.inbound(ToolCallRequest("3", "mcp__a__b", {})).name == "mcp.a.b"
    assert names.inbound(ToolCallRequest("4", "read", {})).name == "read"
    assert names.inbound(ToolCallRequest("5", "made_up", {})).name == "made_up"
    plain = ModelRequest("m", "", (ModelMessage("user", "hi"),), (ToolSpec("read", "", {}),))
    assert WireNames(plain).outbound(plain) is plain
