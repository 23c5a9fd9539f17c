"""Configuration: TOML file, then BOTICAL_* environment, then CLI flags -> frozen Settings.

Root keys map to `BOTICAL_<KEY>` and section keys to `BOTICAL_<SECTION>_<KEY>`
(`port` -> `BOTICAL_PORT`, `[auth] token_ttl` -> `BOTICAL_AUTH_TOKEN_TTL`). Lists given in the
environment are comma-separated. Secrets never live in the TOML: it may only name a file.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
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


@dataclass(frozen=True)
class AuthSettings:
    secret_file: str = ""
    token_ttl: int = 86400
    max_token_ttl: int = 30 * 86400
    apikey_touch_interval: int = 60
    role_cache_ttl: float = 10.0


@dataclass(frozen=True)
class PluginSettings:
    modules: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSettings:
    default_model: str = "echo"
    approval_timeout: float = 600.0
    flush_interval: float = 0.5
    run_lease: float = 15.0


@dataclass(frozen=True)
class ToolSettings:
    bash_timeout: int = 120
    bash_max_timeout: int = 600
    output_limit: int = 64 * 1024
    read_limit: int = 256 * 1024
    write_limit: int = 10 * 1024 * 1024
    mcp_start_timeout: float = 30.0
    mcp_idle_timeout: float = 600.0
    mcp_max_servers: int = 32
    mcp_max_message_size: int = 4 * 1024 * 1024
    search_timeout: float = 30.0


@dataclass(frozen=True)
class WebSocketSettings:
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_message_size: int = 1024 * 1024
    allowed_origins: tuple[str, ...] = ()
    queue_max_messages: int = 1000
    queue_max_bytes: int = 4 * 1024 * 1024
    rate_limit: float = 20.0
    rate_burst: int = 60
    abuse_limit: int = 200
    max_channels: int = 100
    max_inflight: int = 16
    max_connections_per_user: int = 20
    replay_buffer: int = 1000
    replay_buffer_bytes: int = 64 * 1024 * 1024
    max_tracked_channels: int = 10000
    revalidate_interval: float = 30.0
    request_timeout: float = 60.0


@dataclass(frozen=True)
class BusSettings:
    backend: str = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "botical"
    history_ttl: int = 86400
    timeout: float = 3.0


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = False
    token_file: str = ""
    allowed_addresses: tuple[str, ...] = ()
    port: int = 0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = False
    exporter: str = "otlp"
    endpoint: str = ""
    service_name: str = "botical"
    sample_ratio: float = 1.0


@dataclass(frozen=True)
class ProviderSettings:
    base_url: str = ""
    api_key_env: str = ""
    api_key_file: str = ""
    timeout: float = 60.0
    max_retries: int = 2


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4096
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str = ""
    database_workers: int = 4
    workers: int = 1
    log_level: str = "INFO"
    max_body_size: int = 1024 * 1024
    shutdown_timeout: float = 10.0
    session_cache_bytes: int = 32 * 1024 * 1024
    workspace_roots: tuple[str, ...] = ()
    auth: AuthSettings = field(default_factory=AuthSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    providers: tuple[tuple[str, ProviderSettings], ...] = ()
    source: str = "<defaults>"

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


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _tuple(value: list[str]) -> tuple[str, ...]:
    return tuple(value)


def _network(value: str) -> None:
    """An address or a network in CIDR notation (`10.0.0.0/8`, `::1`)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise SchemaError("Not an IP address or network.") from None


class AuthSchema(_Strict):
    secret_file = fields.String(load_default="")
    token_ttl = fields.Integer(load_default=86400, validate=validate.Range(min=60))
    max_token_ttl = fields.Integer(load_default=30 * 86400, validate=validate.Range(min=60))
    apikey_touch_interval = fields.Integer(load_default=60, validate=validate.Range(min=0))
    role_cache_ttl = fields.Float(load_default=10.0, validate=validate.Range(min=0, max=300))

    @validates_schema
    def ttl_within_max(self, data: dict[str, Any], **_: Any) -> None:
        # Otherwise `botical serve` cannot issue the admin's token with the default lifetime.
        if data.get("token_ttl", 86400) > data.get("max_token_ttl", 30 * 86400):
            raise SchemaError("Must not exceed max_token_ttl.", "token_ttl")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AuthSettings:
        return AuthSettings(**data)


