"""The start-up model checks: unknown providers are configuration errors naming the key, and
the install hint fits the kind of install."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import botical
from botical.agent.providers.check import check_models, install_command
from botical.config import AgentSettings, Settings
from botical.errors import ConfigError
from botical.plugins import Registration
from botical.services.agents import AgentConfig


class Sdk:
    sdk_module = "botical_no_such_sdk"


PROVIDERS = {"echo": object(), "openai": object(), "needs-sdk": Sdk()}


def _settings(model: str) -> Settings:
    return Settings(agent=AgentSettings(default_model=model))


def _agent(name: str, model: str | None, plugin: str = "my_plugin") -> Registration:
    return Registration(name, AgentConfig(name, model=model), plugin)


def test_known_providers_pass():
    check_models(_settings("openai/gpt-4o"), PROVIDERS, [_agent("fast", "echo")])


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        check_models(_settings("llama3"), PROVIDERS, [_agent("fast", "claude/opus")])
    text = str(raised.value)
    assert "[agent] default_model = 'llama3': unknown provider 'llama3'" in text
    assert "agent 'fast' (registered by my_plugin) model = 'claude/opus'" in text
    assert "known: echo, needs-sdk, openai" in text


def test_a_missing_sdk_is_logged_with_its_install_command(caplog):
    with caplog.at_level(logging.ERROR):
        check_models(_settings("needs-sdk/model"), PROVIDERS, [])
    assert "needs the botical_no_such_sdk SDK, which is not installed" in caplog.text
    assert install_command("botical_no_such_sdk") in caplog.text


def test_an_unused_provider_without_its_sdk_says_nothing(caplog):
    with caplog.at_level(logging.ERROR):
        check_models(_settings("echo"), PROVIDERS, [])
    assert caplog.text == ""


def test_the_install_command_of_a_pip_install(monkeypatch, tmp_path: Path):
    package = tmp_path / "site-packages" / "botical"
    package.mkdir(parents=True)
    monkeypatch.setattr(botical, "__file__", str(package / "__init__.py"))
    assert install_command("openai") == "pip install 'botical[openai]'"


def test_the_install_command_of_this_checkout():
    root = Path(botical.__file__).resolve().parents[1]
    assert (root / "pyproject.toml").is_file()
    assert "-e" in install_command("openai").split()
