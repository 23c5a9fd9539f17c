"""The server addresses people paste: what `botical serve` prints (`http://host:port/?token=...`),
a WebSocket URL (`ws://host:port/ws`), or just `host:port`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botical.client.errors import InvalidURL

DEFAULT_PORT = 4096
SCHEMES = {
    "ws": ("ws", "http"),
    "http": ("ws", "http"),
    "wss": ("wss", "https"),
    "https": ("wss", "https"),
}


@dataclass(frozen=True)
class ServerURL:
    """One server: its `/ws` URL, the HTTP base of its REST API, and a token if the URL had one."""

    ws: str
    http: str
    token: str | None = None


def server_url(url: str) -> ServerURL:
    """Parse any of the accepted forms; InvalidURL, saying what is wrong, for anything else."""
    text = url.strip()
    if not text:
        raise InvalidURL("No server URL given")
    bare = "://" not in text  # host:port, or a host alone (on the default port)
    if bare:
        text = f"ws://{text}"
    parts = urlsplit(text)
    schemes = SCHEMES.get(parts.scheme.lower())
    if schemes is None:
        raise InvalidURL(f"{url!r} is not a server URL: use http(s)://, ws(s):// or host:port")
    try:
        port = parts.port
    except ValueError:
        raise InvalidURL(f"{url!r} has an invalid port") from None
    if not parts.hostname:
        raise InvalidURL(f"{url!r} names no host")
    netloc = parts.netloc.rpartition("@")[2]  # never carry user:password along
    if bare and port is None:
        netloc = f"{netloc}:{DEFAULT_PORT}"
    prefix = parts.path.rstrip("/").removesuffix("/ws")
    tokens = parse_qs(parts.query).get("token")
    return ServerURL(
        ws=urlunsplit((schemes[0], netloc, prefix + "/ws", "", "")),
        http=urlunsplit((schemes[1], netloc, prefix, "", "")),
        token=tokens[0] if tokens else None,
    )
