"""The quick loader gives exactly what the marshmallow schema loads, for every built-in
method's params and every frame schema that has one, or steps aside (None) so the schema names
the errors: the fast path and the normal one cannot disagree."""

from __future__ import annotations

import importlib
import random
from typing import Any

import pytest
from marshmallow import RAISE, Schema, fields, post_load, validate
from marshmallow import ValidationError as SchemaError

from botical.methods import methods_of
from botical.plugins import DEFAULT_PLUGINS
from botical.schema import Bool, Int, quick_loader
from botical.websocket.protocol import FRAME_SCHEMAS

INVALID = object()


def _schemas() -> list[tuple[str, Schema]]:
    found = [(f"frame:{kind}", schema) for kind, schema in FRAME_SCHEMAS.items()]
    for name in DEFAULT_PLUGINS:
        found += [(s.name, s.params()) for s in methods_of(importlib.import_module(name))]
    return found


QUICK = [(name, schema) for name, schema in _schemas() if quick_loader(schema) is not None]


def _bounds(field: fields.Field) -> tuple[Any, Any, list[Any]]:
    low = high = None
    choices: list[Any] = []
    for check in field.validators:
        if isinstance(check, (validate.Length, validate.Range)):
            low = check.min if check.min is not None else low
            high = check.max if check.max is not None else high
        if isinstance(check, validate.OneOf):
            choices = list(check.choices)
    return low, high, choices


def _candidates(field: fields.Field) -> list[Any]:
    low, high, choices = _bounds(field)
    odd = [None, True, False, 0, 1, 1.5, "5", "", [], {}, ["a"], {"a": 1}, b"x", 10**20]
    if isinstance(field, fields.String):
        sizes = {0, 1, 5, *(n for b in (low, high) if b is not None for n in (b - 1, b, b + 1))}
        return [*choices, *("x" * n for n in sizes if n >= 0), "sess_01abc", "\u00e9\u4e2d", *odd]
    if isinstance(field, fields.Integer):
        edges = {n for b in (low, high) if b is not None for n in (b - 1, b, b + 1)}
        return [*edges, -1, 2, 50, *odd]
    if isinstance(field, fields.Dict):
        return [{}, {"a": [1, {"b": None}]}, *odd]
    return [True, False, "true", "false", "yes", 1, 0, *odd]  # Boolean


def _reference(schema: Schema, data: dict[str, Any]) -> Any:
    try:
        return schema.load(data, unknown=RAISE)
    except SchemaError:
        return INVALID


def _valid_alone(field: fields.Field, values: list[Any]) -> list[Any]:
    """The candidates the field accepts on its own (so that schemas of many fields still get
    cases where every field is well-formed)."""
    valid = []
    for value in values:
        try:
            field.deserialize(value)
        except SchemaError:
            continue
        valid.append(value)
    return valid or values


def _cases(schema: Schema, rng: random.Random, count: int) -> list[dict[str, Any]]:
    options = {name: _candidates(field) for name, field in schema.load_fields.items()}
    valid = {name: _valid_alone(schema.load_fields[name], v) for name, v in options.items()}
    cases: list[dict[str, Any]] = [{}]
    for _ in range(count):
        data = {
            name: rng.choice(valid[name] if rng.random() < 0.5 else values)
            for name, values in options.items()
            if rng.random() < 0.8
        }
        if rng.random() < 0.1:
            data["unknownKey"] = "x"
        cases.append(data)
    return cases


def test_most_methods_and_the_common_frames_get_a_quick_loader():
    assert len(QUICK) >= 20
    assert {"sessions.get", "frame:request", "frame:ping"} <= dict(QUICK).keys()


@pytest.mark.parametrize(("name", "schema"), QUICK, ids=[name for name, _ in QUICK])
def test_the_quick_loader_agrees_with_the_schema(name, schema):
    quick = quick_loader(schema)
    rng = random.Random(name)
    taken = 0
    for data in _cases(schema, rng, 400):
        got = quick(dict(data))
        expected = _reference(schema, dict(data))
        if got is not None:
            taken += 1
            assert expected is not INVALID, (name, data)
            assert got == expected, (name, data)
            assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}
    assert taken > 0, f"{name}: no case took the quick path"


def test_schemas_it_cannot_mirror_get_none():
    class WithHook(Schema):
        name = fields.String()

        @post_load
        def upper(self, data, **kwargs):
            return data

    class OtherField(Schema):
        when = fields.DateTime()

    class OtherValidator(Schema):
        name = fields.String(validate=validate.Regexp("^a"))

    class Renamed(Schema):
        name = fields.String(data_key="other")

    class SubclassedField(Schema):
        mail = fields.Email()

    class LenientInteger(Schema):  # would accept 1.5 and "3": only strict ones are mirrored
        count = fields.Integer()

    class LenientBoolean(Schema):  # would accept 1 and "yes": only Bool is mirrored
        flag = fields.Boolean()

    class TypedDict(Schema):
        seqs = fields.Dict(values=fields.Integer())

    cases = (WithHook, OtherField, OtherValidator, Renamed, SubclassedField, LenientInteger)
    for schema in (*cases, LenientBoolean, TypedDict):
        assert quick_loader(schema()) is None, schema.__name__


def test_defaults_are_filled_and_callables_called_each_time():
    class Params(Schema):
        flag = Bool(load_default=False)
        items = Int(load_default=lambda: 7)
        name = fields.String(required=True, allow_none=True)

    quick = quick_loader(Params())
    assert quick({"name": None}) == {"name": None, "flag": False, "items": 7}
    assert quick({"flag": True}) is None  # a required field is missing: the schema says so
