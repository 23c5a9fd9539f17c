"""JSON Schema from marshmallow schemas, for tools (model-facing) and `system.describe`; and
loading client data through a marshmallow schema."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from botical.errors import ValidationError


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
