"""File access that stays inside the project, and the worker process for read, grep and glob.

Standard library only, so that it runs as a script (`python -I -S fsworker.py JOB`) in a
fresh interpreter that starts in milliseconds: the tools run a model's regex, glob or line
range there, and the server kills the process at its time bound. The GIL of the server is
never held by that work, and a catastrophic pattern ends when the process does.

`open_under` opens a path that `sandbox.confine` resolved, one component at a time from the
project root, each with O_NOFOLLOW: a symlink swapped in after the check (anywhere on the
path) makes the open fail instead of leading outside.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from typing import Any

SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _CLOEXEC  # non-blocking: a FIFO cannot hang a read
LINE_PIECE = 64 * 1024
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the worker process


class Escaped(OSError):
    """A path component changed into a symlink (or a non-directory) after it was checked."""


def open_under(root: str, path: str, flags: int, mode: int = 0o644, mkdirs: bool = False) -> int:
    """A descriptor for `path` (absolute, inside `root`, both resolved), opened from the root
    one component at a time without following a symlink; `mkdirs` makes missing parents."""
    relative = os.path.relpath(path, root)
    parts = [] if relative == "." else relative.split(os.sep)
    if ".." in parts:
        raise Escaped(errno.EXDEV, "outside the project", path)
    current = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            below = _subdirectory(current, part, mkdirs)
            os.close(current)
            current = below
        if not parts:  # the root itself
            if flags & os.O_DIRECTORY:
                return os.dup(current)
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        try:
            return os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=current)
        except OSError as exc:
            raise _escaped(exc, path) from None
    finally:
        os.close(current)


def _subdirectory(parent: int, name: str, mkdirs: bool) -> int:
    """Directory `name` of `parent`, made first if asked; never through a symlink."""
    try:
        if mkdirs:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent)
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise _escaped(exc, name) from None


def _escaped(exc: OSError, path: str) -> OSError:
    # ELOOP: a symlink where O_NOFOLLOW forbids one; ENOTDIR: a file or link where a directory was
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return Escaped(exc.errno, "changed while it was opened", path)
    return exc


# -- the worker's jobs ----------------------------------------------------------------------


def read_lines(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Lines `offset`.. (1-based, `limit` of them or to the end) of a file, at most `cap`
    bytes: the range is taken from the whole file, the cap applies to what is returned."""
    fd = open_under(job["root"], job["path"], READ_FLAGS)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        most = job["cap"] + 1
        if "offset" in job or "limit" in job:
            data = _line_range(fh, job.get("offset", 1), job.get("limit"), most)
        else:
            data = fh.read(most)
    text = data[: job["cap"]].decode("utf-8", errors="replace")
    yield {"text": text, "cut": len(data) > job["cap"]}


def _line_range(fh: Any, first: int, count: int | None, most: int) -> bytes:
    """Read in pieces of at most LINE_PIECE bytes, so a file without newlines is never held
    whole in memory; a line ends at a newline."""
    out = bytearray()
    number = 1
    while piece := fh.readline(LINE_PIECE):
        if count is not None and number >= first + count:
            break
        if number >= first:
            out += piece
            if len(out) >= most:
                break
        if piece.endswith(b"\n"):
            number += 1
    return bytes(out[:most])


def files_under(job: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """(path relative to the root, real path) of every regular file under `base`, sorted,
    not entering SKIPPED_DIRS below it nor following symlinked directories (a symlinked file
    counts when it resolves inside the root); and whether the walk stopped at `max_walk`
    entries. Nothing is opened here but directories, each without following a symlink."""
    root, base = job["root"], job["base"]
    top = open_under(root, base, DIR_FLAGS)
    found: list[tuple[str, str]] = []
    seen = 0
    try:
        for folder, dirs, names, dir_fd in os.fwalk(".", dir_fd=top):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            seen += len(dirs)
            for name in sorted(names):
                seen += 1
                if seen > job["max_walk"]:
                    return sorted(found), True
                where = os.path.normpath(os.path.join(base, folder, name))
                real = _readable(root, where, name, dir_fd)
                if real is not None:
                    found.append((os.path.relpath(where, root), real))
    finally:
        os.close(top)
    return sorted(found), False


def _readable(root: str, where: str, name: str, dir_fd: int) -> str | None:
    """The real path of entry `name` of `dir_fd` (at `where`) if it is a file inside root."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            return where
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(where)
            inside = os.path.commonpath([target, root]) == root
            return target if inside and stat.S_ISREG(os.stat(target).st_mode) else None
    except OSError:
        pass  # gone or unreadable: not part of the answer
    return None


def _read_head(root: str, real: str, most: int) -> str | None:
    """The first `most` bytes of a regular file, as text; None if it cannot be read safely."""
    try:
        fd = open_under(root, real, READ_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fh.read(most).decode("utf-8", errors="replace")


def grep(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`path:line: text` of each line matching `pattern`, at most `max_matches` of them."""
    regex = re.compile(job["pattern"])
    files, stopped = _grep_files(job)
    hits = 0
    for rel, real in files:
        text = _read_head(job["root"], real, job["cap"])
        for number, line in enumerate((text or "").splitlines(), 1):
            if regex.search(line):
                yield {"hit": f"{rel}:{number}: {line[:500]}"}
                hits += 1
                if hits >= job["max_matches"]:
                    return
    if stopped:
        raise _Stopped


def _grep_files(job: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """The file `base`, or the files under it whose name matches `include` (when given)."""
    root, base = job["root"], job["base"]
    if base != root:
        fd = open_under(root, base, READ_FLAGS)  # Escaped if the path changed since the check
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        os.close(fd)
        if regular:
            return [(os.path.relpath(base, root), base)], False
    files, stopped = files_under(job)
    include = job.get("include")
    if include:
        files = [
            (rel, real) for rel, real in files if fnmatch.fnmatch(os.path.basename(rel), include)
        ]
    return files, stopped


class _Stopped(Exception):
    """The walk met `max_walk` entries (after what it found was written)."""


def glob(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Files under `base` whose path below it matches `pattern`, sorted, `max_matches` shown."""
    prefix = os.path.relpath(job["base"], job["root"])
    prefix = "" if prefix == "." else prefix + "/"
    files, stopped = files_under(job)
    matches = [rel for rel, _ in files if _glob_match(rel[len(prefix) :], job["pattern"])]
    for rel in matches[: job["max_matches"]]:
        yield {"match": rel}
    yield {"more": max(0, len(matches) - job["max_matches"])}
    if stopped:
        raise _Stopped


def _glob_match(name: str, pattern: str) -> bool:
    """fnmatch, where `**/` may also stand for no directory (`**/*.py` matches `a.py`)."""
    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, pattern.replace("**/", ""))


JOBS = {"read": read_lines, "grep": grep, "glob": glob}


def main(argv: list[str]) -> int:
    """Run the job in argv[1] (JSON); write one JSON line per result, then a last one."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass  # no such limit here: the time bound still holds
    job = json.loads(argv[1])
    out = sys.stdout
    try:
        for line in JOBS[job["op"]](job):
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()  # what was found survives a kill at the time bound
        out.write(json.dumps({"done": True, "stopped": False}) + "\n")
    except _Stopped:
        out.write(json.dumps({"done": True, "stopped": True}) + "\n")
    except OSError as exc:
        out.write(json.dumps({"error": _reason(exc)}) + "\n")
    out.flush()
    return 0


def _reason(exc: OSError) -> str:
    if isinstance(exc, Escaped):
        return "escaped"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return "not a file"
    return exc.strerror or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main(sys.argv))
