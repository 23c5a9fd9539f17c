"""Start-up checks of the model settings: a model naming an unknown provider is a configuration
error, and a provider whose SDK is not installed is reported with the command that installs it,
rather than at the first message."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import botical
from botical.agent.providers.base import split_model
from botical.config import Settings
from botical.errors import ConfigError
from botical.plugins import Registration

log = logging.getLogger(__name__)

# Servers that speak the OpenAI API: people write their name where the provider goes.
OPENAI_COMPATIBLE = {
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "llama.cpp": "http://127.0.0.1:8080/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "openrouter": "https://openrouter.ai/api/v1",
}


def check_models(
    settings: Settings, providers: Mapping[str, object], agents: Iterable[Registration]
) -> None:
    """Raise ConfigError naming every model setting whose provider is unknown; log an error
    for each provider in use whose SDK is missing."""
    refs = [("[agent] default_model", settings.agent.default_model)]
    refs += [
        (f"agent {r.name!r} (registered by {r.plugin}) model", r.value.model)
        for r in agents
        if r.value.model
    ]
    problems = [_unknown(key, ref, providers) for key, ref in refs]
    if any(problems):
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(p for p in problems if p))
    for name in dict.fromkeys(split_model(ref)[0] for _, ref in refs):
        module = getattr(providers[name], "sdk_module", None)
        if module and not _installed(module):
            log.error(
                "provider %r needs the %s SDK, which is not installed: %s",
                name,
                module,
                install_command(module),
            )


def _unknown(key: str, ref: str, providers: Mapping[str, object]) -> str:
    name, model = split_model(ref)
    if name in providers:
        return ""
    known = ", ".join(sorted(providers))
    problem = f"{key} = {ref!r}: unknown provider {name!r} (known: {known})"
    if name.lower() in OPENAI_COMPATIBLE and "openai" in providers:
        suggested = "openai/" + (model or "MODEL")
        problem += (
            f"; {name} speaks the OpenAI API: use {suggested!r} with "
            f"[providers.openai] base_url = {OPENAI_COMPATIBLE[name.lower()]!r}"
        )
    return problem


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means "blocked": an import would fail
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def install_command(extra: str) -> str:
    """The command that installs the optional extra `extra` for this kind of install."""
    root = Path(botical.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():  # installed from a package
        return f"pip install 'botical[{extra}]'"
    if Path(sys.prefix).resolve() == (root / ".venv").resolve():
        return f".venv/bin/pip install -e '.[{extra}]' (in {root})"
    return f"{sys.executable} -m pip install -e '{root}[{extra}]'"
