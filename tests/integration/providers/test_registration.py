"""Both providers register through the plugin hook and load without their SDKs."""

from __future__ import annotations

import subprocess
import sys

import pluggy

from botical import hookspecs
from botical.agent.providers import anthropic, openai
from botical.agent.providers.base import Provider, ProviderConfig


def test_hook_registers_both_provider_classes():
    pm = pluggy.PluginManager("botical")
    pm.add_hookspecs(hookspecs)
    pm.register(openai)
    pm.register(anthropic)
    registered: list[type] = []

    pm.hook.botical_register_providers(register=registered.append)

    assert sorted(cls.name for cls in registered) == ["anthropic", "openai"]
    assert all(isinstance(cls(ProviderConfig()), Provider) for cls in registered)


def test_modules_import_without_the_sdks():
    code = (
        "import sys\n"
        "sys.modules['openai'] = sys.modules['anthropic'] = None\n"
        "import botical.agent.providers.openai, botical.agent.providers.anthropic\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
