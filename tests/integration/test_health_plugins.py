"""`GET /-/plugins` and HTTP routes added by a plugin."""

from __future__ import annotations

import pytest
import tornado.netutil
import tornado.web

import botical
from botical.app import Botical
from botical.errors import PluginError
from botical.http.base import ApiHandler

BUILTIN_ROUTES = [
    "/health",
    "/health/ready",
    "/-/plugins",
    "/api/me",
    "/api/projects",
    "/api/projects/(?P<projectId>[a-z]+_[0-9a-z]+)",
    "/api/projects/(?P<projectId>[a-z]+_[0-9a-z]+)/members",
    "/api/projects/(?P<projectId>[a-z]+_[0-9a-z]+)/members/(?P<userId>[a-z]+_[0-9a-z]+)",
]


class HelloHandler(tornado.web.RequestHandler):
    def get(self, name: str) -> None:
        self.write({"hello": name})


class WhoAmIHandler(ApiHandler):
    """A plugin route built on Botical's API handler gets its authentication."""

    def get(self) -> None:
        self.write_json({"name": self.identity.name})


class GreetingPlugin:
    @staticmethod
    @botical.hookimpl
    def botical_register_routes(register):
        register(r"/-/hello/(\w+)", HelloHandler)
        register(r"/api/whoami", WhoAmIHandler)


@pytest.fixture
def botical_plugins():
    return (GreetingPlugin,)


def _by_name(body):
    return {item["name"]: item for item in body["items"]}


@pytest.mark.gen_test
async def test_plugins_lists_the_builtin_routes(make_user):
    alice = await make_user("alice")
    resp = await alice.api.get("/-/plugins")
    assert resp.status == 200, resp.body
    builtin = _by_name(resp.body)["botical.http.routes"]
    assert "botical_register_routes" in builtin["hooks"]
    assert set(BUILTIN_ROUTES) <= set(builtin["registered"]["routes"])


@pytest.mark.gen_test
async def test_plugins_lists_a_test_plugin_and_its_routes(make_user):
    alice = await make_user("alice")
    resp = await alice.api.get("/-/plugins")
    plugin = _by_name(resp.body)["GreetingPlugin"]
    assert plugin["hooks"] == ["botical_register_routes"]
    assert plugin["registered"] == {"routes": [r"/-/hello/(\w+)", "/api/whoami"]}
    assert plugin["version"] is None


@pytest.mark.gen_test
async def test_a_plugin_route_is_reachable_over_http(api):
    resp = await api.get("/-/hello/world")
    assert resp.status == 200, resp.body
    assert resp.body == {"hello": "world"}


@pytest.mark.gen_test
async def test_a_plugin_api_route_is_authenticated_like_the_builtin_ones(api, make_user):
    alice = await make_user("alice")
    assert (await alice.api.get("/api/whoami")).body == {"name": "alice"}
    anonymous = await api.get("/api/whoami")
    assert (anonymous.status, anonymous.error_code) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_plugins_needs_authentication(api):
    resp = await api.get("/-/plugins")
    assert (resp.status, resp.error_code) == (401, "UNAUTHORIZED")


class ClashingPlugin:
    @staticmethod
    @botical.hookimpl
    def botical_register_routes(register):
        register(r"/api/me", HelloHandler)


class NotAHandlerPlugin:
    @staticmethod
    @botical.hookimpl
    def botical_register_routes(register):
        register(r"/-/broken", object)


@pytest.mark.parametrize(
    "plugin,words",
    [
        (ClashingPlugin, ["/api/me", "botical.http.routes", "ClashingPlugin"]),
        (NotAHandlerPlugin, ["/-/broken", "NotAHandlerPlugin"]),
    ],
)
@pytest.mark.gen_test
async def test_a_bad_route_registration_stops_start_up_naming_the_plugin(
    botical_settings, plugin, words
):
    app = Botical(botical_settings, (plugin,))
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    try:
        with pytest.raises(PluginError) as raised:
            await app.start(sockets)
    finally:
        await app.stop()
        for sock in sockets:
            sock.close()
    for word in words:
        assert word in str(raised.value)
