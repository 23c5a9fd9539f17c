"""Custom tools: tools a project admin defines, each a command to run or an HTTP request to send.

A tool's `parameters` is a JSON Schema (draft 2020-12) of type object, checked on save and used
to validate the model's arguments before anything runs. Its `config` holds templates in which
`{name}` stands for the string value of the top-level argument `name`, and, in HTTP header
values only, `{secret:NAME}` for a secret read at call time (`BOTICAL_SECRET_NAME` or
`<data_dir>/secrets/NAME`), so secrets are never stored. Templates are checked on save: every
placeholder must name a property of `parameters`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import peewee as pw
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError
from marshmallow import Schema, fields, post_load, validate

from botical.auth.identity import Identity
from botical.auth.permissions import Permissions
from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import CustomTool
from botical.errors import Conflict, NotFound, ValidationError
from botical.ids import new_id
from botical.schema import Bool, load

KINDS = ("command", "http")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_TEMPLATE = 8192
MAX_ARGV = 64
MAX_HEADERS = 50
HTTP_MAX_TIMEOUT = 120
MIN_RESPONSE_BYTES = 1024
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
# `{name}`: an argument; `{secret:NAME}`: a secret (header values only)
PLACEHOLDER = re.compile(r"\{(?:(secret):)?([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class ToolFields(Schema):
    """A custom tool as clients send it; `config` is checked by the schema of its `kind`."""

    name = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,63}$",
            error="1 to 64 characters: a lower-case letter, then letters, digits or _.",
        ),
    )
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    parameters = fields.Dict(load_default=lambda: dict(EMPTY_PARAMETERS))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    config = fields.Dict(required=True)
    enabled = Bool(load_default=True)


_template = fields.String(validate=validate.Length(max=MAX_TEMPLATE))


def command_config(max_timeout: int, default_timeout: int) -> Schema:
    """The schema of a command tool's config: `argv` templates and a timeout in seconds."""
    return Schema.from_dict(
        {
            "argv": fields.List(
                _template, required=True, validate=validate.Length(min=1, max=MAX_ARGV)
            ),
            "timeout": fields.Integer(
                load_default=min(default_timeout, max_timeout),
                validate=validate.Range(min=1, max=max_timeout),
            ),
        },
        name="CommandConfig",
    )()


