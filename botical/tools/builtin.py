"""Registers the built-in tools, exactly as a third-party plugin would."""

from __future__ import annotations

from botical.hookspecs import hookimpl
from botical.tools import bash, files, task, todos


@hookimpl
def botical_register_tools(register) -> None:
    for tool in (*files.TOOLS, *bash.TOOLS, *task.TOOLS, *todos.TOOLS):
        register(tool)
