"""File tools: read, write, edit, glob, grep. Every path goes through `sandbox.confine`, and
is then opened without following a symlink (`fsworker.open_under`), so a link swapped in after
the check cannot lead outside. read, grep and glob run in a worker process that is killed at
`[tools] search_timeout`: a model's regex or range never holds the server's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from botical.tools import fsworker
from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.bash import run_command
from botical.tools.sandbox import confine, minimal_env

MAX_MATCHES = 500
MAX_WALK = 20_000  # directory entries glob and grep look at, at most, per call
WORKER = str(Path(fsworker.__file__).resolve())
# -I: no environment, no user site, no script or working directory on sys.path (a project
# file named re.py must not be imported); -S: no site-packages. The worker needs the stdlib.
WORKER_ARGV = (sys.executable, "-I", "-S", WORKER)
_path = fields.String(
    required=True,
    validate=validate.Length(min=1, max=4096),
    metadata={"description": "Path relative to the project directory"},
)


def _limits(ctx: ToolContext) -> Any:
    return ctx.settings.tools


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root.resolve())) or "."


def _outside(shown: str) -> ToolFailure:
    return ToolFailure(f"Path {shown!r} is outside the project directory")


async def _run(ctx: ToolContext, root: Path, job: dict[str, Any]) -> tuple[list[dict], bool]:
    """Run a job in the worker: (the JSON lines it wrote, whether it was killed at the bound)."""
    limits = _limits(ctx)
    cap = 8 * max(limits.read_limit, limits.output_limit) + 65536  # JSON may escape text
    argv = [*WORKER_ARGV, json.dumps({**job, "root": str(root)})]
    code, output, _ = await run_command(
        argv, str(root), minimal_env(root), limits.search_timeout, cap
    )
    lines = []
    for raw in output.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            break  # cut by the cap, or not ours (a crash): what came before still counts
    return lines, code is None


def _end(lines: list[dict], shown: str) -> dict[str, Any] | None:
    """The worker's last line: raise the tool failure it reports; None if it never got there."""
    last = lines[-1] if lines else {}
    if last.get("error") == "escaped":
        raise _outside(shown)
    if last.get("error") in ("missing", "not a file"):
        raise ToolFailure(f"No such file: {shown}")
    if "error" in last:
        raise ToolFailure(f"Cannot read {shown}: {last['error']}")
    return last if last.get("done") else None


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
    root = ctx.require_workspace().resolve()
    path = confine(root, args["path"])
    job = {"op": "read", "path": str(path), "cap": _limits(ctx).read_limit}
    job.update({key: args[key] for key in ("offset", "limit") if key in args})
    lines, killed = await _run(ctx, root, job)
    if killed:
        raise ToolFailure(
            f"Reading {args['path']} took longer than {_limits(ctx).search_timeout}s and was "
            "stopped; read a smaller range (offset, limit)"
        )
    if _end(lines, args["path"]) is None or "text" not in lines[0]:
        raise ToolFailure(f"Cannot read {args['path']}")
    text = lines[0]["text"]
    return ToolResult(text + ("\n[truncated]" if lines[0]["cut"] else ""))


class WriteArgs(Schema):
    path = _path
    content = fields.String(required=True)


