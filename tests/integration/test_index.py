"""The web console's page and static files: served without a token, under a strict CSP."""

import re
from pathlib import Path

import pytest

import botical
from botical.http.health import StaticHandler

STATIC_TYPES = {
    "/static/app.js": "text/javascript; charset=utf-8",
    "/static/client.js": "text/javascript; charset=utf-8",
    "/static/app.css": "text/css; charset=utf-8",
    "/static/favicon.svg": "image/svg+xml",
    "/static/index.html": "text/html; charset=utf-8",
}


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: sources}."""
    policy = {}
    for directive in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


@pytest.mark.gen_test
async def test_the_page_needs_no_token_and_keeps_it_out_of_referrers(api):
    response = await api.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script type="module" src="/static/app.js"></script>' in response.body


@pytest.mark.gen_test
async def test_the_page_allows_only_its_own_scripts_and_styles(api):
    response = await api.get("/")
    policy = csp(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


@pytest.mark.gen_test
async def test_the_page_has_no_inline_script_or_style(api):
    body = (await api.get("/")).body
    assert re.findall(r"<script\b[^>]*>", body) == ['<script type="module" src="/static/app.js">']
    assert "<style" not in body
    assert " style=" not in body
    assert not re.search(r"\son[a-z]+=", body)  # no inline event handlers


@pytest.mark.gen_test
@pytest.mark.parametrize("path", sorted(STATIC_TYPES))
async def test_static_files_are_served_with_their_type(api, path):
    response = await api.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == STATIC_TYPES[path]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers
    assert response.body


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path,content_type",
    [("/", "text/html; charset=utf-8"), ("/static/app.js", "text/javascript; charset=utf-8")],
)
async def test_the_page_and_static_files_answer_head(api, path, content_type):
    response = await api.request("HEAD", path)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/nope.js",
        "/static/../http/health.py",
        "/static/%2e%2e/http/health.py",
        "/static/..%2fhttp%2fhealth.py",
        "/static/..%2f..%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/app.js/",
        "/static/.hidden.js",
        "/static/app%00.js",
        "/static/app.js%00.png",
    ],
)
async def test_static_refuses_directories_escapes_and_unknown_files(api, path):
    response = await api.get(path)
    assert response.status == 404, response.body
    assert response.error_code == "NOT_FOUND"
    assert response.headers["Content-Type"].startswith("application/json")


class FilesPlugin:
    """Serves a test's own directory with the console's static handler, at /-/files/."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @botical.hookimpl
    def botical_register_routes(self, register):
        register(r"/-/files/(.*)", StaticHandler, {"path": str(self.root)})


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "page.html").write_text("<p>page</p>")
    (root / "sub" / "deep.css").write_text("p {}")
    (root / "code.py").write_text("SECRET = 1")
    (root / ".hidden.js").write_text("hidden")
    (tmp_path / "outside.js").write_text("outside")
    (root / "link.js").symlink_to(tmp_path / "outside.js")
    (root / "files-evil").mkdir()
    return root


@pytest.fixture
def botical_plugins(files: Path):
    return (FilesPlugin(files),)


@pytest.mark.gen_test
async def test_the_static_handler_serves_files_in_its_directory(api):
    page = await api.get("/-/files/page.html")
    assert (page.status, page.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert page.body == "<p>page</p>"
    deep = await api.get("/-/files/sub/deep.css")
    assert (deep.status, deep.headers["Content-Type"]) == (200, "text/css; charset=utf-8")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    ["code.py", ".hidden.js", "link.js", "sub", "sub/", "../outside.js", "%2e%2e/outside.js"],
    ids=["unknown-type", "dotfile", "symlink-out", "dir", "dir-slash", "dotdot", "dotdot-encoded"],
)
async def test_the_static_handler_refuses_what_it_must_not_serve(api, path):
    response = await api.get(f"/-/files/{path}")
    assert response.status == 404, response.body
    assert response.error_code == "NOT_FOUND"
