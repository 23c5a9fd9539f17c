"""The built-in agents: `default` (every tool), `explore` and `plan` (read-only tools)."""

from __future__ import annotations

from botical.hookspecs import hookimpl
from botical.services.agents import AgentConfig

READ_ONLY_TOOLS = ("read", "glob", "grep", "todoread", "todowrite")

BUILTIN_AGENTS = (
    AgentConfig(
        name="default",
        description="General agent with every tool.",
        prompt="You are Botical, a careful software agent working in the user's project. "
        "Use the tools to inspect and change files; explain briefly what you did.",
        max_steps=25,
        builtin=True,
    ),
    AgentConfig(
        name="explore",
        description="Reads and searches the project; changes nothing.",
        prompt="You explore the project with read-only tools and report what you find.",
        tools=READ_ONLY_TOOLS,
        max_steps=25,
        builtin=True,
    ),
    AgentConfig(
        name="plan",
        description="Plans work without changing anything.",
        prompt="You plan changes step by step using read-only tools; you do not edit files.",
        tools=READ_ONLY_TOOLS,
        max_steps=25,
        builtin=True,
    ),
)


@hookimpl
def botical_register_agents(register) -> None:
    for agent in BUILTIN_AGENTS:
        register(agent)