class PluginsSchema(_Strict):
    modules = fields.List(fields.String(), load_default=list)
    dirs = fields.List(fields.String(), load_default=list)
    disabled = fields.List(fields.String(), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PluginSettings:
        return PluginSettings(**{k: _tuple(v) for k, v in data.items()})


class AgentSchema(_Strict):
    default_model = fields.String(load_default="echo", validate=validate.Length(min=1, max=200))
    approval_timeout = fields.Float(load_default=600.0, validate=validate.Range(min=1))
    flush_interval = fields.Float(load_default=0.5, validate=validate.Range(min=0.01, max=60))
    run_lease = fields.Float(load_default=15.0, validate=validate.Range(min=1, max=600))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AgentSettings:
        return AgentSettings(**data)


class ToolsSchema(_Strict):
    bash_timeout = fields.Integer(load_default=120, validate=validate.Range(min=1))
    bash_max_timeout = fields.Integer(load_default=600, validate=validate.Range(min=1))
    output_limit = fields.Integer(load_default=64 * 1024, validate=validate.Range(min=1024))
    read_limit = fields.Integer(load_default=256 * 1024, validate=validate.Range(min=1024))
    write_limit = fields.Integer(load_default=10 * 1024 * 1024, validate=validate.Range(min=1024))
    mcp_start_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=600))
    mcp_idle_timeout = fields.Float(load_default=600.0, validate=validate.Range(min=0))
    mcp_max_servers = fields.Integer(load_default=32, validate=validate.Range(min=1, max=1000))
    mcp_max_message_size = fields.Integer(
        load_default=4 * 1024 * 1024, validate=validate.Range(min=1024)
    )
    search_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=3600))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ToolSettings:
        return ToolSettings(**data)


