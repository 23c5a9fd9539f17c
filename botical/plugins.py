"""The plugin manager factory and the registries that registration hooks fill.

Built-in features are plugins too: they are listed in DEFAULT_PLUGINS and loaded exactly like
third-party ones (entry points in group `botical`, `[plugins] modules`, `.py` files in
`[plugins] dirs`). `[plugins] disabled` blocks any of them by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from botical import hookspecs
from botical.config import Settings
from botical.errors import PluginError

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "botical.http.routes",
    "botical.http.login",
    "botical.agent.providers.echo",
    "botical.agent.providers.openai",
    "botical.agent.providers.anthropic",
    "botical.agent.builtin",
    "botical.tools.builtin",
    "botical.websocket.server",
    "botical.websocket.channels",
    "botical.methods.projects",
    "botical.methods.sessions",
    "botical.methods.messages",
    "botical.methods.agents",
    "botical.methods.tools",
    "botical.methods.todos",
    "botical.methods.users",
    "botical.methods.credentials",
    "botical.methods.system",
)


def make_plugin_manager(settings: Settings, extra: tuple[object, ...] = ()) -> pluggy.PluginManager:
    """Return a fresh plugin manager with every enabled plugin loaded and checked."""
    pm = pluggy.PluginManager("botical")
    pm.add_hookspecs(hookspecs)
    disabled = set(settings.plugins.disabled)
    for name in disabled:
        pm.set_blocked(name)
    for name in DEFAULT_PLUGINS + settings.plugins.modules:
        if name not in disabled:
            _register(pm, _import(name), name)
    _load_entry_points(pm)
    for directory in settings.plugins.dirs:
        for path in sorted(Path(directory).expanduser().glob("*.py")):
            if path.stem not in disabled:
                _register(pm, _import_file(path), path.stem)
    for plugin in extra:
        _register(pm, plugin, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:
        raise PluginError(f"plugin {name!r} is registered twice: {exc}") from None
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} is invalid: {exc}") from None


def _import(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PluginError(f"cannot import plugin module {name!r}: {exc}") from None


def _import_file(path: Path) -> object:
    module_name = f"botical_plugin_dir_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"plugin file {path} failed to load: {exc!r}") from None
    return module


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    try:
        pm.load_setuptools_entrypoints("botical")
    except Exception as exc:
        raise PluginError(
            f"a plugin from the 'botical' entry-point group failed: {exc!r}"
        ) from None


@dataclass(frozen=True)
class Registration:
    name: str
    value: Any
    plugin: str


class Registry:
    """Named things of one kind, each tagged with the plugin that registered it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Registration] = {}

    def add(self, name: str, value: Any, plugin: str) -> None:
        """Add `value` under `name`; a second registration of the name is a PluginError."""
        if name in self._items:
            first = self._items[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both plugin {first!r} and plugin {plugin!r}"
            )
        self._items[name] = Registration(name, value, plugin)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> Any:
        """Return the value registered under `name`, or None."""
        reg = self._items.get(name)
        return reg.value if reg else None

    def by_plugin(self, plugin: str) -> list[str]:
        """Names this plugin registered."""
        return [r.name for r in self._items.values() if r.plugin == plugin]


Make = Callable[..., Iterable[tuple[str, Any]]]


def collect(
    pm: pluggy.PluginManager, hook_name: str, kind: str, make: Make, **kwargs: Any
) -> Registry:
    """Call a registration hook through pluggy, one plugin at a time, each with its own
    `register` (which tags what it registers with the plugin's name). `make` turns what a
    plugin passes to `register` into `(name, value)` pairs, raising TypeError or ValueError
    for anything invalid; `kwargs` are the hook's other arguments."""
    registry = Registry(kind)
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    for impl in impls:
        others = [other.plugin for other in impls if other is not impl]
        call = pm.subset_hook_caller(hook_name, remove_plugins=others)
        call(register=_register_for(registry, kind, make, impl.plugin_name), **kwargs)
    return registry


def _register_for(registry: Registry, kind: str, make: Make, plugin: str) -> Callable[..., None]:
    def register(*args: Any, **kwargs: Any) -> None:
        try:
            found = list(make(*args, **kwargs))
        except (TypeError, ValueError) as exc:
            raise PluginError(f"plugin {plugin!r} registered an invalid {kind}: {exc}") from None
        for name, value in found:
            registry.add(name, value, plugin)

    return register


def plugin_info(pm: pluggy.PluginManager, registries: dict[str, Registry]) -> list[dict[str, Any]]:
    """Describe every loaded plugin: its name, version, hooks and what it registered."""
    dists = {plugin: dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        dist = dists.get(plugin)
        registered = {kind: reg.by_plugin(name) for kind, reg in registries.items()}
        out.append(
            {
                "name": name,
                "version": dist.version if dist else None,
                "hooks": hooks,
                "registered": {kind: names for kind, names in registered.items() if names},
            }
        )
    return out


async def await_me_maybe(value: Any) -> Any:
    """Await `value` if a hook returned an awaitable, else return it as it is."""
    if inspect.isawaitable(value):
        value = await value
    return value
