"""`GET /metrics`: the app's Prometheus metrics, for a bearer token or an allowed address.

Off by default: the route answers 404 until `[metrics] enabled`. Enabled, it needs at least
one of `[metrics] token_file` (or BOTICAL_METRICS_TOKEN) and `[metrics] allowed_addresses`,
or the server does not start. Behind a reverse proxy every client comes from the proxy's
address: allow addresses only where the proxy does not forward /metrics, or use the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

import tornado.web

from botical.auth.identity import bearer_token
from botical.config import MetricsSettings, read_secret
from botical.errors import ConfigError, Forbidden, NotFound, Unauthorized
from botical.http.base import BaseHandler, NotFoundHandler, log_request

TOKEN_ENV = "BOTICAL_METRICS_TOKEN"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read /metrics: the bearer of `token`, or a client from one of `networks`."""

    token: str = ""
    networks: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: MetricsSettings) -> MetricsAccess:
        """Read the token (environment, then file); refuse metrics that nothing protects."""
        if not settings.enabled:
            return cls()
        access = cls(
            read_secret(TOKEN_ENV, settings.token_file),
            tuple(ipaddress.ip_network(a, strict=False) for a in settings.allowed_addresses),
        )
        if not access.token and not access.networks:
            raise ConfigError(
                "[metrics] enabled needs a token (BOTICAL_METRICS_TOKEN or [metrics] token_file)"
                " or [metrics] allowed_addresses"
            )
        return access

    def allows(self, authorization: str | None, address: str | None) -> bool:
        """Whether a request with this Authorization header, from this address, may read."""
        if self.token and authorization:
            given = bearer_token(authorization) or ""
            if hmac.compare_digest(given.encode(), self.token.encode()):
                return True
        return self.from_allowed(address)

    def from_allowed(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


class MetricsHandler(BaseHandler):
    """`GET /metrics`: Prometheus text format."""

    def get(self) -> None:
        app = self.botical
        if not app.metrics.enabled:
            raise NotFound("Metrics are off ([metrics] enabled = false)")
        access = app.metrics_access
        if not access.allows(self.request.headers.get("Authorization"), self.request.remote_ip):
            if not access.token:
                raise Forbidden("This address may not read metrics")
            # Written here, not raised: an error page would drop the header.
            self.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            error = Unauthorized("A valid metrics token is required")
            self.write_json({"error": error.to_payload()}, error.status)
            return
        body, content_type = app.metrics.render(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.finish(body)


def metrics_web_app(app: object) -> tornado.web.Application:
    """The application of the metrics port: /metrics and nothing else."""
    return tornado.web.Application(
        [(r"/metrics", MetricsHandler)],
        botical=app,
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        compress_response=False,
    )
