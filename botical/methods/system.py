"""system.describe: every method, channel and event, with JSON Schemas and required roles."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields

import botical
from botical.hookspecs import hookimpl
from botical.methods import MethodContext, MethodSpec, method
from botical.methods import events as e
from botical.methods import results as r
from botical.schema import json_schema
from botical.websocket.protocol import PROTOCOL_VERSION


class NoParams(Schema):
    pass


class Description(Schema):
    protocol = r.integer()
    version = r.string()
    methods = r.many(fields.Dict())
    channels = r.many(fields.Dict())
    events = r.many(fields.Dict())


def describe_method(spec: MethodSpec, plugin: str) -> dict[str, Any]:
    """One method as `system.describe` lists it."""
    route = spec.route
    return {
        "name": spec.name,
        "description": spec.doc,
        "role": spec.role.label if spec.role else None,
        "params": json_schema(spec.params),
        "result": _result_schema(spec),
        "rest": {"verb": route.verb, "path": route.path, "status": route.status} if route else None,
        "plugin": plugin,
    }


def _result_schema(spec: MethodSpec) -> dict[str, Any] | None:
    if spec.result is r.Nothing:
        return {"type": "null", "description": "no result (over REST: 204 No Content)"}
    return json_schema(spec.result) if spec.result else None


def _events(ctx: MethodContext) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {
        name: {"name": name, "channels": ["connection"], "data": json_schema(schema)}
        for name, schema in e.CONNECTION_EVENTS.items()
    }
    for reg in ctx.app.registries["channels"]:
        for name, schema in reg.value.events.items():
            entry = found.setdefault(name, {"name": name, "channels": [], "data": None})
            entry["channels"].append(reg.name)
            if schema is not None:
                entry["data"] = json_schema(schema)
    return list(found.values())


@method("system.describe", NoParams, Description, role=None, scope=None)
async def describe(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Describe every registered method, channel and event."""
    app = ctx.app
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
        "methods": [describe_method(reg.value, reg.plugin) for reg in app.registries["methods"]],
        "channels": channels,
        "events": _events(ctx),
    }


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
