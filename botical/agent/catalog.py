"""The agents and models a project may name: checks for `agent` and `model` settings, and
the provider that serves a model reference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botical.agent.providers.base import Provider, split_model
from botical.errors import NotFound, ValidationError
from botical.services.agents import AgentConfig, AgentService


class Catalog:
    def __init__(
        self, agents: AgentService, providers: Mapping[str, Provider], default_model: str
    ) -> None:
        self.agents = agents
        self.providers = providers
        self.default_model = default_model

    async def check(self, project_id: str, changes: dict[str, Any]) -> None:
        """VALIDATION_ERROR unless the `agent` and `model` given are known to the project."""
        if changes.get("agent"):
            try:
                await self.agents.get(project_id, changes["agent"])
            except NotFound:
                raise ValidationError(details={"agent": ["Unknown agent."]}) from None
        if changes.get("model"):
            self.provider(changes["model"])

    def provider(self, ref: str) -> Provider:
        """The provider of a model reference ("PROVIDER/MODEL" or "PROVIDER")."""
        name, _ = split_model(ref)
        provider = self.providers.get(name)
        if provider is None:
            raise ValidationError(details={"model": [f"Unknown provider {name!r}."]})
        return provider

    async def resolve(
        self, project_id: str, session: dict[str, Any], agent: str | None, model: str | None
    ) -> tuple[AgentConfig, str]:
        """The agent and model a run uses: those asked for, else the session's, else the
        agent's model, else the default."""
        name = agent or session["agent"]
        await self.check(project_id, {"agent": name})
        config = await self.agents.get(project_id, name)
        ref = model or session["model"] or config.model or self.default_model
        self.provider(ref)
        return config, ref
