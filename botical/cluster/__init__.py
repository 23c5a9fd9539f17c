"""Several nodes behind one address: the Redis bus backend, a built-in plugin selected with
`[bus] backend = "redis"` (redis-py comes with the `redis` extra). See docs/operations.md,
"Running several nodes"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botical.errors import ConfigError
from botical.hookspecs import hookimpl

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.bus import EventBus


@hookimpl
def botical_bus_backend(app: Botical) -> EventBus | None:
    """The Redis bus when `[bus] backend` says so."""
    if app.settings.bus.backend != "redis":
        return None
    try:
        from botical.cluster.redisbus import RedisBus
    except ImportError:
        raise ConfigError(
            f'[bus] backend = "redis" needs redis-py: {install_hint("redis")}'
        ) from None
    return RedisBus(app.settings.bus, app.node)


def install_hint(extra: str) -> str:
    """The command that installs an extra, for a checkout or for a pip install."""
    from pathlib import Path

    checkout = (Path(__file__).resolve().parents[2] / "pyproject.toml").exists()
    return (
        f".venv/bin/pip install -e '.[{extra}]'" if checkout else f"pip install 'botical[{extra}]'"
    )
