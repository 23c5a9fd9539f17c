"""The checks on save of a custom tool: its parameter schema and the placeholders of its config.

`{name}` stands for the string value of the top-level argument `name`; `{secret:NAME}`, in HTTP
header values and MCP env and header values only, for a secret read when it is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError

MAX_PARAMETERS_BYTES = 64 * 1024
# `{name}`: an argument; `{secret:NAME}`: a secret (header and env values only)
PLACEHOLDER = re.compile(r"\{(?:(secret):)?([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"


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
    if kind == "mcp":
        return _mcp_template_errors(config)
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


def _mcp_template_errors(config: dict[str, Any]) -> dict[str, Any]:
    """An MCP server's config takes no arguments: `{secret:NAME}` in env and header values
    only; argv is taken literally."""
    errors: dict[str, Any] = {}
    if config["transport"] == "http":
        url_problems = _url_errors(config["url"], None)
        if url_problems:
            errors["url"] = url_problems
        key = "headers"
    else:
        argv = {
            i: ["Secrets may only be used in env values, never in argv."]
            for i, item in enumerate(config["argv"])
            if "{secret:" in item
        }
        if not config["argv"][0].strip() or "\x00" in "".join(config["argv"]):
            argv.setdefault(0, []).append("The program must be given, without NUL characters.")
        if argv:
            errors["argv"] = argv
        key = "env"
    values = {
        name: problems
        for name, template in config[key].items()
        if (problems := _placeholder_errors(template, None, secrets=True))
    }
    if values:
        errors[key] = values
    return errors


def _placeholder_errors(
    template: str, properties: set[str] | None, secrets: bool = False
) -> list[str]:
    """What is wrong with the placeholders of a template (`properties` None: no arguments)."""
    problems = []
    if any(c in template for c in "\r\n\x00"):
        problems.append("May not contain line breaks or NUL characters.")
    for match in PLACEHOLDER.finditer(template):
        kind, name = match.groups()
        if kind and not secrets:
            problems.append(f"{match.group(0)}: secrets may only be used in header values.")
        elif kind and not SECRET_NAME.match(name):
            problems.append(f"{match.group(0)}: secret names are A-Z, 0-9 and _, starting A-Z.")
        elif kind:
            continue
        elif properties is None:
            problems.append(f"{match.group(0)}: an MCP server's config takes no arguments.")
        elif name not in properties:
            problems.append(f"Unknown placeholder {match.group(0)}: not a parameter property.")
    return problems


def _url_errors(url: str, properties: set[str] | None) -> list[str]:
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
