"""The runnable examples of docs/client.md, run as written against a real `botical serve`,
with the URL it printed as their only argument."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.client.helpers import ServeProcess, clean_env

CLIENT_MD = Path(__file__).resolve().parents[3] / "docs" / "client.md"
RUNNABLE = "asyncio.run(main(sys.argv[1]))"


def _examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", CLIENT_MD.read_text(), re.S)
    return [block for block in blocks if RUNNABLE in block]


def _run(code: str, url: str, tmp_path: Path, name: str) -> list[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script), url],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_examples_of_client_md_run_as_written(server: ServeProcess, tmp_path):
    first, approvals = _examples()
    url = f"{server.base_url}/?token={server.token}"
    assert _run(first, url, tmp_path, "example") == ["Hello, Botical!"]
    assert _run(approvals, url, tmp_path, "approvals") == [
        "Tool write returned: Wrote 2 bytes to hello.txt",
        "Thanks!",
    ]
    [project] = server.http("GET", "/api/projects")["items"]
    assert (Path(project["path"]) / "hello.txt").read_text() == "hi"
