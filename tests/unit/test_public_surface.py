"""What plugin authors are promised: every hook is documented, and the example plugin (the
template they copy) needs nothing but what `botical` exports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import botical
from botical import hookspecs

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "plugins" / "botical-example" / "botical_example" / "__init__.py"


def _hooks() -> list[str]:
    return [
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("botical_") and inspect.isfunction(value)
    ]


def test_every_hook_is_documented_in_the_plugin_guide():
    doc = PLUGINS_DOC.read_text()
    hooks = _hooks()
    assert len(hooks) >= 12
    missing = [name for name in hooks if f"`{name}(" not in doc]
    assert missing == []


def test_every_hook_the_guide_lists_exists():
    doc = PLUGINS_DOC.read_text()
    listed = {
        line.split("`")[1].split("(")[0]
        for line in doc.splitlines()
        if line.startswith("| `botical_") and "(" in line.split("`")[1]
    }
    assert listed == set(_hooks())


def _botical_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("botical"):
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("botical")]
    return found


def test_the_example_plugin_imports_only_the_public_surface():
    imports = _botical_imports(EXAMPLE)
    assert imports, "the example imports nothing from botical?"
    assert {module for module, _ in imports} == {"botical"}
    assert {name for _, name in imports} <= set(botical.__all__)


def test_everything_exported_is_importable():
    for name in botical.__all__:
        assert getattr(botical, name) is not None, name
