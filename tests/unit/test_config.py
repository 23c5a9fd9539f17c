from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from marshmallow import fields

from botical.config import (
    Settings,
    SettingsSchema,
    load_settings,
    read_secret,
)
from botical.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOML = ROOT / "conf" / "botical.toml"
TEST_TOML = ROOT / "conf" / "test.toml"
# [auth], [plugins], ...: one table each, every key settable from the environment.
SECTIONS = {
    name: field.schema
    for name, field in SettingsSchema().fields.items()
    if isinstance(field, fields.Nested)
}
# [providers.NAME]: any number of tables of one schema, from the file only, none by default.
NAMED_TABLES = {
    name: field.value_field.schema
    for name, field in SettingsSchema().fields.items()
    if isinstance(field, fields.Dict)
}


def write(tmp_path: Path, text: str, name: str = "botical.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(*args, **kwargs) -> str:
    """The message of the ConfigError that load_settings raises."""
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return str(info.value)


def test_defaults_without_file_or_environment():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.source == "<defaults>"
    assert (settings.host, settings.port) == ("127.0.0.1", 4096)
    assert settings.data_dir == "~/.local/share/botical"


def test_file_values_are_loaded(tmp_path):
    path = write(
        tmp_path,
        'port = 5000\nworkspace_roots = ["/srv/a"]\n'
        '[auth]\ntoken_ttl = 600\n[plugins]\ndisabled = ["x"]\n',
    )
    settings = load_settings(path, environ={})
    assert settings.port == 5000
    assert settings.workspace_roots == ("/srv/a",)
    assert settings.auth.token_ttl == 600
    assert settings.auth.max_token_ttl == 30 * 86400
    assert settings.plugins.disabled == ("x",)
    assert settings.source == str(path)


def test_precedence_file_then_environment_then_cli(tmp_path):
    path = write(tmp_path, 'port = 1000\nhost = "10.0.0.1"\n[auth]\ntoken_ttl = 100\n')
    env = {"BOTICAL_PORT": "2000", "BOTICAL_AUTH_TOKEN_TTL": "200"}
    assert load_settings(path, environ={}).port == 1000
    from_env = load_settings(path, environ=env)
    assert (from_env.port, from_env.host, from_env.auth.token_ttl) == (2000, "10.0.0.1", 200)
    from_cli = load_settings(path, environ=env, overrides={"port": 3000, "host": None})
    assert (from_cli.port, from_cli.host) == (3000, "10.0.0.1")


def test_environment_sets_one_key_of_a_section_and_keeps_the_others(tmp_path):
    path = write(tmp_path, "[auth]\ntoken_ttl = 100\napikey_touch_interval = 5\n")
    settings = load_settings(path, environ={"BOTICAL_AUTH_TOKEN_TTL": "300"})
    assert settings.auth.token_ttl == 300
    assert settings.auth.apikey_touch_interval == 5


def test_lists_from_environment_are_comma_separated():
    settings = load_settings(
        environ={
            "BOTICAL_WORKSPACE_ROOTS": "/srv/a, /srv/b,,",
            "BOTICAL_PLUGINS_MODULES": "one.plugin,two",
            "BOTICAL_PLUGINS_DISABLED": "",
        }
    )
    assert settings.workspace_roots == ("/srv/a", "/srv/b")
    assert settings.plugins.modules == ("one.plugin", "two")
    assert settings.plugins.disabled == ()


def test_numbers_from_environment_are_converted():
    settings = load_settings(
        environ={"BOTICAL_SHUTDOWN_TIMEOUT": "2.5", "BOTICAL_DATABASE_WORKERS": "8"}
    )
    assert settings.shutdown_timeout == 2.5
    assert settings.database_workers == 8


def test_unknown_root_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "prot = 4096\n")
    message = config_error(path)
    assert "prot" in message
    assert str(path) in message


