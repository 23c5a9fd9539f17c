"""Custom tools without a server: templates are filled in one pass, arguments are checked
against the tool's JSON Schema, and the checks made on save."""

from __future__ import annotations

import functools
from urllib.parse import quote

import pytest

from botical.services.custom_tools import check_parameters, check_templates
from botical.tools.base import ToolFailure
from botical.tools.custom import custom_tool, render

RECORD = {
    "id": "tool_1",
    "name": "lookup",
    "description": "Look something up",
    "kind": "http",
    "enabled": True,
    "config": {},
    "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string", "maxLength": 5}, "n": {"$ref": "#/$defs/n"}},
        "required": ["q"],
        "additionalProperties": False,
        "$defs": {"n": {"type": "integer", "minimum": 1}},
    },
}


def test_a_value_is_never_expanded_again():
    args = {"a": "{b}", "b": "secret-looking {secret:TOKEN}"}
    assert render("<{a}|{b}>", args) == "<{b}|secret-looking {secret:TOKEN}>"


def test_values_are_text_and_may_be_encoded():
    args = {"s": "a/b c?", "n": 3, "flag": True, "list": [1, "x"]}
    assert render("{s}", args, encode=functools.partial(quote, safe="")) == "a%2Fb%20c%3F"
    assert render("{n} {flag} {list}", args) == '3 true [1, "x"]'


def test_a_missing_argument_or_a_nul_is_a_tool_error():
    with pytest.raises(ToolFailure, match="Missing argument 'b'"):
        render("{a}{b}", {"a": "x"})
    with pytest.raises(ToolFailure, match="NUL"):
        render("{a}", {"a": "x\x00y"})


def test_secrets_are_filled_only_where_allowed():
    assert render("Bearer {secret:T}", {}, secret=str.lower) == "Bearer t"
    with pytest.raises(ToolFailure, match="header values"):
        render("{secret:T}", {})


def test_arguments_are_checked_against_the_schema_with_every_problem():
    tool = custom_tool(RECORD)
    assert (tool.source, tool.needs_exec, tool.default_permission) == ("custom", False, "ask")
    assert tool.check_args({"q": "abc", "n": 2}) == {"q": "abc", "n": 2}
    with pytest.raises(ToolFailure) as caught:
        tool.check_args({"q": "too long", "n": 0, "x": 1})
    message = str(caught.value)
    assert message.startswith("Invalid arguments: ")
    for problem in ("'too long' is too long", "0 is less than the minimum of 1", "'x' was"):
        assert problem in message


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {"a": {"type": "nope"}}}, "Not a valid JSON Schema"),
        ({"properties": {}}, '"type": "object"'),
        ([], '"type": "object"'),
        ({"type": "object", "properties": {"a": {"$ref": "other.json"}}}, "local references"),
        ({"type": "object", "description": "x" * 70_000}, "at most"),
    ],
)
def test_bad_parameter_schemas(schema, problem):
    (message,) = check_parameters(schema)
    assert problem in message


def test_a_good_parameter_schema_passes():
    assert check_parameters(RECORD["parameters"]) == []


def test_templates_name_known_properties_only():
    config = {"argv": ["grep", "-e", "{q}", "{path}"], "timeout": 5}
    assert check_templates("command", config, {"q", "path"}) == {}
    errors = check_templates("command", config, {"q"})
    assert list(errors["argv"]) == [3]
    http = {"method": "GET", "url": "https://h.example/{q}", "headers": {}, "body": "none"}
    assert check_templates("http", http, {"q"}) == {}
    assert "url" in check_templates("http", {**http, "url": "https://h.example:99999/"}, {"q"})