class HttpConfig(Schema):
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEMPLATE))
    headers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(HEADER_NAME, error="Not a header name.")),
        values=_template,
        load_default=dict,
        validate=validate.Length(max=MAX_HEADERS),
    )
    body = fields.String(validate=validate.OneOf(["json", "none"]))
    timeout = fields.Integer(load_default=30, validate=validate.Range(min=1, max=HTTP_MAX_TIMEOUT))
    maxResponseBytes = fields.Integer(
        load_default=64 * 1024,
        validate=validate.Range(min=MIN_RESPONSE_BYTES, max=MAX_RESPONSE_BYTES),
    )

    @post_load
    def default_body(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data.setdefault("body", "json" if data["method"] in ("POST", "PUT", "PATCH") else "none")
        return data


def tool_to_dict(row: CustomTool) -> dict[str, Any]:
    return {
        "id": row.id,
        "projectId": row.project_id,
        "name": row.name,
        "description": row.description,
        "parameters": row.parameters,
        "kind": row.kind,
        "config": row.config,
        "enabled": row.enabled,
        "createdBy": row.created_by_id,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


class CustomToolService:
    """Stores and validates custom tools; their names never shadow a registered tool."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        registered: Iterable[str],
        max_timeout: int,
        default_timeout: int,
    ) -> None:
        self._db = db
        self._bus = bus
        self._registered = frozenset(registered)
        self._configs: dict[str, Schema] = {
            "command": command_config(max_timeout, default_timeout),
            "http": HttpConfig(),
        }

    def _publish(self, name: str, data: dict[str, Any], project_id: str) -> None:
        self._bus.publish(Event(name, data, project_id=project_id))

    async def create(
        self, project_id: str, identity: Identity, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Define a tool (`data` as ToolFields loads it) in a project; a command tool needs the
        caller's code execution."""
        tool = dict(data)
        _check_exec(identity, tool["kind"])
        tool = self._validated(tool)
        self._check_name(tool["name"])

        def insert() -> CustomTool:
            _check_unique(project_id, tool["name"])
            now = now_ms()
            return CustomTool.create(
                id=new_id("tool"),
                project=project_id,
                created_by=identity.user_id,
                created_at=now,
                updated_at=now,
                **tool,
            )

        created = tool_to_dict(await self._db.atomic(_unique(insert)))
        self._publish("tool.created", {"tool": created}, project_id)
        return created

    async def list(self, project_id: str, enabled_only: bool = False) -> list[dict[str, Any]]:
        """The project's custom tools by name (only the enabled ones when asked)."""

        def select() -> list[CustomTool]:
            query = CustomTool.select().where(CustomTool.project == project_id)
            if enabled_only:
                query = query.where(CustomTool.enabled == True)  # noqa: E712 (SQL, not Python)
            return list(query.order_by(CustomTool.name))

        return [tool_to_dict(row) for row in await self._db.run(select)]

    async def get(self, tool_id: str) -> dict[str, Any]:
        """One custom tool; NOT_FOUND when there is none."""
        return tool_to_dict(await self._db.run(_row, tool_id))

    async def update(
        self, tool_id: str, identity: Identity, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change some fields (`changes` as ToolChanges loads them); the whole tool is
        validated again. Command tools need exec."""

        def apply() -> CustomTool:
            row = _row(tool_id)
            merged = {key: getattr(row, key) for key in ToolFields().fields} | changes
            _check_exec(identity, row.kind)
            _check_exec(identity, merged["kind"])
            tool = self._validated(merged)
            if tool["name"] != row.name:
                self._check_name(tool["name"])
                _check_unique(row.project_id, tool["name"])
            for key, value in tool.items():
                setattr(row, key, value)
            row.updated_at = now_ms()
            row.save()
            return row

        updated = tool_to_dict(await self._db.atomic(_unique(apply)))
        self._publish("tool.updated", {"tool": updated}, updated["projectId"])
        return updated

    async def delete(self, tool_id: str) -> None:
        """Remove a custom tool."""

        def remove() -> str:
            row = _row(tool_id)
            row.delete_instance()
            return row.project_id

        project_id = await self._db.atomic(remove)
        self._publish("tool.deleted", {"toolId": tool_id, "projectId": project_id}, project_id)

    def _check_name(self, name: str) -> None:
        if name in self._registered:
            raise Conflict(f"{name!r} is the name of a built-in or plugin tool")

    def _validated(self, tool: dict[str, Any]) -> dict[str, Any]:
        """The tool with its config loaded by its kind's schema; VALIDATION_ERROR naming every
        field that is wrong."""
        errors: dict[str, Any] = {}
        parameter_errors = check_parameters(tool["parameters"])
        if parameter_errors:
            errors["parameters"] = parameter_errors
        config = tool["config"]
        try:
            config = load(self._configs[tool["kind"]], config)
        except ValidationError as exc:
            errors["config"] = exc.details
        else:
            if not parameter_errors:
                properties = set(tool["parameters"].get("properties", {}))
                template_errors = check_templates(tool["kind"], config, properties)
                if template_errors:
                    errors["config"] = template_errors
        if errors:
            raise ValidationError(details=errors)
        return {**tool, "config": config}


def _check_exec(identity: Identity, kind: str) -> None:
    if kind == "command":  # defining a command tool is as good as running one
        Permissions.require_code_execution(identity)


def _row(tool_id: str) -> CustomTool:
    row = CustomTool.get_or_none(CustomTool.id == tool_id)
    if row is None:
        raise NotFound("Tool not found")
    return row


def _check_unique(project_id: str, name: str) -> None:
    taken = CustomTool.select().where(CustomTool.project == project_id, CustomTool.name == name)
    if taken.exists():
        raise Conflict(f"Tool {name!r} already exists in this project")


def _unique(fn: Any) -> Any:
    """`fn` with a concurrent insert of the same name reported as CONFLICT."""

    def call() -> Any:
        try:
            return fn()
        except pw.IntegrityError:
            raise Conflict("A tool with this name already exists in this project") from None

    return call


def check_parameters(schema: Any) -> list[str]:
    """What is wrong with a tool's parameter schema (nothing: an empty list)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return ['Must be a JSON Schema with "type": "object".']
    if len(json.dumps(schema)) > MAX_PARAMETERS_BYTES:
        return [f"Must be at most {MAX_PARAMETERS_BYTES} bytes of JSON."]
    try:
        Draft202012Validator.check_schema(schema)
    except JsonSchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"Not a valid JSON Schema: {exc.message}" + (f" (at /{where})" if where else "")]
    except RecursionError:
        return ["Nested too deeply."]
    remote = sorted(set(_remote_refs(schema)))
    if remote:
        return [f"Only local references (#...) are allowed: {', '.join(remote)}."]
    return []


def _remote_refs(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                if not item.startswith("#"):
                    yield item
            else:
                yield from _remote_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _remote_refs(item)


def check_templates(kind: str, config: dict[str, Any], properties: set[str]) -> dict[str, Any]:
    """Unknown or misplaced placeholders in a loaded config, as marshmallow-style messages."""
    errors: dict[str, Any] = {}
    if kind == "command":
        argv = {
            i: problems
            for i, template in enumerate(config["argv"])
            if (problems := _placeholder_errors(template, properties))
        }
        program = config["argv"][0]
        if not program.strip() or PLACEHOLDER.search(program):
            argv.setdefault(0, []).append("The program must be given, without placeholders.")
        if argv:
            errors["argv"] = argv
        return errors
    url_problems = _url_errors(config["url"], properties)
    if url_problems:
        errors["url"] = url_problems
    headers = {
        name: problems
        for name, template in config["headers"].items()
        if (problems := _placeholder_errors(template, properties, secrets=True))
    }
    if headers:
        errors["headers"] = headers
    if config["method"] == "GET" and config["body"] == "json":
        errors["body"] = ['A GET request has no body: use "none".']
    return errors


def _placeholder_errors(template: str, properties: set[str], secrets: bool = False) -> list[str]:
    problems = []
    if any(c in template for c in "\r\n\x00"):
        problems.append("May not contain line breaks or NUL characters.")
    for match in PLACEHOLDER.finditer(template):
        kind, name = match.groups()
        if kind and not secrets:
            problems.append(f"{match.group(0)}: secrets may only be used in header values.")
        elif kind and not SECRET_NAME.match(name):
            problems.append(f"{match.group(0)}: secret names are A-Z, 0-9 and _, starting A-Z.")
        elif not kind and name not in properties:
            problems.append(f"Unknown placeholder {match.group(0)}: not a parameter property.")
    return problems


def _url_errors(url: str, properties: set[str]) -> list[str]:
    try:
        parts = urlsplit(url)
        if PLACEHOLDER.search(f"{parts.scheme}://{parts.netloc}"):
            return ["Placeholders may not be used in the scheme, host or port."]
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return ["Not a valid URL."]
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ["Must be an http:// or https:// URL with a host."]
    if parts.username is not None or parts.password is not None:
        return ["Credentials may not be stored in the URL: send them in a {secret:NAME} header."]
    problems = _placeholder_errors(url, properties)
    if any(c.isspace() for c in url):
        problems.append("May not contain whitespace.")
    return problems
