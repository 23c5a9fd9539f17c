"""Confine file tools to the project directory: no `..`, no absolute paths or symlinks out."""

from __future__ import annotations

import os
from pathlib import Path

from botical.tools.base import ToolFailure

# Variables a command needs to behave; nothing else of the server's environment is passed on.
SAFE_ENV = ("LANG", "LC_ALL", "TZ", "TERM")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def confine(root: Path, user_path: str) -> Path:
    """Resolve `user_path` (relative to `root` or absolute) and refuse anything outside `root`.

    The check is on the fully resolved real path, so `..` components and symlinks that point
    outside are refused, and `/proj-evil` never passes for `/proj`.
    """
    if not isinstance(user_path, str) or "\x00" in user_path:
        raise ToolFailure("Invalid path")
    real_root = root.resolve()
    candidate = Path(user_path)
    if not candidate.is_absolute():
        candidate = real_root / candidate
    resolved = candidate.resolve(strict=False)
    if resolved != real_root and not resolved.is_relative_to(real_root):
        raise ToolFailure(f"Path {user_path!r} is outside the project directory")
    return resolved


def minimal_env(workspace: Path) -> dict[str, str]:
    """The whole environment a child process gets: no server secrets, no tokens, no keys."""
    env = {key: os.environ[key] for key in SAFE_ENV if key in os.environ}
    env.update({"PATH": DEFAULT_PATH, "HOME": str(workspace), "PWD": str(workspace)})
    return env
