"""File tools open what `confine` checked, not what a symlink swapped in afterwards points to.

The race is made deterministic: either the symlink is already in place when the open happens
(for each component of the path), or `confine` is wrapped so that a directory of the checked
path is replaced by a symlink to the outside right after the check returned.
"""

from __future__ import annotations

import os
import shutil

import pytest

from botical.tools import files, fsworker, sandbox
from botical.tools.base import ToolFailure

OUTSIDE = "outside the project directory"


@pytest.fixture
def nested(workspace, outside):
    """`a/b/c.txt` inside, and the same tree outside with a secret in it."""
    (workspace / "a" / "b").mkdir(parents=True)
    (workspace / "a" / "b" / "c.txt").write_text("inside\n")
    (outside / "a" / "b").mkdir(parents=True)
    (outside / "a" / "b" / "c.txt").write_text("TOP SECRET outside the project\n")
    return workspace / "a" / "b" / "c.txt"


@pytest.mark.parametrize("component", ["a", "a/b", "a/b/c.txt"])
@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_WRONLY | os.O_TRUNC], ids=["read", "write"])
def test_a_symlink_on_any_component_at_open_time_is_refused(
    workspace, outside, nested, component, flags
):
    checked = sandbox.confine(workspace, "a/b/c.txt")  # resolved while everything is real
    swapped = workspace / component
    shutil.rmtree(swapped) if swapped.is_dir() else swapped.unlink()
    swapped.symlink_to(outside / component)
    with pytest.raises(fsworker.Escaped):
        fsworker.open_under(str(workspace), str(checked), flags)
    assert (outside / "a" / "b" / "c.txt").read_text() == "TOP SECRET outside the project\n"


def test_making_parents_stops_at_a_swapped_symlink(workspace, outside):
    (workspace / "new").symlink_to(outside)
    with pytest.raises(fsworker.Escaped):
        fsworker.open_under(
            str(workspace),
            str(workspace / "new" / "x" / "f.txt"),
            os.O_WRONLY | os.O_CREAT,
            mkdirs=True,
        )
    assert not (outside / "x").exists()


@pytest.fixture
def swap_after_check(monkeypatch, workspace, outside, nested):
    """`confine` as the tools see it: the real check, then `a` becomes a link to the outside."""

    def confine_then_swap(root, user_path):
        checked = sandbox.confine(root, user_path)
        if not (workspace / "a").is_symlink():
            shutil.rmtree(workspace / "a")
            (workspace / "a").symlink_to(outside / "a")
        return checked

    monkeypatch.setattr(files, "confine", confine_then_swap)


@pytest.mark.parametrize(
    "name, args",
    [
        ("read", {"path": "a/b/c.txt"}),
        ("read", {"path": "a/b/c.txt", "offset": 1}),
        ("write", {"path": "a/b/c.txt", "content": "overwritten"}),
        ("write", {"path": "a/b/new.txt", "content": "planted"}),
        ("edit", {"path": "a/b/c.txt", "old": "TOP SECRET", "new": "changed"}),
        ("grep", {"pattern": "SECRET", "path": "a"}),
        ("grep", {"pattern": "SECRET", "path": "a/b/c.txt"}),
        ("glob", {"pattern": "**/*.txt", "path": "a/b"}),
    ],
)
@pytest.mark.gen_test
async def test_a_directory_swapped_after_the_check_leads_nowhere(
    call, outside, swap_after_check, name, args
):
    with pytest.raises(ToolFailure, match=OUTSIDE) as caught:
        await call(name, args)
    assert "TOP SECRET" not in str(caught.value)
    assert (outside / "a" / "b" / "c.txt").read_text() == "TOP SECRET outside the project\n"
    assert not (outside / "a" / "b" / "new.txt").exists()


@pytest.mark.gen_test
async def test_a_walk_never_enters_a_directory_swapped_for_a_link(call, workspace, outside, nested):
    (workspace / "a" / "b").rename(workspace / "a" / "gone")
    (workspace / "a" / "b").symlink_to(outside / "a" / "b")  # a link where a directory was
    hits = await call("grep", {"pattern": "SECRET|inside"})
    assert hits.output == "a/gone/c.txt:1: inside"
    listed = await call("glob", {"pattern": "**/*.txt"})
    assert listed.output == "a/gone/c.txt"


@pytest.mark.gen_test
async def test_links_that_stay_inside_still_work(call, workspace, nested):
    (workspace / "alias").symlink_to(workspace / "a" / "b")
    (workspace / "note.txt").symlink_to(workspace / "a" / "b" / "c.txt")
    assert (await call("read", {"path": "alias/c.txt"})).output == "inside\n"
    found = await call("grep", {"pattern": "inside", "path": "note.txt"})
    assert found.output == "a/b/c.txt:1: inside"  # named by where it really is
    await call("write", {"path": "alias/d.txt", "content": "via a link"})
    assert (workspace / "a" / "b" / "d.txt").read_text() == "via a link"
