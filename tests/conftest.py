from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def botical_config_file() -> str:
    """The suite runs with conf/test.toml."""
    return str(ROOT / "conf" / "test.toml")
