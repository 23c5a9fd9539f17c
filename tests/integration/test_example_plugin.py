"""The example third-party plugin (plugins/botical-example), loaded and used over a real socket.

The tests run the same whether or not the package is installed: when it is not, its source
directory goes on sys.path; when it is, its entry point is blocked so that the module is
registered once, through the `botical_plugins` fixture, as plugin `botical_example`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from botical.config import load_settings
from botical.plugins import make_plugin_manager
from botical.testing.wsclient import WsClient, WsError

try:
    import botical_example
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "botical-example"))
    import botical_example

PLUGIN = "botical_example"  # the name a module registered as a plugin object gets


@pytest.fixture
def botical_plugins():
    return (botical_example,)


@pytest.fixture
def botical_overrides():
    # An installed copy would load a second time through its entry point, named "example".
    return {"plugins": {"disabled": ["example"]}}


@pytest.fixture
def connect(botical_app):
    """`await connect(person)` -> a WsClient with that person's token, closed after the test."""
    clients = []

    async def open_(person):
        client = await WsClient.connect(f"ws://127.0.0.1:{botical_app.port}/ws", person.token)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        client.close()


@pytest.fixture
def team(make_user):
    """`await team()` -> (project id, owner, member, viewer, outsider)."""

    async def make():
        owner, member, viewer, outsider = [
            await make_user(name) for name in ("olga", "max", "vera", "otto")
        ]
        project_id = (await owner.api.post("/api/projects", {"name": "Notes"})).body["id"]
        for person, role in ((member, "member"), (viewer, "viewer")):
            body = {"userId": person.id, "role": role}
            resp = await owner.api.post(f"/api/projects/{project_id}/members", body)
            assert resp.status == 201, resp.body
        return project_id, owner, member, viewer, outsider

    return make


def _write_dist_info(site, version="0.1.0"):
    """A minimal installed distribution whose entry point names the example module."""
    dist = site / f"botical_example-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: botical-example\nVersion: {version}\n"
    )
    (dist / "entry_points.txt").write_text("[botical]\nexample = botical_example\n")


def _plugin_names(pm):
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def test_the_entry_point_loads_the_plugin_named_example(tmp_path, monkeypatch):
    _write_dist_info(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager(load_settings(None, environ={}, overrides={}))
    assert pm.get_plugin("example") is botical_example
    assert dict(pm.list_plugin_distinfo())[botical_example].version == "0.1.0"
    for hook in (pm.hook.botical_register_methods, pm.hook.botical_register_channels):
        assert "example" in [impl.plugin_name for impl in hook.get_hookimpls()]


def test_disabled_blocks_the_entry_point_plugin(tmp_path, monkeypatch):
    _write_dist_info(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = load_settings(None, environ={}, overrides={"plugins": {"disabled": ["example"]}})
    assert "example" not in _plugin_names(make_plugin_manager(settings))


@pytest.mark.gen_test
async def test_echo_answers_any_caller(make_user, connect):
    alice = await make_user("alice")
    ws = await connect(alice)
    assert await ws.request("example.echo", text="hello") == {"text": "hello", "user": alice.id}


@pytest.mark.gen_test
async def test_a_published_note_reaches_a_subscribed_member(team, connect):
    project_id, owner, member, _, _ = await team()
    channel = f"example:{project_id}"
    listener, publisher = await connect(member), await connect(owner)
    ack = await listener.subscribe(channel)
    assert ack == {
        "subscribed": [{"channel": channel, "seq": 0, "recovered": False}],
        "rejected": [],
    }

    note = {"topic": "release", "message": "v1 is out", "by": owner.id}
    result = await publisher.request(
        "example.publish", projectId=project_id, topic="release", message="v1 is out"
    )
    assert result == note
    frame = await listener.next_event("example.note")
    assert frame == {
        "type": "event",
        "channel": channel,
        "event": "example.note",
        "data": note,
        "seq": 1,
    }


@pytest.mark.gen_test
async def test_an_outsider_may_not_subscribe_and_receives_nothing(team, connect):
    project_id, owner, member, _, outsider = await team()
    channel = f"example:{project_id}"
    listener, stranger, publisher = (
        await connect(member),
        await connect(outsider),
        await connect(owner),
    )
    await listener.subscribe(channel)
    ack = await stranger.subscribe(channel)
    assert ack["subscribed"] == []
    assert [(r["channel"], r["error"]["code"]) for r in ack["rejected"]] == [(channel, "FORBIDDEN")]

    await publisher.request("example.publish", projectId=project_id, topic="t", message="secret")
    await listener.next_event("example.note")
    # The note was queued to every subscriber before the publish answered, and one connection's
    # frames arrive in order: anything for the outsider would come before this response.
    await stranger.request("example.echo", text="sync")
    assert [f for f in stranger.frames if f.get("event") == "example.note"] == []


@pytest.mark.gen_test
async def test_a_viewer_may_subscribe_but_not_publish(team, connect):
    project_id, _, _, viewer, _ = await team()
    ws = await connect(viewer)
    ack = await ws.subscribe(f"example:{project_id}")
    assert ack["rejected"] == []
    with pytest.raises(WsError) as raised:
        await ws.request("example.publish", projectId=project_id, topic="t", message="hi")
    assert raised.value.code == "FORBIDDEN"


@pytest.mark.gen_test
async def test_publish_rejects_a_topic_that_is_not_a_slug(team, connect):
    project_id, owner, _, _, _ = await team()
    ws = await connect(owner)
    with pytest.raises(WsError) as raised:
        await ws.request("example.publish", projectId=project_id, topic="Not a slug", message="x")
    assert raised.value.code == "VALIDATION_ERROR"
    assert list(raised.value.details) == ["topic"]


@pytest.mark.gen_test
async def test_system_describe_lists_the_plugin_methods_and_channel(make_user, connect):
    ws = await connect(await make_user("alice"))
    described = await ws.request("system.describe")
    methods = {m["name"]: m for m in described["methods"]}
    echo, publish = methods["example.echo"], methods["example.publish"]
    assert (echo["plugin"], echo["role"]) == (PLUGIN, None)
    assert (publish["plugin"], publish["role"]) == (PLUGIN, "member")
    assert publish["description"] == "Publish a note to the project's example channel."
    assert set(publish["params"]["required"]) == {"projectId", "topic", "message"}
    channel = next(c for c in described["channels"] if c["pattern"] == "example:{id}")
    assert (channel["plugin"], channel["events"]) == (PLUGIN, ["example.note"])


@pytest.mark.gen_test
async def test_plugins_endpoint_lists_what_the_plugin_registered(make_user):
    alice = await make_user("alice")
    resp = await alice.api.get("/-/plugins")
    assert resp.status == 200, resp.body
    plugin = next(item for item in resp.body["items"] if item["name"] == PLUGIN)
    assert plugin["hooks"] == ["botical_register_channels", "botical_register_methods"]
    assert plugin["registered"] == {
        "methods": ["example.echo", "example.publish"],
        "channels": ["example"],
    }
