from __future__ import annotations

import pytest

from botical.tools import files
from botical.tools.base import ToolFailure
from botical.tools.files import MAX_MATCHES

OUTSIDE = "outside the project directory"


def lines(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


# read


@pytest.mark.gen_test
async def test_read_returns_the_whole_file(call, workspace):
    (workspace / "notes.txt").write_text(lines(5))
    result = await call("read", {"path": "notes.txt"})
    assert result.output == lines(5)
    assert not result.is_error


@pytest.mark.gen_test
async def test_read_offset_and_limit_select_lines(call, workspace):
    (workspace / "notes.txt").write_text(lines(10))
    both = await call("read", {"path": "notes.txt", "offset": 3, "limit": 2})
    assert both.output == "line 3\nline 4\n"
    tail = await call("read", {"path": "notes.txt", "offset": 9})
    assert tail.output == "line 9\nline 10\n"
    head = await call("read", {"path": "notes.txt", "limit": 1})
    assert head.output == "line 1\n"


@pytest.mark.gen_test
async def test_read_missing_file_is_a_tool_failure(call):
    with pytest.raises(ToolFailure, match=r"No such file: nope\.txt"):
        await call("read", {"path": "nope.txt"})


@pytest.mark.gen_test
async def test_read_truncates_at_read_limit_with_a_marker(call, workspace):
    (workspace / "big.txt").write_text("a" * 100)
    result = await call("read", {"path": "big.txt"}, read_limit=10)
    assert result.output == "a" * 10 + "\n[truncated]"
    exact = await call("read", {"path": "big.txt"}, read_limit=100)
    assert exact.output == "a" * 100


@pytest.mark.gen_test
async def test_read_refuses_a_directory(call, workspace):
    (workspace / "src").mkdir()
    with pytest.raises(ToolFailure, match="No such file"):
        await call("read", {"path": "src"})


@pytest.mark.gen_test
async def test_read_refuses_paths_outside(call, workspace, outside):
    (workspace / "innocent.txt").symlink_to(outside / "secret.txt")
    for path in ("../outside/secret.txt", str(outside / "secret.txt"), "innocent.txt"):
        with pytest.raises(ToolFailure, match=OUTSIDE) as caught:
            await call("read", {"path": path})
        assert "TOP SECRET" not in str(caught.value)


# write


@pytest.mark.gen_test
async def test_write_creates_parent_directories_inside(call, workspace):
    result = await call("write", {"path": "a/b/c.txt", "content": "héllo"})
    assert (workspace / "a" / "b" / "c.txt").read_text() == "héllo"
    assert result.output == "Wrote 6 bytes to a/b/c.txt"


@pytest.mark.gen_test
async def test_write_overwrites_an_existing_file(call, workspace):
    (workspace / "f.txt").write_text("old content that is longer")
    await call("write", {"path": "f.txt", "content": "new"})
    assert (workspace / "f.txt").read_text() == "new"


@pytest.mark.gen_test
async def test_write_refuses_escape_and_creates_nothing(call, tmp_path, outside):
    for path in ("../escaped.txt", str(tmp_path / "escaped.txt"), "../proj-evil/x.txt"):
        with pytest.raises(ToolFailure, match=OUTSIDE):
            await call("write", {"path": path, "content": "x"})
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "proj-evil").exists()


@pytest.mark.gen_test
async def test_write_through_a_symlinked_directory_pointing_outside_is_refused(
    call, workspace, outside
):
    (workspace / "link").symlink_to(outside, target_is_directory=True)
    for path in ("link/evil.txt", "link/deeper/evil.txt"):
        with pytest.raises(ToolFailure, match=OUTSIDE):
            await call("write", {"path": path, "content": "pwned"})
    assert sorted(p.name for p in outside.iterdir()) == ["leak.py", "secret.txt"]


@pytest.mark.gen_test
async def test_write_through_a_dangling_symlink_pointing_outside_is_refused(
    call, workspace, outside
):
    (workspace / "trap.txt").symlink_to(outside / "planted.txt")
    with pytest.raises(ToolFailure, match=OUTSIDE):
        await call("write", {"path": "trap.txt", "content": "pwned"})
    assert not (outside / "planted.txt").exists()


@pytest.mark.gen_test
async def test_write_onto_an_outside_file_symlink_leaves_it_unchanged(call, workspace, outside):
    (workspace / "innocent.txt").symlink_to(outside / "secret.txt")
    before = (outside / "secret.txt").read_text()
    with pytest.raises(ToolFailure, match=OUTSIDE):
        await call("write", {"path": "innocent.txt", "content": "pwned"})
    assert (outside / "secret.txt").read_text() == before


@pytest.mark.gen_test
async def test_write_refuses_content_over_the_write_limit(call, workspace):
    with pytest.raises(ToolFailure, match="write limit"):
        await call("write", {"path": "big.txt", "content": "x" * 11}, write_limit=10)
    assert not (workspace / "big.txt").exists()
    # The limit counts bytes: 5 two-byte characters are 10 bytes, just allowed.
    await call("write", {"path": "ok.txt", "content": "é" * 5}, write_limit=10)
    assert (workspace / "ok.txt").read_text() == "é" * 5
    with pytest.raises(ToolFailure, match="write limit"):
        await call("write", {"path": "no.txt", "content": "é" * 6}, write_limit=10)


