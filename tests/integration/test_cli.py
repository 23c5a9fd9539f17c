"""The `botical` command line, run as real subprocesses against a temporary data directory."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

USER_ID = re.compile(r"usr_[0-9a-z]{26}")
PROJECT_ID = re.compile(r"prj_[0-9a-z]{26}")
KEY_ID = re.compile(r"key_[0-9a-z]{26}")
API_KEY = re.compile(r"bk_[A-Za-z0-9_-]{43}")
URL_LINE = re.compile(r"^\s*http://127\.0\.0\.1:(\d+)/\?token=(\S+)$")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOTICAL_")}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def botical(data_dir: Path, tmp_path: Path):
    """`botical(*args)` runs one CLI command to completion and returns the CompletedProcess."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "botical", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=tmp_path,
            timeout=30,
        )

    return run


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a successful command printed on stdout."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


class Server:
    """A running `botical serve`, its output read line by line on background threads."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(name,), daemon=True) for name in self.lines
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, name: str) -> None:
        for line in getattr(self.proc, name):
            self._queue.put((name, line.rstrip("\n")))

    def _closed(self) -> bool:
        return not any(pump.is_alive() for pump in self._pumps) and self._queue.empty()

    def wait_for(self, stream: str, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first line on `stream` matching `pattern`, waiting up to START_TIMEOUT."""
        deadline = time.monotonic() + START_TIMEOUT
        seen = 0
        while True:
            for line in self.lines[stream][seen:]:
                if match := pattern.search(line):
                    return match
            seen = len(self.lines[stream])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed():
                raise AssertionError(f"no {pattern.pattern!r} on {stream}: {self.lines}")
            try:
                name, line = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self.lines[name].append(line)

    def base_url(self) -> str:
        return self.wait_for("stderr", LISTENING).group(1)

    def admin_url(self) -> tuple[str, str]:
        """The base URL and token of the printed `http://127.0.0.1:PORT/?token=...` line."""
        match = self.wait_for("stdout", URL_LINE)
        return f"http://127.0.0.1:{match.group(1)}", match.group(2)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig`, wait for the exit code, and collect the rest of the output."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=STOP_TIMEOUT)
        for pump in self._pumps:
            pump.join(timeout=STOP_TIMEOUT)
        while not self._queue.empty():
            name, line = self._queue.get_nowait()
            self.lines[name].append(line)
        return code


@pytest.fixture
def serve(data_dir: Path, tmp_path: Path):
    """`serve(*args)` starts `botical serve --port 0`; every server is killed after the test."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "botical",
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=tmp_path,
        )
        servers.append(Server(proc))
        return servers[-1]

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait(timeout=STOP_TIMEOUT)


def http(method: str, url: str, credential: str | None = None, body=None) -> tuple[int, object]:
    """One request; returns the status and the parsed JSON body (never raises for 4xx/5xx)."""
    headers = {"Content-Type": "application/json"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    return status, json.loads(raw) if raw else None


# --- users, tokens, keys, projects ---


def test_user_create_prints_only_the_user_id(botical):
    assert USER_ID.fullmatch(_ok(botical("user", "create", "alice", "--exec")))


def test_the_data_dir_and_secret_are_private(botical, data_dir):
    _ok(botical("user", "create", "alice"))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "secret").stat().st_mode) == 0o600


def test_creating_a_user_twice_fails_on_stderr(botical):
    _ok(botical("user", "create", "alice"))
    again = botical("user", "create", "alice")
    assert again.returncode != 0
    assert again.stdout == ""
    assert "alice" in again.stderr and "already exists" in again.stderr


def test_user_create_rejects_a_bad_name(botical):
    result = botical("user", "create", "no spaces")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "VALIDATION_ERROR" in result.stderr


def test_a_cli_token_works_against_a_server_on_the_same_data_dir(botical, serve):
    user_id = _ok(botical("user", "create", "alice", "--exec"))
    token = _ok(botical("token", "create", "--user", "alice"))
    status, me = http("GET", serve().base_url() + "/api/me", token)
    assert status == 200, me
    assert me["user"] == {"id": user_id, "name": "alice", "isAdmin": False, "canExecuteCode": True}
    assert me["auth"]["kind"] == "token"


def test_token_create_for_an_unknown_user_fails(botical):
    result = botical("token", "create", "--user", "nobody")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "NOT_FOUND" in result.stderr


def test_apikey_create_prints_only_the_key(botical, serve):
    _ok(botical("user", "create", "alice"))
    created = botical("apikey", "create", "--user", "alice")
    key = _ok(created)
    assert API_KEY.fullmatch(key)
    assert key not in created.stderr
    status, me = http("GET", serve().base_url() + "/api/me", key)
    assert status == 200, me
    assert (me["user"]["name"], me["auth"]["kind"]) == ("alice", "apikey")


def test_a_project_scoped_apikey_sees_only_its_project(botical, serve):
    _ok(botical("user", "create", "alice"))
    first = _ok(botical("project", "create", "First", "--owner", "alice"))
    _ok(botical("project", "create", "Second", "--owner", "alice"))
    key = _ok(botical("apikey", "create", "--user", "alice", "--project", first))
    url = serve().base_url()
    status, listed = http("GET", url + "/api/projects", key)
    assert status == 200, listed
    assert [p["id"] for p in listed["items"]] == [first]
    assert http("GET", url + "/api/me", key)[1]["auth"]["projectId"] == first


def test_a_revoked_apikey_is_rejected_by_the_running_server(botical, serve):
    _ok(botical("user", "create", "alice"))
    created = botical("apikey", "create", "--user", "alice")
    key = _ok(created)
    key_id = KEY_ID.search(created.stderr).group(0)
    url = serve().base_url()
    assert http("GET", url + "/api/me", key)[0] == 200
    revoked = botical("apikey", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == ""
    status, body = http("GET", url + "/api/me", key)
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")


def test_revoking_an_unknown_apikey_fails(botical):
    _ok(botical("user", "create", "alice"))
    result = botical("apikey", "revoke", "key_00000000000000000000000000")
    assert result.returncode != 0
    assert "NOT_FOUND" in result.stderr


def test_project_create_prints_only_the_project_id(botical, serve, tmp_path):
    _ok(botical("user", "create", "alice"))
    (tmp_path / "work" / "repo").mkdir(parents=True)
    project_id = _ok(
        botical(
            "project",
            "create",
            "Repo",
            "--owner",
            "alice",
            "--path",
            str(tmp_path / "work/../work/repo"),
        )
    )
    assert PROJECT_ID.fullmatch(project_id)
    token = _ok(botical("token", "create", "--user", "alice"))
    status, project = http("GET", f"{serve().base_url()}/api/projects/{project_id}", token)
    assert status == 200, project
    assert (project["name"], project["role"]) == ("Repo", "owner")
    assert project["path"] == os.path.realpath(tmp_path / "work" / "repo")


def test_project_create_for_an_unknown_owner_fails(botical):
    result = botical("project", "create", "Orphan", "--owner", "nobody")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "NOT_FOUND" in result.stderr


def test_project_create_with_a_missing_path_fails(botical, tmp_path):
    _ok(botical("user", "create", "alice"))
    result = botical("project", "create", "X", "--owner", "alice", "--path", str(tmp_path / "nope"))
    assert result.returncode != 0
    assert result.stdout == ""
    assert "VALIDATION_ERROR" in result.stderr


# --- serve ---


def test_serve_on_an_empty_data_dir_prints_a_url_for_the_local_admin(serve):
    base, token = serve().admin_url()
    status, me = http("GET", base + "/api/me", token)
    assert status == 200, me
    assert me["user"]["name"] == "admin"
    assert me["user"]["isAdmin"] is True


def test_the_first_serve_makes_a_project_with_a_private_workspace(serve, data_dir):
    base, token = serve().admin_url()
    status, listed = http("GET", base + "/api/projects", token)
    assert status == 200, listed
    [project] = listed["items"]
    assert (project["name"], project["role"]) == ("My project", "owner")
    workspace = Path(project["path"])
    assert workspace == data_dir.resolve() / "workspaces" / project["id"]
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700


def test_serve_prints_a_chat_command_that_works(serve, tmp_path):
    server = serve()
    server.admin_url()
    line = server.wait_for("stdout", re.compile(r"^\s+(\S*botical\S*) chat --url (.+)$"))
    argv = shlex.split(line.group(0))
    assert argv[1:3] == ["chat", "--url"] and "?token=" in argv[3]
    done = subprocess.run(
        argv, input="printed and pasted\n", capture_output=True, text=True, env=_env(), timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "printed and pasted" in done.stdout.splitlines()


def test_a_project_without_a_path_gets_a_default_workspace(botical, data_dir):
    _ok(botical("user", "create", "alice"))
    project_id = _ok(botical("project", "create", "Plain", "--owner", "alice"))
    workspace = data_dir / "workspaces" / project_id
    assert workspace.is_dir()
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700


def test_help_is_for_people_who_run_botical(botical):
    result = subprocess.run(
        [sys.executable, "-m", "botical", "--help"], capture_output=True, text=True, env=_env()
    )
    assert result.returncode == 0
    assert "botical serve" in result.stdout
    assert "plugin" not in result.stdout


@pytest.mark.parametrize(
    "toml,key",
    [
        ('[agent]\ndefault_model = "ollama/llama3"\n', "[agent] default_model = 'ollama/llama3'"),
        ('[agent]\ndefault_model = "gpt-4o"\n', "unknown provider 'gpt-4o'"),
    ],
    ids=["ollama", "no-provider"],
)
def test_a_model_with_an_unknown_provider_exits_2(botical, tmp_path, toml, key):
    config = tmp_path / "models.toml"
    config.write_text(toml)
    result = botical("serve", "--port", "0", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert key in result.stderr
    assert "Traceback" not in result.stderr
    if "ollama" in toml:
        assert "use 'openai/llama3' with [providers.openai] base_url" in result.stderr


def test_a_missing_sdk_is_reported_at_start_with_the_install_command(tmp_path, data_dir):
    config = tmp_path / "openai.toml"
    config.write_text('[agent]\ndefault_model = "openai/gpt-4o"\n')
    # This interpreter has the SDK: block its import, as if it were not installed.
    code = (
        "import sys; sys.modules['openai'] = None; from botical.cli import main; sys.exit(main())"
    )
    args = ["serve", "--port", "0", "--config", str(config), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    server = Server(proc)
    try:
        line = server.wait_for("stderr", re.compile("needs the openai SDK, which is not installed"))
        assert ".venv/bin/pip install -e '.[openai]'" in line.string  # this is a checkout
        server.admin_url()  # and it serves all the same
    finally:
        assert server.stop() == 0


def test_serve_keeps_the_token_out_of_its_logs(serve):
    server = serve()
    base, token = server.admin_url()
    assert http("GET", f"{base}/health?token={token}")[0] == 200
    assert server.stop() == 0
    assert any("/health?token=" in line for line in server.lines["stderr"])
    assert not any(token in line for line in server.lines["stderr"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_exits_0_on_a_signal(serve, sig):
    server = serve()
    base, _ = server.admin_url()
    assert http("GET", base + "/health")[0] == 200
    assert server.stop(sig) == 0


def test_a_second_serve_keeps_users_and_projects(serve, botical):
    first = serve()
    base, token = first.admin_url()
    status, created = http("POST", base + "/api/projects", token, {"name": "Kept"})
    assert status == 201, created
    admin_id = http("GET", base + "/api/me", token)[1]["user"]["id"]
    assert first.stop() == 0
    _ok(botical("user", "create", "alice"))

    second = serve()
    base, token = second.admin_url()
    me = http("GET", base + "/api/me", token)[1]
    assert me["user"]["id"] == admin_id
    listed = http("GET", base + "/api/projects", token)[1]["items"]
    assert [p["name"] for p in listed] == ["My project", "Kept"]  # no second first project
    assert listed[1]["id"] == created["id"]
    status, added = http(
        "POST",
        f"{base}/api/projects/{created['id']}/members",
        token,
        {"userName": "alice", "role": "viewer"},
    )
    assert status == 201, added


@pytest.mark.parametrize(
    "toml,key",
    [
        ("bogus_key = 1\n", "bogus_key"),
        ('shutdown_timeout = "soon"\n', "shutdown_timeout"),
        ("[auth]\ntoken_ttl = 1\n", "auth.token_ttl"),
        ("[plugins]\nmodules = 'not-a-list'\n", "plugins.modules"),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range", "wrong-type-in-section"],
)
def test_serve_with_an_invalid_config_exits_2_naming_key_and_file(botical, tmp_path, toml, key):
    config = tmp_path / "broken.toml"
    config.write_text(toml)
    result = botical("serve", "--port", "0", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert key in result.stderr
    assert str(config) in result.stderr
    assert result.stdout == ""


def test_serve_with_a_config_that_is_not_toml_exits_2(botical, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("port = = 1\n")
    result = botical("serve", "--port", "0", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr
