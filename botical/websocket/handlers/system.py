"""system.describe: every method, channel and event, with JSON Schemas and required roles."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields

import botical
from botical.hookspecs import hookimpl
from botical.schema import json_schema
from botical.websocket.handlers import MethodContext, method, register_module
from botical.websocket.protocol import PROTOCOL_VERSION


class NoParams(Schema):
    pass


class Description(Schema):
    protocol = fields.Integer()
    version = fields.String()
    methods = fields.List(fields.Dict())
    channels = fields.List(fields.Dict())


@method("system.describe", NoParams, Description, role=None, scope=None)
async def describe(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Describe every registered method and channel."""
    app = ctx.app
    methods = []
    for reg in app.registries["methods"]:
        spec = reg.value
        methods.append(
            {
                "name": spec.name,
                "description": spec.doc,
                "role": spec.role.label if spec.role else None,
                "params": json_schema(spec.params),
                "result": json_schema(spec.result) if spec.result else None,
                "plugin": reg.plugin,
            }
        )
    channels = [
        {
            "pattern": f"{reg.name}:{{id}}",
            "description": reg.value.description,
            "events": list(reg.value.events),
            "plugin": reg.plugin,
        }
        for reg in app.registries["channels"]
    ]
    return {
        "protocol": PROTOCOL_VERSION,
        "version": botical.__version__,
        "methods": methods,
        "channels": channels,
    }


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