@pytest.mark.gen_test
async def test_write_refuses_writing_onto_a_directory(call, workspace):
    (workspace / "src").mkdir()
    (workspace / "src" / "keep.py").write_text("x")
    with pytest.raises(ToolFailure, match="src is a directory"):
        await call("write", {"path": "src", "content": "x"})
    assert (workspace / "src" / "keep.py").read_text() == "x"


# edit


@pytest.mark.gen_test
async def test_edit_replaces_a_single_occurrence(call, workspace):
    (workspace / "app.py").write_text("x = 1\ny = 2\n")
    result = await call("edit", {"path": "app.py", "old": "y = 2", "new": "y = 3"})
    assert (workspace / "app.py").read_text() == "x = 1\ny = 3\n"
    assert result.output == "Replaced 1 occurrence(s) in app.py"


@pytest.mark.gen_test
async def test_edit_text_not_found_is_a_failure(call, workspace):
    (workspace / "app.py").write_text("x = 1\n")
    with pytest.raises(ToolFailure, match="not found"):
        await call("edit", {"path": "app.py", "old": "z = 9", "new": "z = 0"})
    assert (workspace / "app.py").read_text() == "x = 1\n"


@pytest.mark.gen_test
async def test_edit_ambiguous_without_replace_all_changes_nothing(call, workspace):
    (workspace / "app.py").write_text("a\nb\na\na\n")
    with pytest.raises(ToolFailure, match="occurs 3 times"):
        await call("edit", {"path": "app.py", "old": "a", "new": "c"})
    assert (workspace / "app.py").read_text() == "a\nb\na\na\n"


@pytest.mark.gen_test
async def test_edit_replace_all_replaces_every_occurrence(call, workspace):
    (workspace / "app.py").write_text("a\nb\na\na\n")
    result = await call("edit", {"path": "app.py", "old": "a", "new": "c", "replaceAll": True})
    assert (workspace / "app.py").read_text() == "c\nb\nc\nc\n"
    assert result.output == "Replaced 3 occurrence(s) in app.py"


@pytest.mark.gen_test
async def test_edit_missing_file_and_outside_file_are_refused(call, workspace, outside):
    with pytest.raises(ToolFailure, match="No such file"):
        await call("edit", {"path": "nope.py", "old": "a", "new": "b"})
    (workspace / "innocent.txt").symlink_to(outside / "secret.txt")
    before = (outside / "secret.txt").read_text()
    with pytest.raises(ToolFailure, match=OUTSIDE):
        await call("edit", {"path": "innocent.txt", "old": "TOP", "new": "NO"})
    assert (outside / "secret.txt").read_text() == before


# glob


@pytest.fixture
def tree(workspace):
    for name in ("main.py", "readme.txt", "src/app.py", "src/util/helpers.py", "src/data.txt"):
        path = workspace / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\nneedle in {name}\n")
    return workspace


@pytest.mark.gen_test
async def test_glob_double_star_matches_at_every_depth(call, tree):
    result = await call("glob", {"pattern": "**/*.py"})
    assert result.output.splitlines() == ["main.py", "src/app.py", "src/util/helpers.py"]


@pytest.mark.gen_test
async def test_glob_star_txt(call, tree):
    result = await call("glob", {"pattern": "*.txt"})
    assert "readme.txt" in result.output.splitlines()
    assert not any(n.endswith(".py") for n in result.output.splitlines())


@pytest.mark.gen_test
async def test_glob_under_a_sub_path_answers_paths_from_the_root(call, tree):
    result = await call("glob", {"pattern": "**/*.py", "path": "src"})
    assert result.output.splitlines() == ["src/app.py", "src/util/helpers.py"]
    nested = await call("glob", {"pattern": "util/*.py", "path": "src"})
    assert nested.output == "src/util/helpers.py"


@pytest.mark.gen_test
async def test_glob_without_matches_says_so(call, tree):
    assert (await call("glob", {"pattern": "*.rs"})).output == "No files found"


@pytest.mark.gen_test
async def test_glob_does_not_list_files_behind_symlinks_pointing_outside(call, tree, outside):
    (tree / "vendor").symlink_to(outside, target_is_directory=True)
    (tree / "leak-link.py").symlink_to(outside / "leak.py")
    result = await call("glob", {"pattern": "**/*"})
    names = result.output.splitlines()
    assert "main.py" in names
    assert not any("leak" in n or "secret" in n or n.startswith("vendor") for n in names)


@pytest.mark.gen_test
async def test_glob_refuses_dotdot_in_the_pattern_and_path(call, tree, outside):
    with pytest.raises(ToolFailure, match=r"'\.\.'"):
        await call("glob", {"pattern": "../outside/*.txt"})
    with pytest.raises(ToolFailure, match=OUTSIDE):
        await call("glob", {"pattern": "*", "path": "../outside"})


