"""Agent configurations: built-ins from plugins, custom ones per project in the database.

Tool permissions: an agent's `rules` are checked in order and the first rule whose `tool` and
`pattern` globs match decides (`allow`, `ask` or `deny`). With no matching rule, read-only tools
are allowed and every other tool asks. An `ask` becomes `allow` when the tool was approved for
the rest of the session.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from botical.db import Database, now_ms
from botical.db.models import Agent
from botical.errors import Conflict, NotFound
from botical.ids import new_id


@dataclass(frozen=True)
class Rule:
    tool: str
    action: str  # allow | ask | deny
    pattern: str = "*"

    def matches(self, tool_name: str, subject: str) -> bool:
        return fnmatch.fnmatchcase(tool_name, self.tool) and fnmatch.fnmatchcase(
            subject, self.pattern
        )


@dataclass(frozen=True)
class AgentConfig:
    name: str
    description: str = ""
    prompt: str = ""
    model: str | None = None
    tools: tuple[str, ...] | None = None  # None: every tool
    max_steps: int = 25
    rules: tuple[Rule, ...] = ()
    builtin: bool = False

    def allows_tool(self, name: str) -> bool:
        return self.tools is None or name in self.tools

    def decide(self, tool_name: str, subject: str, default: str) -> str:
        """The permission for one call: the first matching rule, else the tool's default."""
        for rule in self.rules:
            if rule.matches(tool_name, subject):
                return rule.action
        return default

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "prompt": self.prompt,
            "model": self.model,
            "tools": list(self.tools) if self.tools is not None else None,
            "maxSteps": self.max_steps,
            "rules": [asdict(r) for r in self.rules],
            "builtin": self.builtin,
        }


def _from_row(row: Agent) -> AgentConfig:
    return AgentConfig(
        name=row.name,
        description=row.description,
        prompt=row.prompt,
        model=row.model,
        tools=tuple(row.tools) if row.tools is not None else None,
        max_steps=row.max_steps,
        rules=tuple(Rule(**r) for r in row.rules or ()),
    )


@dataclass
class AgentService:
    db: Database
    builtin: dict[str, AgentConfig] = field(default_factory=dict)

    @classmethod
    def from_configs(cls, db: Database, configs: Iterable[AgentConfig]) -> AgentService:
        return cls(db, {c.name: c for c in configs})

    async def list(self, project_id: str) -> list[dict[str, Any]]:
        """Built-in agents, then the project's custom agents by name."""

        def select() -> list[Agent]:
            return list(Agent.select().where(Agent.project == project_id).order_by(Agent.name))

        custom = [_from_row(r) for r in await self.db.run(select)]
        return [a.to_dict() for a in (*self.builtin.values(), *custom)]

    async def get(self, project_id: str, name: str) -> AgentConfig:
        """The agent called `name` in this project; NOT_FOUND otherwise."""
        if name in self.builtin:
            return self.builtin[name]
        row = await self.db.run(
            Agent.get_or_none, (Agent.project == project_id) & (Agent.name == name)
        )
        if row is None:
            raise NotFound(f"Agent {name!r} not found")
        return _from_row(row)

    async def create(self, project_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store a custom agent; its name may not shadow a built-in or another agent."""
        if data["name"] in self.builtin:
            raise Conflict(f"{data['name']!r} is a built-in agent")

        def insert() -> Agent:
            if (
                Agent.select()
                .where(Agent.project == project_id, Agent.name == data["name"])
                .exists()
            ):
                raise Conflict(f"Agent {data['name']!r} already exists")
            return Agent.create(
                id=new_id("agt"),
                project=project_id,
                name=data["name"],
                description=data.get("description", ""),
                prompt=data.get("prompt", ""),
                model=data.get("model"),
                tools=data.get("tools"),
                max_steps=data.get("maxSteps", 25),
                rules=data.get("rules", []),
            )

        return _from_row(await self.db.atomic(insert)).to_dict()

    async def delete(self, project_id: str, name: str) -> None:
        def remove() -> int:
            return Agent.delete().where(Agent.project == project_id, Agent.name == name).execute()

        if name in self.builtin:
            raise Conflict("Built-in agents cannot be deleted")
        if not await self.db.atomic(remove):
            raise NotFound(f"Agent {name!r} not found")


__all__ = ["AgentConfig", "AgentService", "Rule", "now_ms"]