_WRITE_FLAGS = os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _open(root: Path, path: Path, shown: str, flags: int, mkdirs: bool = False) -> int:
    """`fsworker.open_under` with its failures as the tool failures the model sees."""
    try:
        fd = fsworker.open_under(str(root), str(path), flags, 0o666, mkdirs)
    except fsworker.Escaped:
        raise _outside(shown) from None
    except IsADirectoryError:
        raise ToolFailure(f"{shown} is a directory") from None
    except (FileNotFoundError, NotADirectoryError):
        raise ToolFailure(f"No such file: {shown}") from None
    except OSError as exc:
        raise ToolFailure(f"Cannot open {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolFailure(f"No such file: {shown}")
    return fd


async def write(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Create or overwrite a file inside the project."""
    root = ctx.require_workspace().resolve()
    path = confine(root, args["path"])
    data = args["content"].encode()
    if len(data) > _limits(ctx).write_limit:
        raise ToolFailure("Content is larger than the write limit")

    def store() -> None:
        flags = _WRITE_FLAGS | os.O_CREAT | os.O_TRUNC
        with os.fdopen(_open(root, path, args["path"], flags, mkdirs=True), "wb") as fh:
            fh.write(data)

    await asyncio.to_thread(store)
    return ToolResult(f"Wrote {len(data)} bytes to {_rel(root, path)}")


class EditArgs(Schema):
    path = _path
    old = fields.String(required=True, validate=validate.Length(min=1))
    new = fields.String(required=True)
    replaceAll = fields.Boolean(load_default=False)


async def edit(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Replace an exact string in a file (once unless replaceAll)."""
    root = ctx.require_workspace().resolve()
    path = confine(root, args["path"])
    most = _limits(ctx).write_limit

    def change() -> int:
        with os.fdopen(_open(root, path, args["path"], fsworker.READ_FLAGS), "rb") as fh:
            if os.fstat(fh.fileno()).st_size > most:
                raise ToolFailure("The file is larger than the write limit")
            text = fh.read(most + 1).decode("utf-8", errors="surrogateescape")
        count = text.count(args["old"])
        if count == 0:
            raise ToolFailure("The text to replace was not found")
        if count > 1 and not args["replaceAll"]:
            raise ToolFailure(f"The text occurs {count} times; give more context or replaceAll")
        changed = text.replace(args["old"], args["new"], -1 if args["replaceAll"] else 1)
        with os.fdopen(_open(root, path, args["path"], _WRITE_FLAGS | os.O_TRUNC), "wb") as fh:
            fh.write(changed.encode("utf-8", errors="surrogateescape"))
        return count if args["replaceAll"] else 1

    replaced = await asyncio.to_thread(change)
    return ToolResult(f"Replaced {replaced} occurrence(s) in {_rel(root, path)}")


class GlobArgs(Schema):
    pattern = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    path = fields.String(validate=validate.Length(min=1, max=4096))


def _cut(ctx: ToolContext, killed: bool, end: dict[str, Any] | None) -> str:
    """What the result says when the walk or the time bound cut it short."""
    if killed:
        return (
            f"\n[stopped after {_limits(ctx).search_timeout}s, the time limit; what was found "
            "by then is shown: give a narrower path or a simpler pattern]"
        )
    if end is None:
        return "\n[output cut short]"
    if end["stopped"]:
        return f"\n[stopped after {MAX_WALK} entries; give a narrower path]"
    return ""


def _walk_job(op: str, base: Path, pattern: str) -> dict[str, Any]:
    return {
        "op": op,
        "base": str(base),
        "pattern": pattern,
        "max_matches": MAX_MATCHES,
        "max_walk": MAX_WALK,
    }


async def glob(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """List files matching a glob pattern such as `**/*.py`."""
    root = ctx.require_workspace().resolve()
    base = confine(root, args.get("path", "."))
    if ".." in Path(args["pattern"]).parts:
        raise ToolFailure("Patterns may not contain '..'")
    lines, killed = await _run(ctx, root, _walk_job("glob", base, args["pattern"]))
    end = None if killed else _end(lines, args.get("path", "."))
    shown = [line["match"] for line in lines if "match" in line]
    more = next((line["more"] for line in lines if line.get("more")), 0)
    text = "\n".join(shown) + (f"\n[{more} more]" if more else "") if shown else "No files found"
    return ToolResult(text + _cut(ctx, killed, end))


class GrepArgs(Schema):
    pattern = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    path = fields.String(validate=validate.Length(min=1, max=4096))
    include = fields.String(validate=validate.Length(min=1, max=200))


async def grep(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Search file contents with a regular expression; answers `file:line: text`."""
    root = ctx.require_workspace().resolve()
    base = confine(root, args.get("path", "."))
    try:
        re.compile(args["pattern"])  # a clear error now; the search itself runs in the worker
    except re.error as exc:
        raise ToolFailure(f"Invalid regular expression: {exc}") from None
    job = _walk_job("grep", base, args["pattern"])
    job.update(cap=_limits(ctx).read_limit, **{k: args[k] for k in ("include",) if k in args})
    lines, killed = await _run(ctx, root, job)
    end = None if killed else _end(lines, args.get("path", "."))
    hits = [line["hit"] for line in lines if "hit" in line]
    return ToolResult(("\n".join(hits) if hits else "No matches") + _cut(ctx, killed, end))


TOOLS = (
    Tool("read", "Read a file of the project.", read, ReadArgs, read_only=True, subject="path"),
    Tool("write", "Create or overwrite a file.", write, WriteArgs, subject="path"),
    Tool("edit", "Replace exact text in a file.", edit, EditArgs, subject="path"),
    Tool(
        "glob",
        "Find files by glob pattern (.git, node_modules and the like only when given as path;"
        " a long search is stopped at a time limit and says so).",
        glob,
        GlobArgs,
        read_only=True,
        subject="pattern",
    ),
    Tool(
        "grep",
        "Search files by Python regex (.git, node_modules and the like only when given as path;"
        " a long search is stopped at a time limit, keeping the matches found so far).",
        grep,
        GrepArgs,
        read_only=True,
        subject="pattern",
    ),
)
