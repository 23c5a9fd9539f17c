"""Who may read /metrics: the token (compared in constant time) or an allowed address."""

from __future__ import annotations

import pytest

from botical.config import MetricsSettings
from botical.errors import ConfigError
from botical.http.metrics import TOKEN_ENV, MetricsAccess


def _access(tmp_path, token: str = "", **settings) -> MetricsAccess:
    path = ""
    if token:
        path = str(tmp_path / "token")
        (tmp_path / "token").write_text(token + "\n")
    return MetricsAccess.from_settings(MetricsSettings(enabled=True, token_file=path, **settings))


def test_the_token_comes_from_its_file_or_the_environment(tmp_path, monkeypatch):
    assert _access(tmp_path, "from-file").token == "from-file"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert _access(tmp_path, "from-file").token == "from-env"


def test_nothing_protecting_enabled_metrics_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="allowed_addresses"):
        _access(tmp_path)
    assert MetricsAccess.from_settings(MetricsSettings()) == MetricsAccess()  # off: nothing read


@pytest.mark.parametrize(
    ("header", "address", "allowed"),
    [
        ("Bearer t0ken", "192.0.2.1", True),
        ("bearer t0ken", "192.0.2.1", True),
        ("Bearer t0ken2", "192.0.2.1", False),
        ("Basic t0ken", "192.0.2.1", False),
        (None, "192.0.2.1", False),
        (None, "10.1.2.3", True),
        (None, "::ffff:10.1.2.3", True),  # IPv4 on a dual-stack socket
        (None, "fd00::1", True),
        (None, "fd01::1", False),
        (None, "not an address", False),
        (None, None, False),
    ],
)
def test_a_request_is_let_in_by_its_token_or_its_address(tmp_path, header, address, allowed):
    access = _access(tmp_path, "t0ken", allowed_addresses=("10.0.0.0/8", "fd00::/16"))
    assert access.allows(header, address) is allowed


def test_allowed_addresses_are_checked_when_settings_load():
    from botical.config import load_settings

    env = {"BOTICAL_METRICS_ALLOWED_ADDRESSES": "127.0.0.1, 10.0.0.0/8"}
    assert load_settings(environ=env).metrics.allowed_addresses == ("127.0.0.1", "10.0.0.0/8")
    with pytest.raises(ConfigError, match=r"metrics\.allowed_addresses"):
        load_settings(environ={"BOTICAL_METRICS_ALLOWED_ADDRESSES": "localhost"})
