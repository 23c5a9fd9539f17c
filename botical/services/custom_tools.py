"""Custom tools: tools a project admin defines, each a command to run, an HTTP request to send,
or an MCP server whose tools the project gets (see botical/services/mcp_config.py).

A tool's `parameters` is a JSON Schema (draft 2020-12) of type object, checked on save and used
to validate the model's arguments before anything runs. Its `config` holds templates in which
`{name}` stands for the string value of the top-level argument `name`, and, in HTTP header
values (and an MCP server's env and header values) only, `{secret:NAME}` for a secret read when
it is used (`BOTICAL_SECRET_NAME` or `<data_dir>/secrets/NAME`), so secrets are never stored.
Templates are checked on save (botical/services/tool_checks.py): every placeholder must name a
property of `parameters`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import peewee as pw
from marshmallow import Schema, fields, post_load, validate

from botical.auth.identity import Identity
from botical.auth.permissions import Permissions
from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import CustomTool, Project
from botical.errors import Conflict, NotFound, ValidationError
from botical.ids import new_id
from botical.schema import Bool, load
from botical.services.mcp_config import MAX_SERVER_NAME, SDK_MISSING, mcp_config, sdk_installed
from botical.services.tool_checks import (  # noqa: F401 (PLACEHOLDER: the runtime's too)
    HEADER_NAME,
    PLACEHOLDER,
    check_parameters,
    check_templates,
)

if TYPE_CHECKING:
    from botical.tools.mcp import McpServers

KINDS = ("command", "http", "mcp")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_TEMPLATE = 8192
MAX_ARGV = 64
MAX_HEADERS = 50
HTTP_MAX_TIMEOUT = 120
MIN_RESPONSE_BYTES = 1024
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
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
        mcp: McpServers | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._registered = frozenset(registered)
        self._configs: dict[str, Schema] = {
            "command": command_config(max_timeout, default_timeout),
            "http": HttpConfig(),
            "mcp": mcp_config(max_timeout, default_timeout),
        }
        self.mcp = mcp  # the running MCP servers of `mcp` tools, stopped when they change

    def _publish(self, name: str, data: dict[str, Any], project_id: str) -> None:
        self._bus.publish(Event(name, data, project_id=project_id))

    async def create(
        self, project_id: str, identity: Identity, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Define a tool (`data` as ToolFields loads it) in a project; a command tool or a
        stdio MCP server needs the caller's code execution."""
        tool = dict(data)
        _check_exec(identity, tool["kind"], tool["config"])
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
        """Change some fields (`changes` with any fields of ToolFields, loaded); the whole
        tool is validated again. Command tools and stdio MCP servers need exec; the server of
        a changed MCP tool is stopped (it restarts on use)."""

        def apply() -> CustomTool:
            row = _row(tool_id)
            merged = {key: getattr(row, key) for key in ToolFields().fields} | changes
            _check_exec(identity, row.kind, row.config)
            _check_exec(identity, merged["kind"], merged["config"])
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
        self._forget(tool_id)
        self._publish("tool.updated", {"tool": updated}, updated["projectId"])
        return updated

    async def delete(self, tool_id: str) -> None:
        """Remove a custom tool."""

        def remove() -> str:
            row = _row(tool_id)
            row.delete_instance()
            return row.project_id

        project_id = await self._db.atomic(remove)
        self._forget(tool_id)
        self._publish("tool.deleted", {"toolId": tool_id, "projectId": project_id}, project_id)

    async def workspace(self, project_id: str) -> Path | None:
        """The project's directory, where its MCP servers run (None: it has none)."""
        path = await self._db.run(
            lambda: Project.select(Project.path).where(Project.id == project_id).scalar()
        )
        return Path(path) if path else None

    async def close(self) -> None:
        """Stop the MCP servers (on shutdown)."""
        if self.mcp is not None:
            await self.mcp.close()

    def _forget(self, tool_id: str) -> None:
        if self.mcp is not None:
            self.mcp.forget(tool_id)

    def _check_name(self, name: str) -> None:
        if name in self._registered:
            raise Conflict(f"{name!r} is the name of a built-in or plugin tool")

    def _validated(self, tool: dict[str, Any]) -> dict[str, Any]:
        """The tool with its config loaded by its kind's schema; VALIDATION_ERROR naming every
        field that is wrong."""
        errors: dict[str, Any] = _mcp_errors(tool) if tool["kind"] == "mcp" else {}
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


def _mcp_errors(tool: dict[str, Any]) -> dict[str, Any]:
    """What an MCP server's record may not have: the SDK missing, a long name, parameters."""
    errors: dict[str, Any] = {}
    if not sdk_installed():
        errors["kind"] = [SDK_MISSING]
    if len(tool["name"]) > MAX_SERVER_NAME:
        errors["name"] = [f"An MCP server's name has at most {MAX_SERVER_NAME} characters."]
    if tool["parameters"] != EMPTY_PARAMETERS:
        errors["parameters"] = ["An MCP server's tools bring their own parameters: leave it out."]
    return errors


def _check_exec(identity: Identity, kind: str, config: Any) -> None:
    # Defining a command tool, or an MCP server run as a command, is as good as running one.
    http_server = kind == "mcp" and isinstance(config, dict) and config.get("transport") == "http"
    if kind == "command" or (kind == "mcp" and not http_server):
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
