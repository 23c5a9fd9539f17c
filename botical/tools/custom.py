"""Custom tools at run time: a stored definition becomes a `Tool` (an MCP server becomes its
tools, see botical/tools/mcp.py), and the executors of command and http tools.

`command`: argv templates run without a shell in the project directory, with the minimal
environment, a timeout and the output cap; a placeholder's value replaces text inside its own
argv element only. `http`: one request with tornado's client, placeholder values
percent-encoded in the URL, `{secret:NAME}` resolved in header values at call time, redirects
not followed, the answer cut at `maxResponseBytes`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

from botical import __version__
from botical.config import read_secret
from botical.errors import ConfigError
from botical.services.custom_tools import PLACEHOLDER
from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.bash import command_result

if TYPE_CHECKING:
    from botical.services.custom_tools import CustomToolService

SECRET_ENV_PREFIX = "BOTICAL_SECRET_"
SECRETS_DIR = "secrets"
SECRET_MASK = "[secret]"


async def project_tools(
    service: CustomToolService, project_id: str, include_disabled: bool = False
) -> list[Tool]:
    """The `Tool`s of a project's custom tools, by name: one per command or http tool, and the
    tools of each enabled MCP server (started when needed; one that cannot start adds none)."""
    records = await service.list(project_id, enabled_only=not include_disabled)
    servers = [r for r in records if r["kind"] == "mcp" and r["enabled"]]
    found: dict[str, list[Tool]] = {}
    if servers and service.mcp is not None:
        workspace = await service.workspace(project_id)
        listed = await asyncio.gather(*(service.mcp.tools(r, workspace) for r in servers))
        found = {record["id"]: tools for record, tools in zip(servers, listed, strict=True)}
    tools: list[Tool] = []
    for record in records:
        if record["kind"] == "mcp":
            tools.extend(found.get(record["id"], ()))
        else:
            tools.append(custom_tool(record))
    return tools


def custom_tool(record: dict[str, Any]) -> Tool:
    """The `Tool` for a stored custom tool (a public dict of CustomToolService)."""
    validator = Draft202012Validator(
        record["parameters"],
        registry=referencing.Registry(),  # never fetch a remote $ref
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    command = record["kind"] == "command"
    execute = run_command_tool if command else send_http_request
    return Tool(
        record["name"],
        record["description"],
        functools.partial(execute, record["config"]),
        parameters=record["parameters"],
        needs_exec=command,
        validate_args=functools.partial(check_arguments, validator),
        source="custom",
        details={key: record[key] for key in ("id", "kind", "config", "enabled")},
    )


def check_arguments(validator: Draft202012Validator, args: dict[str, Any]) -> dict[str, Any]:
    """`args` if the tool's JSON Schema accepts them, else ToolFailure naming every problem."""
    try:
        errors = sorted(validator.iter_errors(args), key=lambda e: list(map(str, e.path)))
    except referencing.exceptions.Unresolvable as exc:
        raise ToolFailure(f"The tool's parameter schema has an unresolvable $ref: {exc}") from None
    except RecursionError:
        raise ToolFailure("Invalid arguments: nested too deeply") from None
    if errors:
        problems = "; ".join(f"{e.json_path}: {e.message}" for e in errors)
        raise ToolFailure(f"Invalid arguments: {problems}")
    return args


def render(
    template: str,
    args: dict[str, Any],
    encode: Callable[[str], str] = str,
    secret: Callable[[str], str] | None = None,
) -> str:
    """Fill a template in one pass, so a value that looks like a placeholder stays text."""

    def fill(match: Any) -> str:
        is_secret, name = match.groups()
        if is_secret:
            if secret is None:  # refused on save; never expand one outside a header
                raise ToolFailure("Secrets may only be used in header values")
            return secret(name)
        if name not in args:
            raise ToolFailure(f"Missing argument {name!r}: the tool's template needs it")
        value = args[name]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\x00" in text:
            raise ToolFailure(f"Argument {name!r} may not contain NUL characters")
        return encode(text)

    return PLACEHOLDER.sub(fill, template)


