"""Configuration: TOML file, then BOTICAL_* environment, then CLI flags -> frozen Settings.

Root keys map to `BOTICAL_<KEY>` and section keys to `BOTICAL_<SECTION>_<KEY>`
(`port` -> `BOTICAL_PORT`, `[auth] token_ttl` -> `BOTICAL_AUTH_TOKEN_TTL`). Lists given in the
environment are comma-separated. Secrets never live in the TOML: it may only name a file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, fields, post_load, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from botical import logredact
from botical.errors import ConfigError

DEFAULT_DATA_DIR = "~/.local/share/botical"
ENV_PREFIX = "BOTICAL_"


def setting(default: Any, *checks: Any, table: Any = None, required: bool = False) -> Any:
    """A setting, declared once: its default (the dataclass's) and the marshmallow validators
    of its values; `table` marks a `[NAME.KEY]` table of such dataclasses, validating KEY;
    `required` keys must be given (in a table)."""
    return field(default=default, metadata={"checks": checks, "table": table, "required": required})


Range, Length, OneOf = validate.Range, validate.Length, validate.OneOf


def _network(value: str) -> None:
    """An address or a network in CIDR notation (`10.0.0.0/8`, `::1`)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise SchemaError("Not an IP address or network.") from None


@dataclass(frozen=True)
class AuthSettings:
    secret_file: str = ""
    token_ttl: int = setting(86400, Range(min=60))
    max_token_ttl: int = setting(30 * 86400, Range(min=60))
    apikey_touch_interval: int = setting(60, Range(min=0))
    role_cache_ttl: float = setting(10.0, Range(min=0, max=300))

    @staticmethod
    def problems(data: dict[str, Any]) -> dict[str, str]:
        # Otherwise `botical serve` cannot issue the admin's token with the default lifetime.
        if data["token_ttl"] > data["max_token_ttl"]:
            return {"token_ttl": "Must not exceed max_token_ttl."}
        return {}


@dataclass(frozen=True)
class PluginSettings:
    modules: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSettings:
    default_model: str = setting("echo", Length(min=1, max=200))
    approval_timeout: float = setting(600.0, Range(min=1))
    flush_interval: float = setting(0.5, Range(min=0.01, max=60))
    run_lease: float = setting(15.0, Range(min=1, max=600))


@dataclass(frozen=True)
class ToolSettings:
    bash_timeout: int = setting(120, Range(min=1))
    bash_max_timeout: int = setting(600, Range(min=1))
    output_limit: int = setting(64 * 1024, Range(min=1024))
    read_limit: int = setting(256 * 1024, Range(min=1024))
    write_limit: int = setting(10 * 1024 * 1024, Range(min=1024))
    mcp_start_timeout: float = setting(30.0, Range(min=1, max=600))
    mcp_idle_timeout: float = setting(600.0, Range(min=0))
    mcp_max_servers: int = setting(32, Range(min=1, max=1000))
    mcp_max_message_size: int = setting(4 * 1024 * 1024, Range(min=1024))
    search_timeout: float = setting(30.0, Range(min=0.1, max=3600))


@dataclass(frozen=True)
class WebSocketSettings:
    ping_interval: float = setting(25.0, Range(min=0))
    ping_timeout: float = setting(20.0, Range(min=1))
    max_message_size: int = setting(1024 * 1024, Range(min=1024))
    allowed_origins: tuple[str, ...] = ()
    queue_max_messages: int = setting(1000, Range(min=10))
    queue_max_bytes: int = setting(4 * 1024 * 1024, Range(min=64 * 1024))
    rate_limit: float = setting(20.0, Range(min=0.1))
    rate_burst: int = setting(60, Range(min=1))
    abuse_limit: int = setting(200, Range(min=1))
    max_channels: int = setting(100, Range(min=1))
    max_inflight: int = setting(16, Range(min=1))
    max_connections_per_user: int = setting(20, Range(min=1))
    replay_buffer: int = setting(1000, Range(min=0))
    replay_buffer_bytes: int = setting(64 * 1024 * 1024, Range(min=0))
    max_tracked_channels: int = setting(10000, Range(min=10))
    revalidate_interval: float = setting(30.0, Range(min=0.1))
    request_timeout: float = setting(60.0, Range(min=1))


@dataclass(frozen=True)
class BusSettings:
    backend: str = setting("memory", OneOf(["memory", "redis"]))
    url: str = setting(
        "redis://127.0.0.1:6379/0",
        validate.Regexp(r"^(rediss?|unix)://", error="Use redis://, rediss:// or unix://"),
    )
    prefix: str = setting("botical", validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    history_ttl: int = setting(86400, Range(min=10))
    timeout: float = setting(3.0, Range(min=0.1, max=60))


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = False
    token_file: str = ""
    allowed_addresses: tuple[str, ...] = setting((), _network)
    port: int = setting(0, Range(min=0, max=65535))
    host: str = setting("127.0.0.1", Length(min=1))


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = False
    exporter: str = setting("otlp", OneOf(["otlp", "console", "none"]))
    endpoint: str = setting(
        "", validate.Regexp(r"^(https?://.+)?$", error="Use an http:// or https:// URL")
    )
    service_name: str = setting("botical", Length(min=1, max=200))
    sample_ratio: float = setting(1.0, Range(min=0, max=1))


@dataclass(frozen=True)
class ProviderSettings:
    base_url: str = ""
    api_key_env: str = ""
    api_key_file: str = ""
    timeout: float = setting(60.0, Range(min=1))
    max_retries: int = setting(2, Range(min=0, max=10))


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@dataclass(frozen=True)
class ModelPrice:
    """What a model costs, per million tokens; `cached` input tokens cost `input` if unset."""

    input: float = setting(0.0, Range(min=0), required=True)
    output: float = setting(0.0, Range(min=0), required=True)
    cached: float | None = setting(None, Range(min=0))


@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", Length(min=1))
    port: int = setting(4096, Range(min=0, max=65535))
    data_dir: str = setting(DEFAULT_DATA_DIR, Length(min=1))
    database_url: str = ""
    database_workers: int = setting(4, Range(min=1, max=64))
    workers: int = setting(1, Range(min=1, max=64))
    log_level: str = setting("INFO", OneOf(LOG_LEVELS))
    max_body_size: int = setting(1024 * 1024, Range(min=1024))
    shutdown_timeout: float = setting(10.0, Range(min=0.1, max=300))
    session_cache_bytes: int = setting(32 * 1024 * 1024, Range(min=0))
    workspace_roots: tuple[str, ...] = ()
    auth: AuthSettings = field(default_factory=AuthSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    providers: tuple[tuple[str, ProviderSettings], ...] = setting(
        (), table=validate.Regexp(r"^[a-z][a-z0-9_-]*$")
    )
    pricing: tuple[tuple[str, ModelPrice], ...] = setting((), table=Length(min=1, max=200))
    source: str = field(default="<defaults>", metadata={"internal": True})

    def provider(self, name: str) -> ProviderSettings:
        """The `[providers.NAME]` table, or the defaults when there is none."""
        return dict(self.providers).get(name, ProviderSettings())

    @property
    def data_path(self) -> Path:
        """The data directory, with `~` expanded and made absolute."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_path / 'botical.db'}"


_SCALARS: dict[Any, type[fields.Field]] = {
    bool: fields.Boolean,
    str: fields.String,
    int: fields.Integer,
    float: fields.Float,
}


def schema_for(settings: type) -> Schema:
    """The marshmallow schema of a settings dataclass, from its fields: types from the
    annotations, defaults and validators from `setting`, nested tables, unknown keys refused."""
    hints = typing.get_type_hints(settings)
    declared = {}
    for item in dataclasses.fields(settings):
        if not item.metadata.get("internal"):
            declared[item.name] = _field(hints[item.name], item)

    def make(self: Schema, data: dict[str, Any], **_: Any) -> Any:
        for name, value in data.items():
            declared_field = declared[name]
            if isinstance(declared_field, fields.Nested) and isinstance(value, dict):
                data[name] = declared_field.schema.load(value)  # a default bypasses post_load
            elif isinstance(value, dict):  # a [NAME.KEY] table, kept sorted by KEY
                data[name] = tuple(sorted(value.items()))
            elif isinstance(value, list):
                data[name] = tuple(value)
        return settings(**data)

    def check(self: Schema, data: dict[str, Any], **_: Any) -> None:
        problems: dict[str, str] = getattr(settings, "problems", lambda data: {})(data)
        for key, message in problems.items():
            raise SchemaError(message, key)

    hooks = {"make": post_load(make), "check": validates_schema(check)}
    return type(f"{settings.__name__}Schema", (_Strict,), {**declared, **hooks})()


def _field(kind: Any, item: dataclasses.Field[Any]) -> fields.Field:
    checks = list(item.metadata.get("checks", ()))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return fields.Nested(schema_for(kind), load_default=dict)
    if item.metadata.get("table") is not None:  # tuple[tuple[str, Dataclass], ...]
        values = schema_for(typing.get_args(typing.get_args(kind)[0])[1])
        keys = fields.String(validate=item.metadata["table"])
        return fields.Dict(keys=keys, values=fields.Nested(values), load_default=dict)
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: the checks are of each item
        return fields.List(fields.String(validate=checks), load_default=list)
    optional = type(None) in typing.get_args(kind)
    if optional:  # `float | None`: a float, or nothing
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    scalar = _SCALARS[kind]
    if item.metadata.get("required"):
        return scalar(required=True, validate=checks)
    return scalar(load_default=item.default, validate=checks, allow_none=optional)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


SettingsSchema = type(schema_for(Settings))


def _sections() -> dict[str, Schema]:
    return {
        name: f.schema
        for name, f in SettingsSchema().fields.items()
        if isinstance(f, fields.Nested)
    }


def _env_overrides(environ: dict[str, str], sources: dict[str, str]) -> dict[str, Any]:
    """Collect the BOTICAL_* variables that name a known key."""
    out: dict[str, Any] = {}
    sections = _sections()
    for name, fld in SettingsSchema().fields.items():
        if isinstance(fld, fields.Dict):
            continue  # [providers.NAME] and [pricing] tables come from the file only
        if name in sections:
            for key, sub in sections[name].fields.items():
                env = f"{ENV_PREFIX}{name}_{key}".upper()
                if env in environ:
                    out.setdefault(name, {})[key] = _env_value(environ[env], sub)
                    sources[f"{name}.{key}"] = f"environment variable {env}"
        else:
            env = f"{ENV_PREFIX}{name}".upper()
            if env in environ:
                out[name] = _env_value(environ[env], fld)
                sources[name] = f"environment variable {env}"
    return out


def _env_value(raw: str, fld: fields.Field) -> Any:
    if isinstance(fld, fields.List):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            if key == "value" and prefix.startswith(("providers.", "pricing.")):
                out += _flatten(value, prefix)  # marshmallow's Dict nests errors under "value"
                continue
            out += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(prefix, " ".join(messages))]
    return [(prefix, str(messages))]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from None


def _record_sources(data: dict[str, Any], origin: str, sources: dict[str, str], prefix=""):
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _record_sources(value, origin, sources, dotted)
        sources[dotted] = origin


def _source(key: str, sources: dict[str, str], origin: str) -> str:
    """Where the value of `key` (or of the nearest key above it: a list's item) came from."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = sources.get(".".join(parts[:end]))
        if found is not None:
            return found
    return origin


def _no_password_in_file(data: dict[str, Any], sources: dict[str, str]) -> None:
    """A password may reach `[bus] url` only from the environment (BOTICAL_BUS_URL)."""
    url = data.get("bus", {}).get("url")
    origin = sources.get("bus.url", "")
    if isinstance(url, str) and not origin.startswith("environment") and "@" in url:
        credentials = url.split("://", 1)[-1].rsplit("@", 1)[0]
        if ":" in credentials:
            raise ConfigError(
                f"invalid configuration:\n  {origin}: bus.url: holds a password; put the URL in "
                "BOTICAL_BUS_URL instead (secrets never go in the configuration file)"
            )


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load and validate settings; raise ConfigError naming the key and where it came from."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get(f"{ENV_PREFIX}CONFIG") or None
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    origin = "<defaults>"
    if path:
        origin = str(Path(path))
        data = _read_toml(Path(path))
        _record_sources(data, origin, sources)
    data = _merge(data, _env_overrides(environ, sources))
    cli = {k: v for k, v in (overrides or {}).items() if v is not None}
    _record_sources(cli, "command line", sources)
    data = _merge(data, cli)
    _no_password_in_file(data, sources)
    try:
        settings = SettingsSchema().load(data)
    except SchemaError as exc:
        problems = [
            f"{_source(key, sources, origin)}: {key}: {msg}" for key, msg in _flatten(exc.messages)
        ]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    return replace(settings, source=origin)


def read_secret(env_name: str, file_path: str, environ: Mapping[str, str] | None = None) -> str:
    """Read a secret from an environment variable or, failing that, from a file; "" if neither.
    The value is never logged (logredact)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    value = ""
    if env.get(env_name):
        value = env[env_name].strip()
    elif file_path:
        try:
            value = Path(file_path).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {file_path}: {exc.strerror}") from None
    logredact.add_secret(value)  # whatever logs it later, it shows as [redacted]
    return value
