"""README.md stays true: every `botical ...` command line it shows exists with the options it
uses, and every row of its REST table is one table and names a route the server serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.httpclient

from botical.cli import _parser

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| ((?:`[A-Z]+`, )*)`([A-Z]+) (/[^`\s]*)`")
SAMPLE_ID = "zzz_0"  # the shape of an id, naming nothing


def _section(title: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end].splitlines()


def _command_lines() -> list[str]:
    """`botical ...` lines of the sh blocks and the command table cells, without comments."""
    lines: list[str] = []
    in_sh = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.startswith("botical "):
            lines.append(line.split("#")[0].strip())
        lines += re.findall(r"^\| `(botical [^`]+)`", line)
    return lines


def _subcommands(words: list[str]) -> list[str]:
    """The leading words that are sub-commands of the real parser."""
    parser, path = _parser(), []
    for word in words:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a.choices, dict)), None
        )  # the subparsers action, if this parser has one
        if not choices or word not in choices:
            break
        parser, path = choices[word], [*path, word]
    return path


@pytest.mark.parametrize("line", _command_lines())
def test_every_command_line_in_the_readme_runs_with_help(line):
    words = line.split()[1:]
    path = _subcommands(words)
    assert path or words == ["--version"], line
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}
    shown = subprocess.run(
        [sys.executable, "-m", "botical", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    for option in re.findall(r"--[a-z][a-z-]*", line):
        assert option in shown.stdout, (line, option)


def _rest_rows() -> list[tuple[list[str], str]]:
    lines = _section("REST API")
    first = next(i for i, line in enumerate(lines) if line.startswith("| route"))
    table = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break  # the table ends at its first non-row line
        table.append(line)
    rows = []
    for line in table:
        match = ROW.match(line)
        assert match, f"a REST table row that does not parse: {line}"
        methods = [*re.findall(r"[A-Z]+", match.group(1)), match.group(2)]
        rows.append((methods, match.group(3)))
    everywhere = [line for line in lines if line.startswith("| `")]
    assert len(rows) == len(everywhere), "a blank line splits the REST table"
    return rows


def test_the_rest_table_is_one_table_of_routes():
    rows = _rest_rows()
    assert len(rows) > 30
    assert (["POST"], "/api/login") in rows


@pytest.mark.gen_test(timeout=60)
async def test_every_rest_route_in_the_readme_is_served(botical_app, make_user):
    alice = await make_user("alice", admin=True)
    client = tornado.httpclient.AsyncHTTPClient()
    for methods, route in _rest_rows():
        path = re.sub(r"\{[a-zA-Z]+\}", SAMPLE_ID, route.split("?")[0])
        path = path.replace(f"/agents/{SAMPLE_ID}", "/agents/default")
        for method in methods:
            response = await client.fetch(
                f"http://127.0.0.1:{botical_app.port}{path}",
                method=method,
                headers={"Authorization": f"Bearer {alice.token}"},
                body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                raise_error=False,
                allow_nonstandard_methods=True,
            )
            body = response.body.decode()
            assert response.code != 405, (method, route, body)
            assert "No such route" not in body, (method, route)