class WebSocketSchema(_Strict):
    ping_interval = fields.Float(load_default=25.0, validate=validate.Range(min=0))
    ping_timeout = fields.Float(load_default=20.0, validate=validate.Range(min=1))
    max_message_size = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024))
    allowed_origins = fields.List(fields.String(), load_default=list)
    queue_max_messages = fields.Integer(load_default=1000, validate=validate.Range(min=10))
    queue_max_bytes = fields.Integer(
        load_default=4 * 1024 * 1024, validate=validate.Range(min=64 * 1024)
    )
    rate_limit = fields.Float(load_default=20.0, validate=validate.Range(min=0.1))
    rate_burst = fields.Integer(load_default=60, validate=validate.Range(min=1))
    abuse_limit = fields.Integer(load_default=200, validate=validate.Range(min=1))
    max_channels = fields.Integer(load_default=100, validate=validate.Range(min=1))
    max_inflight = fields.Integer(load_default=16, validate=validate.Range(min=1))
    max_connections_per_user = fields.Integer(load_default=20, validate=validate.Range(min=1))
    replay_buffer = fields.Integer(load_default=1000, validate=validate.Range(min=0))
    replay_buffer_bytes = fields.Integer(
        load_default=64 * 1024 * 1024, validate=validate.Range(min=0)
    )
    max_tracked_channels = fields.Integer(load_default=10000, validate=validate.Range(min=10))
    revalidate_interval = fields.Float(load_default=30.0, validate=validate.Range(min=0.1))
    request_timeout = fields.Float(load_default=60.0, validate=validate.Range(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> WebSocketSettings:
        data["allowed_origins"] = tuple(data["allowed_origins"])
        return WebSocketSettings(**data)


class BusSchema(_Strict):
    backend = fields.String(load_default="memory", validate=validate.OneOf(["memory", "redis"]))
    url = fields.String(
        load_default="redis://127.0.0.1:6379/0",
        validate=validate.Regexp(r"^(rediss?|unix)://", error="Use redis://, rediss:// or unix://"),
    )
    prefix = fields.String(
        load_default="botical", validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$")
    )
    history_ttl = fields.Integer(load_default=86400, validate=validate.Range(min=10))
    timeout = fields.Float(load_default=3.0, validate=validate.Range(min=0.1, max=60))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> BusSettings:
        return BusSettings(**data)


class MetricsSchema(_Strict):
    enabled = fields.Boolean(load_default=False)
    token_file = fields.String(load_default="")
    allowed_addresses = fields.List(fields.String(validate=_network), load_default=list)
    port = fields.Integer(load_default=0, validate=validate.Range(min=0, max=65535))
    host = fields.String(load_default="127.0.0.1", validate=validate.Length(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MetricsSettings:
        data["allowed_addresses"] = tuple(data["allowed_addresses"])
        return MetricsSettings(**data)


class TracingSchema(_Strict):
    enabled = fields.Boolean(load_default=False)
    exporter = fields.String(
        load_default="otlp", validate=validate.OneOf(["otlp", "console", "none"])
    )
    endpoint = fields.String(
        load_default="",
        validate=validate.Regexp(r"^(https?://.+)?$", error="Use an http:// or https:// URL"),
    )
    service_name = fields.String(load_default="botical", validate=validate.Length(min=1, max=200))
    sample_ratio = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TracingSettings:
        return TracingSettings(**data)


class ProviderSchema(_Strict):
    base_url = fields.String(load_default="")
    api_key_env = fields.String(load_default="")
    api_key_file = fields.String(load_default="")
    timeout = fields.Float(load_default=60.0, validate=validate.Range(min=1))
    max_retries = fields.Integer(load_default=2, validate=validate.Range(min=0, max=10))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ProviderSettings:
        return ProviderSettings(**data)


class SettingsSchema(_Strict):
    host = fields.String(load_default="127.0.0.1", validate=validate.Length(min=1))
    port = fields.Integer(load_default=4096, validate=validate.Range(min=0, max=65535))
    data_dir = fields.String(load_default=DEFAULT_DATA_DIR, validate=validate.Length(min=1))
    database_url = fields.String(load_default="")
    database_workers = fields.Integer(load_default=4, validate=validate.Range(min=1, max=64))
    workers = fields.Integer(load_default=1, validate=validate.Range(min=1, max=64))
    log_level = fields.String(
        load_default="INFO",
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
    )
    max_body_size = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024))
    shutdown_timeout = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=300))
    session_cache_bytes = fields.Integer(
        load_default=32 * 1024 * 1024, validate=validate.Range(min=0)
    )
    workspace_roots = fields.List(fields.String(), load_default=list)
    auth = fields.Nested(AuthSchema, load_default=dict)
    plugins = fields.Nested(PluginsSchema, load_default=dict)
    agent = fields.Nested(AgentSchema, load_default=dict)
    tools = fields.Nested(ToolsSchema, load_default=dict)
    websocket = fields.Nested(WebSocketSchema, load_default=dict)
    metrics = fields.Nested(MetricsSchema, load_default=dict)
    tracing = fields.Nested(TracingSchema, load_default=dict)
    bus = fields.Nested(BusSchema, load_default=dict)
    providers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_-]*$")),
        values=fields.Nested(ProviderSchema),
        load_default=dict,
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Settings:
        for name, schema in _sections().items():
            if isinstance(data[name], dict):  # load_default bypasses the nested post_load
                data[name] = schema.load(data[name])
        data["workspace_roots"] = tuple(data["workspace_roots"])
        data["providers"] = tuple(sorted(data["providers"].items()))
        return Settings(**data)


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
            continue  # [providers.NAME] tables come from the file; keys from api_key_env/_file
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
            if key == "value" and prefix.startswith("providers."):
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
            f"{sources.get(key, sources.get(key.split('.')[0], origin))}: {key}: {msg}"
            for key, msg in _flatten(exc.messages)
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
