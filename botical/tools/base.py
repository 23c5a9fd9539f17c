"""What a tool is, and what it receives when it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from marshmallow import RAISE, Schema
from marshmallow import ValidationError as SchemaError

from botical.schema import json_schema

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.auth.identity import Identity
    from botical.config import Settings

Permission = Literal["allow", "ask", "deny"]


class ToolFailure(Exception):
    """A tool could not do what was asked; the message goes back to the model as an error."""


@dataclass(frozen=True)
class ToolResult:
    output: str
    is_error: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolContext:
    """Where and for whom a tool runs."""

    identity: Identity
    project_id: str
    session_id: str
    message_id: str
    run_id: str
    workspace: Path | None
    services: Botical  # sessions, runner, todos... (tools reach services, never frames)
    settings: Settings

    def require_workspace(self) -> Path:
        """The project's directory; a tool error when the project has none."""
        if self.workspace is None:
            raise ToolFailure("This project has no workspace directory (set the project's path)")
        return self.workspace


Execute = Callable[[ToolContext, dict[str, Any]], Awaitable["ToolResult | str"]]


@dataclass(frozen=True)
class Tool:
    """A tool the model may call.

    `params` validates the arguments (marshmallow, or `validate_args` for custom JSON Schemas).
    `subject` names the argument that permission patterns match (a path, a command).
    `read_only` tools are allowed by default; the rest ask. `needs_exec` tools need the
    user's `can_execute_code`. `source` is builtin, plugin or custom; `details` adds fields to
    the public description (a custom tool's id, kind, config and enabled flag).
    """

    name: str
    description: str
    execute: Execute
    params: type[Schema] | None = None
    parameters: dict[str, Any] | None = None
    read_only: bool = False
    needs_exec: bool = False
    subject: str | None = None
    validate_args: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    source: str = "builtin"
    allowed_by_default: bool = False
    details: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def default_permission(self) -> Permission:
        """Without a matching rule: read-only tools (and those marked so) run, others ask."""
        return "allow" if self.read_only or self.allowed_by_default else "ask"

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments, as providers send it to the model."""
        if self.parameters is not None:
            return self.parameters
        return json_schema(self.params) if self.params else {"type": "object", "properties": {}}

    def to_dict(self) -> dict[str, Any]:
        """The public description: REST and `tools.list` show every tool this way."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.json_schema(),
            "source": self.source,
            "readOnly": self.read_only,
            "needsExec": self.needs_exec,
            **(self.details or {}),
        }

    def check_args(self, args: Any) -> dict[str, Any]:
        """Validated arguments, or ToolFailure describing what is wrong."""
        if not isinstance(args, dict):
            raise ToolFailure("Arguments must be a JSON object")
        if self.validate_args is not None:
            return self.validate_args(args)
        if self.params is None:
            return args
        try:
            return self.params().load(args, unknown=RAISE)
        except SchemaError as exc:
            raise ToolFailure(f"Invalid arguments: {exc.messages}") from None

    def subject_of(self, args: dict[str, Any]) -> str:
        """The argument permission patterns match against ('' when the tool has none)."""
        value = args.get(self.subject) if self.subject else None
        return str(value) if value is not None else ""
