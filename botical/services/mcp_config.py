"""The config of a custom tool of kind `mcp`: an MCP server, run as a command or reached by URL.

`{transport: "stdio", argv, env?, timeout?}` runs `argv` (literally: no placeholders) in the
project directory with the minimal environment plus `env`; `{transport: "http", url, headers?,
timeout?}` talks streamable HTTP to `url`. Values in `env` and `headers` may hold
`{secret:NAME}`, resolved when the server starts and never stored. `timeout` bounds each call.
"""

from __future__ import annotations

import importlib
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from botical.services.tool_checks import HEADER_NAME

TRANSPORTS = ("stdio", "http")
MAX_ARGV = 64
MAX_VALUES = 50
MAX_VALUE = 8192
MAX_SERVER_NAME = 32  # `mcp.<server>.<tool>` must leave room for the tool within 64 characters
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
SDK_MISSING = "MCP servers need the mcp package: pip install 'botical[mcp]'"
ONLY = {"stdio": ("argv", "env"), "http": ("url", "headers")}

_value = fields.String(validate=validate.Length(max=MAX_VALUE))


def mcp_config(max_timeout: int, default_timeout: int) -> Schema:
    """The schema of an MCP server's config; the fields of the other transport are refused."""

    class McpConfig(Schema):
        transport = fields.String(required=True, validate=validate.OneOf(TRANSPORTS))
        argv = fields.List(
            fields.String(validate=validate.Length(max=MAX_VALUE)),
            validate=validate.Length(min=1, max=MAX_ARGV),
        )
        env = fields.Dict(
            keys=fields.String(validate=validate.Regexp(ENV_NAME, error="Not a variable name.")),
            values=_value,
            validate=validate.Length(max=MAX_VALUES),
        )
        url = fields.String(validate=validate.Length(min=1, max=MAX_VALUE))
        headers = fields.Dict(
            keys=fields.String(validate=validate.Regexp(HEADER_NAME, error="Not a header name.")),
            values=_value,
            validate=validate.Length(max=MAX_VALUES),
        )
        timeout = fields.Integer(
            load_default=min(default_timeout, max_timeout),
            validate=validate.Range(min=1, max=max_timeout),
        )

        @validates_schema
        def fields_of_the_transport(self, data: dict[str, Any], **_: Any) -> None:
            transport = data.get("transport")
            if transport not in TRANSPORTS:
                return
            errors = {
                name: [f"Only for transport {other!r}."]
                for other, names in ONLY.items()
                if other != transport
                for name in names
                if name in data
            }
            required = ONLY[transport][0]
            if required not in data:
                errors[required] = [f"Required for transport {transport!r}."]
            if errors:
                raise ValidationError(errors)

        @post_load
        def empty_values(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            data.setdefault(ONLY[data["transport"]][1], {})  # env or headers
            return data

    return McpConfig()


def sdk_installed() -> bool:
    """Whether the `mcp` SDK can be imported (it is the optional extra `botical[mcp]`)."""
    try:
        importlib.import_module("mcp")
    except ImportError:
        return False
    return True