@pytest.mark.gen_test
async def test_glob_caps_the_number_of_matches(call, workspace):
    extra = 7
    for i in range(MAX_MATCHES + extra):
        (workspace / f"f{i:04}.txt").write_text("")
    result = await call("glob", {"pattern": "*.txt"})
    listed = result.output.splitlines()
    assert len(listed) == MAX_MATCHES + 1
    assert listed[0] == "f0000.txt"
    assert listed[-1] == f"[{extra} more]"


# grep


@pytest.mark.gen_test
async def test_grep_answers_file_line_text(call, tree):
    result = await call("grep", {"pattern": r"needle in src/\w+\.py"})
    assert result.output.splitlines() == ["src/app.py:2: needle in src/app.py"]


@pytest.mark.gen_test
async def test_grep_include_filters_by_file_name(call, tree):
    result = await call("grep", {"pattern": "needle", "include": "*.txt"})
    assert result.output.splitlines() == [
        "readme.txt:2: needle in readme.txt",
        "src/data.txt:2: needle in src/data.txt",
    ]


@pytest.mark.gen_test
async def test_grep_under_a_path_and_on_a_single_file(call, tree):
    under = await call("grep", {"pattern": "needle", "path": "src/util"})
    assert under.output == "src/util/helpers.py:2: needle in src/util/helpers.py"
    single = await call("grep", {"pattern": "^#", "path": "main.py"})
    assert single.output == "main.py:1: # main.py"


@pytest.mark.gen_test
async def test_grep_without_hits_says_so(call, tree):
    assert (await call("grep", {"pattern": "haystack"})).output == "No matches"


@pytest.mark.gen_test
async def test_grep_invalid_regex_is_a_tool_failure(call, tree):
    with pytest.raises(ToolFailure, match="Invalid regular expression"):
        await call("grep", {"pattern": "(unclosed"})


@pytest.mark.gen_test
async def test_grep_does_not_read_through_symlinks_pointing_outside(call, tree, outside):
    (tree / "vendor").symlink_to(outside, target_is_directory=True)
    (tree / "innocent.txt").symlink_to(outside / "secret.txt")
    result = await call("grep", {"pattern": "SECRET"})
    assert result.output == "No matches"
    for path in ("innocent.txt", "vendor", "../outside"):
        with pytest.raises(ToolFailure, match=OUTSIDE):
            await call("grep", {"pattern": "SECRET", "path": path})


# ranges, limits and skipped directories


@pytest.mark.gen_test
async def test_read_takes_a_line_range_from_the_whole_file_then_caps_it(call, workspace):
    (workspace / "long.txt").write_text(lines(400))  # ~3.6 KB, over the 1 KiB cap below
    late = await call("read", {"path": "long.txt", "offset": 300, "limit": 2}, read_limit=1024)
    assert late.output == "line 300\nline 301\n"
    rest = await call("read", {"path": "long.txt", "offset": 2}, read_limit=1024)
    assert rest.output.startswith("line 2\nline 3\n")
    assert rest.output.endswith("\n[truncated]")
    assert len(rest.output) == 1024 + len("\n[truncated]")
    beyond = await call("read", {"path": "long.txt", "offset": 401})
    assert beyond.output == ""


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("read", {"path": "a.txt", "offset": 1.5}),
        ("read", {"path": "a.txt", "limit": "3"}),
        ("read", {"path": "a.txt", "limit": True}),
        ("bash", {"command": "true", "timeout": 2.5}),
    ],
)
async def test_integer_arguments_must_be_integers(call, tool, args):
    with pytest.raises(ToolFailure, match="Not a valid integer"):
        await call(tool, args)


@pytest.mark.gen_test
async def test_glob_and_grep_skip_tool_directories_unless_asked_for_them(call, tree):
    for folder in ("node_modules/pkg", ".git/objects"):
        (tree / folder).mkdir(parents=True)
        (tree / folder / "index.py").write_text("needle in a dependency\n")
    found = (await call("glob", {"pattern": "**/*.py"})).output.splitlines()
    assert found == ["main.py", "src/app.py", "src/util/helpers.py"]
    hits = (await call("grep", {"pattern": "needle"})).output
    assert "dependency" not in hits and "main.py" in hits
    inside = await call("glob", {"pattern": "**/*.py", "path": "node_modules"})
    assert inside.output == "node_modules/pkg/index.py"
    grepped = await call("grep", {"pattern": "dependency", "path": "node_modules"})
    assert grepped.output == "node_modules/pkg/index.py:1: needle in a dependency"


@pytest.mark.gen_test
async def test_glob_and_grep_stop_after_a_bounded_walk_and_say_so(call, workspace, monkeypatch):
    monkeypatch.setattr(files, "MAX_WALK", 10)
    for i in range(30):
        (workspace / f"f{i:02}.txt").write_text("needle\n")
    listed = (await call("glob", {"pattern": "*.txt"})).output.splitlines()
    assert listed[:-1] == [f"f{i:02}.txt" for i in range(10)]
    assert listed[-1] == "[stopped after 10 entries; give a narrower path]"
    hits = (await call("grep", {"pattern": "needle"})).output.splitlines()
    assert len(hits) == 11 and hits[-1].startswith("[stopped after 10 entries")
