"""JSON Schema from marshmallow schemas, for tools (model-facing) and `system.describe`; and
loading client data through a marshmallow schema (with a quick path for flat ones)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, fields, missing, validate
from marshmallow import ValidationError as SchemaError

from botical.errors import ValidationError


class Bool(fields.Boolean):
    """A JSON boolean: `true` or `false`, never 0, 1 or "yes" (REST query strings are turned
    into JSON values first, see `from_query`)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


def Int(**kwargs: Any) -> fields.Integer:
    """A JSON integer: never 1.5, "3" or true."""
    return fields.Integer(strict=True, **kwargs)


def optional_fields(schema: type[Schema]) -> dict[str, fields.Field]:
    """Copies of a schema's fields, none required and none defaulted: for partial changes."""
    out = {}
    for name, field in schema._declared_fields.items():
        out[name] = copy.copy(field)
        out[name].required, out[name].load_default = False, missing
    return out


_INTEGER = re.compile(r"-?[0-9]{1,18}")
_BOOLEANS = {"true": True, "false": False}


def from_query(schema: Schema, query: dict[str, list[bytes]]) -> dict[str, Any]:
    """REST query arguments as the JSON values a WebSocket client would send, so both doors
    validate the same params the same way: digits become an integer for an integer field,
    `true`/`false` a boolean for a boolean field, anything else stays text (and fails there).
    An argument given twice is a VALIDATION_ERROR."""
    out: dict[str, Any] = {}
    for key, values in query.items():
        if len(values) != 1:
            raise ValidationError(details={key: ["Give this argument once."]})
        text = values[0].decode("utf-8", errors="replace")
        field = schema.fields.get(key)
        if isinstance(field, fields.Integer) and _INTEGER.fullmatch(text):
            out[key] = int(text)
        elif isinstance(field, fields.Boolean) and text in _BOOLEANS:
            out[key] = _BOOLEANS[text]
        else:
            out[key] = text
    return out


def load(schema: Schema, data: Any, **kwargs: Any) -> dict[str, Any]:
    """`schema.load(data)`, unknown fields rejected, marshmallow's messages as VALIDATION_ERROR
    details."""
    if not isinstance(data, dict):
        raise ValidationError("Expected a JSON object", details={"_schema": ["Not an object."]})
    try:
        return schema.load(data, unknown=RAISE, **kwargs)
    except SchemaError as exc:
        raise ValidationError(details=exc.messages) from None


_TYPES: tuple[tuple[type[fields.Field], dict[str, Any]], ...] = (
    (fields.Boolean, {"type": "boolean"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Number, {"type": "number"}),
    (fields.String, {"type": "string"}),
    (fields.Dict, {"type": "object"}),
)


def field_schema(field: fields.Field) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field."""
    if isinstance(field, fields.Nested):
        nested = field.schema
        out = json_schema(nested)
        if field.many:
            out = {"type": "array", "items": out}
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner)}
    else:
        out = next((dict(t) for cls, t in _TYPES if isinstance(field, cls)), {})
    if field.allow_none and "type" in out:
        out["type"] = [out["type"], "null"]
    for validator in field.validators:
        out.update(_validator_schema(validator, out.get("type")))
    description = field.metadata.get("description")
    if description:
        out["description"] = description
    return out


def _validator_schema(validator: Any, kind: Any) -> dict[str, Any]:
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Range):
        out = {}
        if validator.min is not None:
            out["minimum"] = validator.min
        if validator.max is not None:
            out["maximum"] = validator.max
        return out
    if isinstance(validator, validate.Length):
        prefix = "Items" if kind == "array" else "Length"
        out = {}
        if validator.min is not None:
            out[f"min{prefix}"] = validator.min
        if validator.max is not None:
            out[f"max{prefix}"] = validator.max
        if validator.equal is not None:
            out[f"min{prefix}"] = out[f"max{prefix}"] = validator.equal
        return out
    if isinstance(validator, validate.Regexp):
        return {"pattern": validator.regex.pattern}
    return {}


def json_schema(schema: Schema | type[Schema]) -> dict[str, Any]:
    """The JSON Schema (object) of a marshmallow schema; unknown fields are not allowed."""
    if isinstance(schema, type):
        schema = schema()
    properties = {}
    required = []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        properties[key] = field_schema(field)
        if field.required:
            required.append(key)
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


_QUICK_TYPES: dict[type[fields.Field], type] = {
    fields.String: str,
    Bool: bool,
    fields.Integer: int,
    fields.Dict: dict,
}
_QUICK_VALIDATORS = (validate.Length, validate.Range, validate.OneOf)
QuickLoad = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def quick_loader(schema: Schema) -> QuickLoad | None:
    """What `schema.load(data, unknown=RAISE)` returns for well-formed data, without
    marshmallow's per-call cost (about 8 us for two fields, most of a cached read).

    Only for flat schemas of String, `Bool`, strict Integer and plain Dict fields with Length,
    Range and OneOf validators and no hooks (most method params, request and ping frames);
    None for any other schema. The loader accepts only exact types (a str, a bool, an int that
    is not a bool, a dict, or None where allowed) that pass every validator, and returns None
    for anything else, which then goes through the schema, so errors are always marshmallow's
    own. tests/unit/test_quick_load.py checks, for every registered schema, that whatever it
    accepts the schema loads the same way.
    """
    if any(schema._hooks.values()):
        return None
    accepted: dict[str, tuple[type, bool, list[Any]]] = {}
    required: list[str] = []
    defaults: list[tuple[str, Any]] = []
    for name, field in schema.load_fields.items():
        value_type = _QUICK_TYPES.get(type(field))
        if (
            value_type is None
            or (isinstance(field, fields.Integer) and not field.strict)
            or (isinstance(field, fields.Dict) and (field.key_field or field.value_field))
            or field.data_key not in (None, name)
            or field.attribute not in (None, name)
            or not all(type(v) in _QUICK_VALIDATORS for v in field.validators)
        ):
            return None
        accepted[name] = (value_type, field.allow_none, list(field.validators))
        if field.required:
            required.append(name)
        elif field.load_default is not missing:
            defaults.append((name, field.load_default))

    def load(data: dict[str, Any]) -> dict[str, Any] | None:
        for name, value in data.items():
            spec = accepted.get(name)
            if spec is None or not _quick_accepts(spec, value):
                return None
        for name in required:
            if name not in data:
                return None
        out = dict(data)
        for name, default in defaults:
            if name not in out:
                out[name] = default() if callable(default) else default
        return out

    return load


def _quick_accepts(spec: tuple[type, bool, list[Any]], value: Any) -> bool:
    value_type, allow_none, validators = spec
    if value is None:
        return allow_none
    kind = type(value)
    if kind is not value_type:  # exact: a bool is not an int here
        return False
    for check in validators:
        if isinstance(check, validate.Length):
            size = len(value)
            if (
                (check.equal is not None and size != check.equal)
                or (check.min is not None and size < check.min)
                or (check.max is not None and size > check.max)
            ):
                return False
        elif isinstance(check, validate.Range):
            low, high = check.min, check.max
            if low is not None and (value < low if check.min_inclusive else value <= low):
                return False
            if high is not None and (value > high if check.max_inclusive else value >= high):
                return False
        elif value not in check.choices:  # OneOf
            return False
    return True