def test_unknown_section_key_names_the_dotted_key_and_the_file(tmp_path):
    path = write(tmp_path, '[auth]\nfoo = "bar"\n')
    message = config_error(path)
    assert "auth.foo" in message
    assert str(path) in message


def test_unknown_section_is_rejected(tmp_path):
    path = write(tmp_path, "[database]\nurl = 'x'\n")
    message = config_error(path)
    assert "database" in message
    assert str(path) in message


def test_provider_tables_load_and_unknown_keys_name_the_table(tmp_path):
    path = write(tmp_path, '[providers.openai]\nbase_url = "http://127.0.0.1:1/v1"\n')
    settings = load_settings(path, environ={})
    assert settings.provider("openai").base_url == "http://127.0.0.1:1/v1"
    bad = write(tmp_path, "[providers.openai]\nfoo = 1\n", "bad.toml")
    message = config_error(bad)
    assert "providers.openai.foo" in message
    assert str(bad) in message


def test_wrong_type_from_environment_names_the_variable():
    message = config_error(environ={"BOTICAL_PORT": "many"})
    assert "BOTICAL_PORT" in message
    assert "port" in message


def test_wrong_type_in_a_section_from_environment_names_the_variable():
    message = config_error(environ={"BOTICAL_AUTH_TOKEN_TTL": "a day"})
    assert "BOTICAL_AUTH_TOKEN_TTL" in message
    assert "auth.token_ttl" in message


def test_out_of_range_value_in_file_names_key_and_file(tmp_path):
    path = write(tmp_path, "port = 70000\n")
    message = config_error(path)
    assert "port" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('log_level = "verbose"\n', "log_level"),
        ("max_body_size = 10\n", "max_body_size"),
        ("shutdown_timeout = 0\n", "shutdown_timeout"),
        ("database_workers = 0\n", "database_workers"),
        ('host = ""\n', "host"),
        ("[auth]\ntoken_ttl = 59\n", "auth.token_ttl"),
        ("[auth]\napikey_touch_interval = -1\n", "auth.apikey_touch_interval"),
        ('[plugins]\nmodules = "not.a.list"\n', "plugins.modules"),
    ],
)
def test_invalid_values_are_rejected(tmp_path, text, key):
    path = write(tmp_path, text)
    message = config_error(path)
    assert key in message
    assert str(path) in message


def test_token_ttl_may_not_exceed_max_token_ttl(tmp_path):
    path = write(tmp_path, "[auth]\ntoken_ttl = 7200\nmax_token_ttl = 3600\n")
    message = config_error(path)
    assert "auth.token_ttl" in message
    assert "max_token_ttl" in message


def test_command_line_value_error_names_the_command_line():
    message = config_error(overrides={"port": -1})
    assert "command line" in message
    assert "port" in message


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "port = = 1\n")
    message = config_error(path)
    assert str(path) in message
    assert "TOML" in message


def test_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\nport = 1\n")
    assert str(path) in config_error(path)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    message = config_error(path)
    assert str(path) in message
    assert "not found" in message


def test_directory_instead_of_file_is_a_config_error(tmp_path):
    assert str(tmp_path) in config_error(tmp_path)


def test_botical_config_environment_variable_picks_the_file(tmp_path):
    path = write(tmp_path, "port = 4100\n")
    settings = load_settings(environ={"BOTICAL_CONFIG": str(path)})
    assert settings.port == 4100
    assert settings.source == str(path)


def test_explicit_path_wins_over_botical_config(tmp_path):
    chosen = write(tmp_path, "port = 4200\n", "chosen.toml")
    other = write(tmp_path, "port = 4300\n", "other.toml")
    settings = load_settings(chosen, environ={"BOTICAL_CONFIG": str(other)})
    assert settings.port == 4200


def test_settings_are_frozen():
    settings = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.auth.token_ttl = 1  # type: ignore[misc]
    assert isinstance(settings.workspace_roots, tuple)
    assert isinstance(settings.plugins.modules, tuple)


