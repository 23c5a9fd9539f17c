"""File tools: read, write, edit, glob, grep. Every path goes through `sandbox.confine`."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.sandbox import confine

MAX_MATCHES = 500
MAX_WALK = 20_000  # directory entries glob and grep look at, at most, per call
# Directories of tools and dependencies: not walked into unless they are the path asked for.
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})
_path = fields.String(
    required=True,
    validate=validate.Length(min=1, max=4096),
    metadata={"description": "Path relative to the project directory"},
)


def _limits(ctx: ToolContext) -> Any:
    return ctx.settings.tools


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root.resolve())) or "."


class ReadArgs(Schema):
    path = _path
    offset = fields.Integer(
        strict=True, validate=validate.Range(min=1), metadata={"description": "First line"}
    )
    limit = fields.Integer(
        strict=True, validate=validate.Range(min=1), metadata={"description": "Lines"}
    )


async def read(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Return a file's text, optionally a range of lines."""
    path = confine(ctx.require_workspace(), args["path"])
    cap = _limits(ctx).read_limit

    def load() -> str:
        if not path.is_file():
            raise ToolFailure(f"No such file: {args['path']}")
        with path.open("rb") as fh:
            if "offset" in args or "limit" in args:
                data = _lines(fh, args.get("offset", 1), args.get("limit"), cap + 1)
            else:
                data = fh.read(cap + 1)
        text = data[:cap].decode("utf-8", errors="replace")
        return text + ("\n[truncated]" if len(data) > cap else "")

    return ToolResult(await asyncio.to_thread(load))


def _lines(fh: Any, first: int, count: int | None, most: int) -> bytes:
    """Lines `first`.. (1-based; `count` of them, or to the end) of a file, at most `most`
    bytes: the range is taken from the whole file, the cap applies to what is returned."""
    out = bytearray()
    for number, line in enumerate(fh, 1):
        if number < first:
            continue
        if (count is not None and number >= first + count) or len(out) >= most:
            break
        out += line
    return bytes(out[:most])


class WriteArgs(Schema):
    path = _path
    content = fields.String(required=True)


async def write(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Create or overwrite a file inside the project."""
    root = ctx.require_workspace()
    path = confine(root, args["path"])
    data = args["content"].encode()
    if len(data) > _limits(ctx).write_limit:
        raise ToolFailure("Content is larger than the write limit")

    def store() -> None:
        if path.is_dir():
            raise ToolFailure(f"{args['path']} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        confine(root, str(path))  # the parents just made must still resolve inside
        path.write_bytes(data)

    await asyncio.to_thread(store)
    return ToolResult(f"Wrote {len(data)} bytes to {_rel(root, path)}")


class EditArgs(Schema):
    path = _path
    old = fields.String(required=True, validate=validate.Length(min=1))
    new = fields.String(required=True)
    replaceAll = fields.Boolean(load_default=False)


async def edit(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Replace an exact string in a file (once unless replaceAll)."""
    root = ctx.require_workspace()
    path = confine(root, args["path"])

    def change() -> int:
        if not path.is_file():
            raise ToolFailure(f"No such file: {args['path']}")
        text = path.read_text()
        count = text.count(args["old"])
        if count == 0:
            raise ToolFailure("The text to replace was not found")
        if count > 1 and not args["replaceAll"]:
            raise ToolFailure(f"The text occurs {count} times; give more context or replaceAll")
        path.write_text(text.replace(args["old"], args["new"], -1 if args["replaceAll"] else 1))
        return count if args["replaceAll"] else 1

    replaced = await asyncio.to_thread(change)
    return ToolResult(f"Replaced {replaced} occurrence(s) in {_rel(root, path)}")


class GlobArgs(Schema):
    pattern = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    path = fields.String(validate=validate.Length(min=1, max=4096))


def _walk(root: Path, base: Path) -> tuple[list[Path], bool]:
    """Files under `base`, sorted, not following symlinked directories, never leaving `root`,
    not entering SKIPPED_DIRS below `base`; stops after MAX_WALK entries (and says so)."""
    out: list[Path] = []
    seen = 0
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        seen += len(dirs)
        for name in sorted(files):
            seen += 1
            if seen > MAX_WALK:
                return sorted(out), True
            path = Path(folder, name)
            if path.is_file() and path.resolve().is_relative_to(root):
                out.append(path)
    return sorted(out), False


def _stopped(stopped: bool) -> str:
    return f"\n[stopped after {MAX_WALK} entries; give a narrower path]" if stopped else ""


def _glob_match(name: str, pattern: str) -> bool:
    """fnmatch, where `**/` may also stand for no directory (`**/*.py` matches `a.py`)."""
    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, pattern.replace("**/", ""))


async def glob(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """List files matching a glob pattern such as `**/*.py`."""
    root = ctx.require_workspace().resolve()
    base = confine(root, args.get("path", "."))
    if ".." in Path(args["pattern"]).parts:
        raise ToolFailure("Patterns may not contain '..'")

    def find() -> tuple[list[str], bool]:
        files, stopped = _walk(root, base)
        names = [_rel(root, p) for p in files]
        rel_base = _rel(root, base)
        prefix = "" if rel_base == "." else rel_base + "/"
        return [n for n in names if _glob_match(n[len(prefix) :], args["pattern"])], stopped

    matches, stopped = await asyncio.to_thread(find)
    shown = matches[:MAX_MATCHES]
    more = f"\n[{len(matches) - MAX_MATCHES} more]" if len(matches) > MAX_MATCHES else ""
    return ToolResult(("\n".join(shown) + more if shown else "No files found") + _stopped(stopped))


class GrepArgs(Schema):
    pattern = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    path = fields.String(validate=validate.Length(min=1, max=4096))
    include = fields.String(validate=validate.Length(min=1, max=200))


async def grep(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Search file contents with a regular expression; answers `file:line: text`."""
    root = ctx.require_workspace().resolve()
    base = confine(root, args.get("path", "."))
    try:
        regex = re.compile(args["pattern"])
    except re.error as exc:
        raise ToolFailure(f"Invalid regular expression: {exc}") from None
    cap = _limits(ctx).read_limit

    def search() -> tuple[list[str], bool]:
        hits: list[str] = []
        files, stopped = ([base], False) if base.is_file() else _walk(root, base)
        for path in files:
            if "include" in args and not fnmatch.fnmatch(path.name, args["include"]):
                continue
            with path.open("rb") as fh:
                text = fh.read(cap).decode("utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{_rel(root, path)}:{number}: {line[:500]}")
                    if len(hits) >= MAX_MATCHES:
                        return hits, False
        return hits, stopped

    hits, stopped = await asyncio.to_thread(search)
    return ToolResult(("\n".join(hits) if hits else "No matches") + _stopped(stopped))


TOOLS = (
    Tool("read", "Read a file of the project.", read, ReadArgs, read_only=True, subject="path"),
    Tool("write", "Create or overwrite a file.", write, WriteArgs, subject="path"),
    Tool("edit", "Replace exact text in a file.", edit, EditArgs, subject="path"),
    Tool(
        "glob",
        "Find files by glob pattern (.git, node_modules and the like only when given as path).",
        glob,
        GlobArgs,
        read_only=True,
        subject="pattern",
    ),
    Tool(
        "grep",
        "Search files by regex (.git, node_modules and the like only when given as path).",
        grep,
        GrepArgs,
        read_only=True,
        subject="pattern",
    ),
)
