import sys
import textwrap

import pytest

from botical.app import _route
from botical.config import load_settings
from botical.errors import PluginError
from botical.plugins import DEFAULT_PLUGINS, Registry, collect, make_plugin_manager, plugin_info

ROUTES_PLUGIN = """
import tornado.web
from botical import hookimpl

class Handler(tornado.web.RequestHandler):
    pass

@hookimpl
def botical_register_routes(register):
    register({pattern!r}, Handler)
"""


def routes_plugin(pattern):
    return ROUTES_PLUGIN.format(pattern=pattern)


def settings(**plugins):
    return load_settings(None, environ={}, overrides={"plugins": plugins})


def routes(pm):
    return collect(pm, "botical_register_routes", "route", _route, methods={})


def loaded_names(pm):
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


@pytest.fixture
def written():
    """Names of modules written by a test; removed from sys.modules afterwards."""
    names = []
    yield names
    for name in names:
        sys.modules.pop(name, None)
        sys.modules.pop(f"botical_plugin_dir_{name}", None)


@pytest.fixture
def write_module(tmp_path, monkeypatch, written):
    """`write_module(name, source)`: an importable module, for `[plugins] modules`."""
    directory = tmp_path / "modules"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))

    def write(name, source):
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)

    return write


class PluginDir:
    def __init__(self, path, written):
        self.path = path
        self._written = written

    def write(self, name, source):
        path = self.path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        self._written.append(name)
        return path


@pytest.fixture
def dir_plugins(tmp_path, written):
    """A directory for `[plugins] dirs`."""
    path = tmp_path / "plugin-dir"
    path.mkdir()
    return PluginDir(path, written)


def test_the_default_plugins_are_loaded():
    pm = make_plugin_manager(settings())
    assert set(DEFAULT_PLUGINS) <= loaded_names(pm)
    assert routes(pm).by_plugin("botical.http.routes")


def test_each_call_makes_a_fresh_plugin_manager(write_module):
    write_module("fresh_plugin", routes_plugin("/fresh"))
    with_it = make_plugin_manager(settings(modules=["fresh_plugin"]))
    without = make_plugin_manager(settings())
    assert "fresh_plugin" in loaded_names(with_it)
    assert "fresh_plugin" not in loaded_names(without)


def test_a_plugin_named_in_modules_is_loaded(write_module):
    write_module("greeter_plugin", routes_plugin("/greet"))
    pm = make_plugin_manager(settings(modules=["greeter_plugin"]))
    assert routes(pm).by_plugin("greeter_plugin") == ["/greet"]


def test_a_py_file_in_a_plugin_dir_is_loaded(dir_plugins):
    dir_plugins.write("dir_plugin", routes_plugin("/from-dir"))
    pm = make_plugin_manager(settings(dirs=[str(dir_plugins.path)]))
    assert routes(pm).by_plugin("dir_plugin") == ["/from-dir"]


def test_an_extra_plugin_object_is_loaded(write_module):
    write_module("extra_plugin", routes_plugin("/extra"))
    import extra_plugin

    pm = make_plugin_manager(settings(), extra=(extra_plugin,))
    assert "/extra" in routes(pm)


def test_disabled_blocks_a_default_plugin():
    pm = make_plugin_manager(settings(disabled=["botical.http.routes"]))
    assert "botical.http.routes" not in loaded_names(pm)
    assert "/health" not in routes(pm)


def test_disabled_blocks_a_dir_plugin_without_importing_it(dir_plugins):
    dir_plugins.write("unwanted", "raise RuntimeError('must not be imported')")
    dir_plugins.write("wanted", routes_plugin("/wanted"))
    pm = make_plugin_manager(settings(dirs=[str(dir_plugins.path)], disabled=["unwanted"]))
    assert "unwanted" not in loaded_names(pm)
    assert "wanted" in loaded_names(pm)


def test_disabled_blocks_a_module_plugin_without_importing_it(write_module):
    write_module("unwanted_module", "raise RuntimeError('must not be imported')")
    conf = settings(modules=["unwanted_module"], disabled=["unwanted_module"])
    assert "unwanted_module" not in loaded_names(make_plugin_manager(conf))


