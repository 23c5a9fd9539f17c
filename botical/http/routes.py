"""The built-in REST routes, registered like any plugin's: the console, health, the plugin
listing, /metrics, and a route for every method that declares one (`@method(..., rest=...)`)."""

from __future__ import annotations

from collections.abc import Mapping

from botical.hookspecs import RegisterRoute, hookimpl
from botical.http import health
from botical.http.methods import MethodHandler, method_routes
from botical.http.metrics import MetricsHandler
from botical.methods import MethodSpec


@hookimpl
def botical_register_routes(register: RegisterRoute, methods: Mapping[str, MethodSpec]) -> None:
    register(r"/", health.IndexHandler, {"path": str(health.STATIC_DIR)})
    register(r"/static/(.*)", health.StaticHandler, {"path": str(health.STATIC_DIR)})
    register(r"/health", health.HealthHandler)
    register(r"/health/ready", health.ReadyHandler)
    register(r"/-/plugins", health.PluginsHandler)
    register(r"/metrics", MetricsHandler)  # 404 unless [metrics] enabled
    for pattern, verbs in method_routes(methods.values()):
        register(pattern, MethodHandler, {"methods": verbs})