async def run_command_tool(
    config: dict[str, Any], ctx: ToolContext, args: dict[str, Any]
) -> ToolResult:
    """Run the tool's argv (no shell) in the project directory."""
    workspace = ctx.require_workspace()
    limits = ctx.settings.tools
    argv = [render(template, args) for template in config["argv"]]
    timeout = min(config["timeout"], limits.bash_max_timeout)
    return await command_result(argv, workspace, timeout, limits.output_limit)


def read_tool_secret(name: str, data_dir: Path) -> str:
    """A custom tool's secret: `BOTICAL_SECRET_<NAME>`, else `<data_dir>/secrets/<NAME>`."""
    try:
        value = read_secret(f"{SECRET_ENV_PREFIX}{name}", str(data_dir / SECRETS_DIR / name))
    except ConfigError:
        value = ""
    if not value:
        raise ToolFailure(
            f"Secret {name} is not set: set {SECRET_ENV_PREFIX}{name} or write the file "
            f"{SECRETS_DIR}/{name} in the data directory"
        )
    if any(c in value for c in "\r\n\x00"):
        raise ToolFailure(f"Secret {name} may not contain line breaks")
    return value


class _Download:
    """Keeps the status line and the first `cap` bytes of an answer; the rest is dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.size = 0
        self.status = 599
        self.reason = ""

    @property
    def truncated(self) -> bool:
        return self.size > self.cap

    def header_line(self, line: str) -> None:
        if line.startswith("HTTP/"):
            _, code, *reason = line.split(" ", 2)
            self.status, self.reason = int(code), "".join(reason).strip()

    def body_chunk(self, chunk: bytes) -> None:
        if self.size < self.cap:
            self.chunks.append(chunk[: self.cap - self.size])
        self.size += len(chunk)

    def text(self) -> str:
        text = b"".join(self.chunks).decode("utf-8", errors="replace")
        return text + (f"\n[response truncated at {self.cap} bytes]" if self.truncated else "")


def _request(
    config: dict[str, Any], args: dict[str, Any], secret: Callable[[str], str], download: _Download
) -> HTTPRequest:
    url = render(config["url"], args, encode=functools.partial(quote, safe=""))
    headers = {name: render(v, args, secret=secret) for name, v in config["headers"].items()}
    for name, value in headers.items():
        if any(c in value for c in "\r\n"):
            raise ToolFailure(f"Header {name} may not contain line breaks")
    body = None
    if config["body"] == "json":
        body = json.dumps(args).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    elif config["method"] in ("POST", "PUT", "PATCH"):
        body = b""
    return HTTPRequest(
        url,
        method=config["method"],
        headers=headers,
        body=body,
        connect_timeout=config["timeout"],
        request_timeout=config["timeout"],
        follow_redirects=False,  # a redirect elsewhere would carry the secret headers along
        allow_nonstandard_methods=True,  # a DELETE with a JSON body
        user_agent=f"Botical/{__version__}",
        header_callback=download.header_line,
        streaming_callback=download.body_chunk,
    )


async def send_http_request(
    config: dict[str, Any], ctx: ToolContext, args: dict[str, Any]
) -> ToolResult:
    """Send the tool's request; a non-2xx answer is a tool error with its status and body."""
    secrets: dict[str, str] = {}

    def secret(name: str) -> str:
        if name not in secrets:
            secrets[name] = read_tool_secret(name, ctx.settings.data_path)
        return secrets[name]

    download = _Download(config["maxResponseBytes"])
    request = _request(config, args, secret, download)
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        status, reason = response.code, response.reason
    except (HTTPClientError, OSError, ValueError) as exc:
        # Past the cap the rest is read and dropped; a timeout or a closed stream then only
        # ends the download early.
        if not download.truncated:
            raise _failure(exc, config) from None
        status, reason = download.status, download.reason
    text = download.text()
    for value in secrets.values():  # an echoing server must not hand a secret to the model
        text = text.replace(value, SECRET_MASK)
    metadata = {"status": status, "truncated": download.truncated}
    if not 200 <= status < 300:
        return ToolResult(f"HTTP {status} {reason}\n{text}", is_error=True, metadata=metadata)
    return ToolResult(text, metadata=metadata)


def _failure(exc: Exception, config: dict[str, Any]) -> ToolFailure:
    if isinstance(exc, HTTPTimeoutError):
        return ToolFailure(f"The request timed out after {config['timeout']}s")
    return ToolFailure(f"The request failed: {exc}")