def test_a_misspelt_hook_fails_naming_the_plugin_and_the_hook(write_module):
    write_module(
        "typo_plugin",
        """
        from botical import hookimpl

        @hookimpl
        def botical_register_method(register):
            pass
        """,
    )
    with pytest.raises(PluginError) as caught:
        make_plugin_manager(settings(modules=["typo_plugin"]))
    assert "typo_plugin" in str(caught.value)
    assert "botical_register_method" in str(caught.value)


def test_a_module_that_cannot_be_imported_fails_naming_it():
    with pytest.raises(PluginError, match="no_such_botical_plugin"):
        make_plugin_manager(settings(modules=["no_such_botical_plugin"]))


def test_a_plugin_file_that_raises_on_import_fails_naming_the_file(dir_plugins):
    path = dir_plugins.write("exploding", "raise RuntimeError('boom at import')")
    with pytest.raises(PluginError) as caught:
        make_plugin_manager(settings(dirs=[str(dir_plugins.path)]))
    assert str(path) in str(caught.value)
    assert "boom at import" in str(caught.value)


def test_two_plugins_registering_one_route_fail_naming_both(write_module):
    write_module("first_plugin", routes_plugin("/same"))
    write_module("second_plugin", routes_plugin("/same"))
    pm = make_plugin_manager(settings(modules=["first_plugin", "second_plugin"]))
    with pytest.raises(PluginError) as caught:
        routes(pm)
    assert "first_plugin" in str(caught.value)
    assert "second_plugin" in str(caught.value)


def test_a_plugin_reusing_a_built_in_route_fails_naming_both(write_module):
    write_module("squatter_plugin", routes_plugin("/health"))
    pm = make_plugin_manager(settings(modules=["squatter_plugin"]))
    with pytest.raises(PluginError, match="squatter_plugin") as caught:
        routes(pm)
    assert "botical.http.routes" in str(caught.value)


def test_a_route_handler_that_is_not_a_request_handler_fails_naming_the_plugin(write_module):
    write_module(
        "bad_handler_plugin",
        """
        from botical import hookimpl

        @hookimpl
        def botical_register_routes(register):
            register("/bad", object)
        """,
    )
    pm = make_plugin_manager(settings(modules=["bad_handler_plugin"]))
    with pytest.raises(PluginError, match=r"bad_handler_plugin.*invalid route"):
        routes(pm)


def test_a_registration_with_wrong_arguments_fails_naming_the_plugin(write_module):
    write_module(
        "bad_args_plugin",
        """
        from botical import hookimpl

        @hookimpl
        def botical_register_routes(register):
            register("/only-a-pattern")
        """,
    )
    pm = make_plugin_manager(settings(modules=["bad_args_plugin"]))
    with pytest.raises(PluginError, match="bad_args_plugin"):
        routes(pm)


def test_plugin_info_describes_each_loaded_plugin(write_module):
    write_module("info_plugin", routes_plugin("/info"))
    pm = make_plugin_manager(settings(modules=["info_plugin"]))
    info = {item["name"]: item for item in plugin_info(pm, {"route": routes(pm)})}
    assert info["info_plugin"] == {
        "name": "info_plugin",
        "version": None,
        "hooks": ["botical_register_routes"],
        "registered": {"route": ["/info"]},
    }
    assert "/health" in info["botical.http.routes"]["registered"]["route"]


def test_plugin_info_leaves_out_blocked_plugins():
    pm = make_plugin_manager(settings(disabled=["botical.http.routes"]))
    names = [item["name"] for item in plugin_info(pm, {})]
    assert "botical.http.routes" not in names


def test_registry_keeps_each_value_with_its_plugin():
    registry = Registry("tool")
    registry.add("read", "READ", "core")
    registry.add("shout", "SHOUT", "loud")
    assert registry.get("read") == "READ"
    assert registry.get("missing") is None
    assert "shout" in registry
    assert len(registry) == 2
    assert registry.by_plugin("loud") == ["shout"]
    assert [r.name for r in registry] == ["read", "shout"]


def test_registry_refuses_a_second_registration_naming_both_plugins():
    registry = Registry("tool")
    registry.add("read", 1, "core")
    with pytest.raises(PluginError, match=r"tool 'read'.*'core'.*'copycat'"):
        registry.add("read", 2, "copycat")
    assert registry.get("read") == 1
