"""The quick params loader gives exactly what the marshmallow schema loads, for every method
that has one, or steps aside (None) so the schema names the errors."""

from __future__ import annotations

import importlib
import pkgutil
import random
from typing import Any

import pytest
from marshmallow import RAISE, Schema, fields, post_load, validate
from marshmallow import ValidationError as SchemaError

import botical.websocket.handlers as handlers
from botical.schema import quick_loader

INVALID = object()


def _methods() -> list[Any]:
    found = []
    for info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"{handlers.__name__}.{info.name}")
        found.extend(handlers.methods_of(module))
    return found


QUICK = [(s.name, s.params()) for s in _methods() if quick_loader(s.params()) is not None]


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
    return [True, False, "true", "false", "yes", 1, 0, *odd]  # Boolean


def _reference(schema: Schema, data: dict[str, Any]) -> Any:
    try:
        return schema.load(data, unknown=RAISE)
    except SchemaError:
        return INVALID


def _cases(schema: Schema, rng: random.Random, count: int) -> list[dict[str, Any]]:
    options = {name: _candidates(field) for name, field in schema.load_fields.items()}
    cases: list[dict[str, Any]] = [{}]
    for _ in range(count):
        data = {name: rng.choice(values) for name, values in options.items() if rng.random() < 0.8}
        if rng.random() < 0.1:
            data["unknownKey"] = "x"
        cases.append(data)
    return cases


def test_most_methods_get_a_quick_loader():
    assert len(QUICK) >= 15
    assert "sessions.get" in dict(QUICK)


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

    for schema in (WithHook, OtherField, OtherValidator, Renamed, SubclassedField):
        assert quick_loader(schema()) is None, schema.__name__


def test_defaults_are_filled_and_callables_called_each_time():
    class Params(Schema):
        flag = fields.Boolean(load_default=False)
        items = fields.Integer(load_default=lambda: 7)
        name = fields.String(required=True, allow_none=True)

    quick = quick_loader(Params())
    assert quick({"name": None}) == {"name": None, "flag": False, "items": 7}
    assert quick({"flag": True}) is None  # a required field is missing: the schema says so
