"""bash, run by the agent, gets a minimal environment: none of the server's secrets."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import parts

SECRETS = {
    "BOTICAL_AUTH_SECRET": "auth-secret-5d1c9e0a7b3f4e2d8c6a1b9f0e3d7c5a",
    "OPENAI_API_KEY": "sk-live-8f2e4a6c0b1d3e5f7a9c2b4d6e8f0a1c",
    "ANTHROPIC_API_KEY": "sk-ant-3c5e7a9b1d2f4e6a8c0b2d4f6e8a0c2e",
}


@pytest.fixture
def server_secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.fixture
def botical_overrides(server_secrets):
    """Depends on `server_secrets` so they are in the environment before the server starts."""
    return {}


@pytest.mark.gen_test
async def test_bash_does_not_see_server_secrets(chat):
    run_id = await chat.started('/tool bash {"command": "env"}')
    await chat.approve(run_id)
    answer = await chat.finished(run_id)
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], "PATH=" in result["output"]) == (False, True)
    leaked = [s for pair in SECRETS.items() for s in pair if s in result["output"]]
    assert leaked == []
