from __future__ import annotations

import json

import pytest

from botical.tools.base import ToolFailure

from .conftest import BUILTIN

REQUIRED = {
    "read": ["path"],
    "write": ["path", "content"],
    "edit": ["path", "old", "new"],
    "glob": ["pattern"],
    "grep": ["pattern"],
    "bash": ["command"],
    "task": ["prompt"],
    "todowrite": ["todos"],
    "todoread": [],
}
WORKSPACE_ARGS = {
    "read": {"path": "a.txt"},
    "write": {"path": "a.txt", "content": "x"},
    "edit": {"path": "a.txt", "old": "x", "new": "y"},
    "glob": {"pattern": "*"},
    "grep": {"pattern": "x"},
    "bash": {"command": "echo hi"},
}


def test_the_builtin_plugin_registers_every_tool():
    assert set(BUILTIN) == set(REQUIRED)


def test_only_reading_tools_are_read_only_and_only_bash_executes_code():
    assert {n for n, t in BUILTIN.items() if t.read_only} == {"read", "glob", "grep", "todoread"}
    assert {n for n, t in BUILTIN.items() if t.default_permission == "allow"} == {
        "read",
        "glob",
        "grep",
        "todoread",
        "todowrite",
    }
    assert {n for n, t in BUILTIN.items() if t.needs_exec} == {"bash"}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_json_schema_is_a_closed_object_schema(name):
    schema = BUILTIN[name].json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert sorted(schema.get("required", [])) == sorted(REQUIRED[name])
    assert set(schema.get("required", [])) <= set(schema["properties"])
    for prop in schema["properties"].values():
        assert prop["type"] in {"string", "integer", "boolean", "array"}


def test_json_schema_carries_types_and_bounds():
    props = BUILTIN["read"].json_schema()["properties"]
    assert props["path"]["type"] == "string"
    assert props["offset"] == {"type": "integer", "minimum": 1, "description": "First line"}
    assert BUILTIN["edit"].json_schema()["properties"]["replaceAll"]["type"] == "boolean"


def test_check_args_refuses_an_unknown_argument():
    with pytest.raises(ToolFailure, match="sudo"):
        BUILTIN["bash"].check_args({"command": "ls", "sudo": True})


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("read", {"path": 5}, "path"),
        ("read", {"path": "a", "offset": "first"}, "offset"),
        ("read", {"path": "a", "limit": 0}, "limit"),
        ("bash", {"command": "ls", "timeout": "soon"}, "timeout"),
        ("edit", {"path": "a", "old": "x", "new": "y", "replaceAll": "perhaps"}, "replaceAll"),
        ("write", {"path": "a", "content": ["x"]}, "content"),
        ("edit", {"path": "a", "old": "", "new": "y"}, "old"),
    ],
)
def test_check_args_refuses_a_wrong_type_or_value_naming_the_field(name, args, field):
    with pytest.raises(ToolFailure, match=f"Invalid arguments: .*'{field}'"):
        BUILTIN[name].check_args(args)


@pytest.mark.parametrize(("name", "missing"), [("write", "content"), ("grep", "pattern")])
def test_check_args_refuses_a_missing_required_argument(name, missing):
    args = {k: v for k, v in WORKSPACE_ARGS[name].items() if k != missing}
    with pytest.raises(ToolFailure, match=f"'{missing}'.*required"):
        BUILTIN[name].check_args(args)


@pytest.mark.parametrize("args", [None, ["ls"], "ls"])
def test_check_args_refuses_anything_but_an_object(args):
    with pytest.raises(ToolFailure, match="JSON object"):
        BUILTIN["bash"].check_args(args)


def test_check_args_fills_defaults():
    args = BUILTIN["edit"].check_args({"path": "a", "old": "x", "new": "y"})
    assert args == {"path": "a", "old": "x", "new": "y", "replaceAll": False}


@pytest.mark.gen_test
@pytest.mark.parametrize("name", sorted(WORKSPACE_ARGS))
async def test_tools_without_a_workspace_fail_clearly(call, make_ctx, name):
    with pytest.raises(ToolFailure, match="no workspace directory"):
        await call(name, WORKSPACE_ARGS[name], ctx=make_ctx(root=None))