def test_read_secret_prefers_the_environment(tmp_path):
    secret_file = write(tmp_path, "from-file\n", "secret")
    environ = {"MY_SECRET": " from-env \n"}
    assert read_secret("MY_SECRET", str(secret_file), environ) == "from-env"


def test_read_secret_from_file(tmp_path):
    secret_file = write(tmp_path, "  from-file\n", "secret")
    assert read_secret("MY_SECRET", str(secret_file), {}) == "from-file"
    assert read_secret("MY_SECRET", str(secret_file), {"MY_SECRET": ""}) == "from-file"


def test_read_secret_with_nothing_configured_is_empty():
    assert read_secret("MY_SECRET", "", {}) == ""


@pytest.mark.parametrize("name", ["missing", "a-directory"])
def test_read_secret_unreadable_file_is_a_config_error(tmp_path, name):
    (tmp_path / "a-directory").mkdir()
    path = tmp_path / name
    with pytest.raises(ConfigError) as info:
        read_secret("MY_SECRET", str(path), {})
    assert str(path) in str(info.value)


def test_effective_database_url_defaults_to_sqlite_in_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    settings = load_settings(environ={}, overrides={"data_dir": str(data_dir)})
    assert settings.data_path == data_dir.resolve()
    assert settings.effective_database_url == f"sqlite:///{data_dir.resolve() / 'botical.db'}"


def test_default_data_dir_is_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(environ={})
    expected = (tmp_path / ".local" / "share" / "botical").resolve()
    assert settings.data_path == expected
    assert settings.effective_database_url == f"sqlite:///{expected / 'botical.db'}"


def test_configured_database_url_wins():
    url = "postgresql://botical@db.example:5432/botical"
    settings = load_settings(environ={"BOTICAL_DATABASE_URL": url})
    assert settings.effective_database_url == url


# The documentation in conf/botical.toml must stay complete and true.


def test_documented_defaults_equal_builtin_defaults():
    documented = load_settings(DEFAULT_TOML, environ={})
    assert dataclasses.replace(documented, source="<defaults>") == load_settings(environ={})
    assert dataclasses.replace(documented, source="<defaults>") == Settings()


def test_every_schema_key_is_documented():
    with DEFAULT_TOML.open("rb") as fh:
        documented = tomllib.load(fh)
    assert set(documented) == set(SettingsSchema().fields)
    tables = {name for name, value in documented.items() if isinstance(value, dict)}
    assert tables == set(SECTIONS) | set(NAMED_TABLES)
    for section, schema in SECTIONS.items():
        assert set(documented[section]) == set(schema.fields), f"[{section}]"
    for name, schema in NAMED_TABLES.items():
        assert documented[name] == {}, f"[{name}] must stay empty: its example is a comment"
        assert set(_commented_example(name)) == set(schema.fields), f"[{name}.NAME] example"


def _commented_example(table: str) -> dict:
    """The commented-out `# [TABLE.x]` example in conf/botical.toml, parsed."""
    lines = DEFAULT_TOML.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# [{table}."))
    block = []
    for line in lines[start + 1 :]:
        if " = " not in line or not line.startswith("# "):
            break
        block.append(line[2:])
    example = tomllib.loads("\n".join(block))
    load_settings(environ={}, overrides={table: {"example": example}})  # it must be valid
    return example


def test_every_key_has_a_comment_naming_its_environment_variable():
    text = DEFAULT_TOML.read_text()
    roots = SettingsSchema().fields
    names = [f"BOTICAL_{k}".upper() for k in roots if k not in SECTIONS and k not in NAMED_TABLES]
    for section, schema in SECTIONS.items():
        names += [f"BOTICAL_{section}_{key}".upper() for key in schema.fields]
    missing = [name for name in names if f"Env: {name}" not in text]
    assert not missing, f"conf/botical.toml does not name {missing}"


def test_test_configuration_loads():
    settings = load_settings(TEST_TOML, environ={})
    assert settings.log_level == "WARNING"
    assert settings.auth.token_ttl == 3600
