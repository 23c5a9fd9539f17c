from __future__ import annotations

import pytest

from botical.tools.base import ToolFailure
from botical.tools.sandbox import confine, minimal_env


def test_relative_path_inside_resolves_under_the_root(workspace):
    assert confine(workspace, "src/app.py") == workspace / "src" / "app.py"


def test_dotdot_that_stays_inside_is_allowed(workspace):
    assert confine(workspace, "src/../docs/a.md") == workspace / "docs" / "a.md"


@pytest.mark.parametrize(
    "path", ["..", "../outside/secret.txt", "src/../../outside", "a/b/../../../x"]
)
def test_dotdot_escaping_the_root_is_refused(workspace, outside, path):
    with pytest.raises(ToolFailure, match="outside the project directory"):
        confine(workspace, path)


def test_absolute_path_outside_is_refused(workspace, outside):
    for path in (str(outside / "secret.txt"), "/etc/passwd", "/"):
        with pytest.raises(ToolFailure, match="outside the project directory"):
            confine(workspace, path)


def test_absolute_path_inside_is_allowed(workspace):
    assert confine(workspace, str(workspace / "a" / "b.txt")) == workspace / "a" / "b.txt"


@pytest.mark.parametrize("path", [".", "", "./", "src/.."])
def test_the_root_itself_is_allowed(workspace, path):
    assert confine(workspace, path) == workspace


def test_the_root_itself_is_allowed_as_an_absolute_path(workspace):
    assert confine(workspace, str(workspace)) == workspace


def test_file_symlink_pointing_outside_is_refused(workspace, outside):
    (workspace / "innocent.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolFailure, match="outside the project directory"):
        confine(workspace, "innocent.txt")


def test_directory_symlink_pointing_outside_is_refused(workspace, outside):
    (workspace / "docs").symlink_to(outside, target_is_directory=True)
    for path in ("docs", "docs/secret.txt", "docs/new/file.txt"):
        with pytest.raises(ToolFailure, match="outside the project directory"):
            confine(workspace, path)


def test_dangling_symlink_pointing_outside_is_refused(workspace, outside):
    (workspace / "trap.txt").symlink_to(outside / "not-yet.txt")
    with pytest.raises(ToolFailure, match="outside the project directory"):
        confine(workspace, "trap.txt")


def test_symlink_pointing_inside_is_allowed_and_resolved(workspace):
    (workspace / "real").mkdir()
    (workspace / "real" / "f.txt").write_text("x")
    (workspace / "alias").symlink_to(workspace / "real", target_is_directory=True)
    (workspace / "f-link.txt").symlink_to(workspace / "real" / "f.txt")
    assert confine(workspace, "alias/f.txt") == workspace / "real" / "f.txt"
    assert confine(workspace, "f-link.txt") == workspace / "real" / "f.txt"


def test_sibling_sharing_the_root_prefix_is_refused(tmp_path, workspace):
    # The startswith trap: "/x/proj-evil" starts with "/x/proj".
    evil = tmp_path / "proj-evil"
    evil.mkdir()
    (evil / "loot.txt").write_text("loot")
    assert str(evil / "loot.txt").startswith(str(workspace))
    for path in (str(evil / "loot.txt"), str(evil), "../proj-evil/loot.txt"):
        with pytest.raises(ToolFailure, match="outside the project directory"):
            confine(workspace, path)


def test_nul_byte_is_refused(workspace):
    with pytest.raises(ToolFailure, match="Invalid path"):
        confine(workspace, "a.txt\x00../../etc/passwd")


def test_root_given_through_a_symlink_still_confines(tmp_path, workspace, outside):
    link_root = tmp_path / "proj-link"
    link_root.symlink_to(workspace, target_is_directory=True)
    assert confine(link_root, "a.txt") == workspace / "a.txt"
    assert confine(link_root, str(link_root / "a.txt")) == workspace / "a.txt"
    with pytest.raises(ToolFailure, match="outside the project directory"):
        confine(link_root, "../outside/secret.txt")


def test_minimal_env_passes_no_server_secrets(workspace, monkeypatch):
    monkeypatch.setenv("BOTICAL_AUTH_SECRET", "server-signing-secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = minimal_env(workspace)
    assert "BOTICAL_AUTH_SECRET" not in env
    assert set(env) <= {"PATH", "HOME", "PWD", "LANG", "LC_ALL", "TZ", "TERM"}
    assert env["LANG"] == "C.UTF-8"
    assert env["HOME"] == str(workspace)
    assert "/bin" in env["PATH"].split(":")
