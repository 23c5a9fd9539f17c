"""The tools agents of a project may call: the registered ones (built-in and plugins), then
the project's custom tools."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from botical.services.custom_tools import CustomToolService
from botical.tools.base import Tool
from botical.tools.custom import project_tools

log = logging.getLogger(__name__)


class Toolbox:
    def __init__(self, registered: Mapping[str, Tool], custom: CustomToolService) -> None:
        self.registered = dict(registered)
        self._custom = custom

    async def for_project(self, project_id: str, include_disabled: bool = False) -> dict[str, Tool]:
        """The project's tools by name: the registered ones, then its enabled custom tools (and
        its disabled ones when asked, for listing)."""
        tools = dict(self.registered)
        for tool in await project_tools(self._custom, project_id, include_disabled):
            if tool.name in tools:  # a plugin installed after the tool was defined
                log.warning("custom tool %s is shadowed by a registered tool", tool.name)
                continue
            tools[tool.name] = tool
        return tools
