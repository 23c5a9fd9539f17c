"""The console's features, each in a real headless Chromium against a real `botical serve`:
the first run, markdown (and XSS attempts in it), session controls, pickers, approvals for a
session, projects made in the console, live lists, the sign-in cookie, a narrow window and a
provider error. Every wait is an explicit condition with a timeout."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.integration.browser.helpers import (
    SLOW_WORDS,
    assert_token_out_of_reach,
    exchange,
    notice,
    projects_list,
    rest,
    selected,
    send,
    sessions_list,
    transcript,
    wait,
    wait_for_state,
    wait_for_transcript,
)

CLICKABLE = EC.element_to_be_clickable
# Markdown, and attempts to run script through it: none of them may set window.xss.
MARKDOWN = """## A heading
**bold** and `inline code`

```python
def hello():
    return "hi"
```

[a link](javascript:window.xss='link') [data](data:text/html;base64,PHNjcmlwdD4=)
<img src=x onerror="window.xss='img'">
<script>window.xss='script'</script>
<a href="javascript:window.xss='raw'">raw link</a>
![picture](javascript:window.xss='image')
[safe](https://example.com/docs)"""
CODE = 'def hello():\n    return "hi"'


def first_run(serve, free_port: int, browser: WebDriver) -> tuple[str, str, str]:
    """`botical serve` on an empty data directory, signed in: (base URL, token, project id)."""
    base, token = serve(free_port).console_url()
    browser.get(f"{base}/?token={token}")
    wait_for_state(browser, "connected")
    project = wait(browser, lambda b: selected(b, "projects"), "the first project, opened")
    return base, token, project


def new_session(browser: WebDriver) -> str:
    wait(browser, CLICKABLE((By.ID, "new-session")), "New session").click()
    return wait(browser, lambda b: selected(b, "sessions"), "the new session")


def answers(base: str, token: str, session_id: str) -> list[tuple[str, str]]:
    items = rest(base, token, "GET", f"/api/sessions/{session_id}/messages?limit=200")["items"]
    return [(m["role"], m["status"]) for m in items]


def test_the_first_run_opens_the_project_serve_made(serve, free_port, browser, data_dir):
    base, token, project_id = first_run(serve, free_port, browser)
    assert projects_list(browser) == ["My project"]
    session_id = new_session(browser)
    assert sessions_list(browser) == ["New session"]
    call = '/tool write {"path": "first.txt", "content": "tools work"}'
    send(browser, call)
    wait(browser, CLICKABLE((By.CSS_SELECTOR, ".approval button.approve")), "the prompt").click()
    wait_for_transcript(browser, exchange(call, "Tool write returned: Wrote 10 bytes to first.txt"))
    workspace = data_dir / "workspaces" / project_id
    assert (workspace / "first.txt").read_text() == "tools work"
    # titled by the server after the first message, and the list follows
    wait(browser, lambda b: sessions_list(b) == [call], "the session's new title")
    assert rest(base, token, "GET", f"/api/sessions/{session_id}")["title"] == call


def test_markdown_is_rendered_and_no_script_in_it_runs(serve, free_port, browser, screenshot):
    base, _, _ = first_run(serve, free_port, browser)
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    new_session(browser)
    box = wait(browser, CLICKABLE((By.ID, "message")), "the message box")
    box.send_keys(MARKDOWN.replace("\n", Keys.SHIFT + Keys.ENTER + Keys.SHIFT))
    browser.find_element(By.ID, "send").click()
    answer = '.message[data-role="assistant"][data-status="completed"] .markdown'
    shown = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, answer)), "it")
    screenshot("markdown")
    assert shown.find_element(By.CSS_SELECTOR, "h2").text == "A heading"
    assert shown.find_element(By.CSS_SELECTOR, "strong").text == "bold"
    code = shown.find_element(By.CSS_SELECTOR, ".code-block pre code.hljs.language-python")
    assert code.text == CODE
    assert code.find_elements(By.CSS_SELECTOR, "span.hljs-keyword")  # highlighted
    links = [
        a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#transcript a")
    ]
    assert links == ["https://example.com/docs"]
    assert browser.find_elements(By.CSS_SELECTOR, "#transcript img, #transcript script") == []
    for text in ("a link", "raw link", "picture"):
        for element in browser.find_elements(By.XPATH, f"//*[contains(text(), '{text}')]"):
            element.click()  # whatever they became, clicking them runs nothing
    assert browser.execute_script("return window.xss") is None
    # the user's own message stays plain text
    assert transcript(browser)[0] == ("user", "completed", MARKDOWN)

    shown.find_element(By.CSS_SELECTOR, ".code-block button.copy").click()
    wait(browser, lambda b: shown.find_element(By.CSS_SELECTOR, ".copy").text == "Copied", "Copied")
    pasted = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0]('x' + e))"
    )
    assert pasted == CODE


def test_rename_retry_and_archive_a_session(serve, free_port, browser):
    base, token, _ = first_run(serve, free_port, browser)
    session_id = new_session(browser)
    send(browser, "first question")
    wait_for_transcript(browser, exchange("first question"))
    wait(browser, lambda b: sessions_list(b) == ["first question"], "the title from the message")

    title = browser.find_element(By.ID, "session-title")
    title.clear()
    title.send_keys("Renamed" + Keys.ENTER)
    wait(browser, lambda b: sessions_list(b) == ["Renamed"], "the list to follow the rename")
    assert rest(base, token, "GET", f"/api/sessions/{session_id}")["title"] == "Renamed"

    first_answer = browser.find_elements(By.CSS_SELECTOR, '.message[data-role="assistant"]')
    answer_id = first_answer[0].get_attribute("data-id")
    wait(browser, CLICKABLE((By.ID, "retry")), "Retry").click()
    wait(
        browser,
        lambda b: (
            transcript(b) == exchange("first question")
            and b.find_element(By.CSS_SELECTOR, '.message[data-role="assistant"]').get_attribute(
                "data-id"
            )
            != answer_id
        ),
        "a new answer in place of the first",
    )
    assert answers(base, token, session_id) == [
        ("user", "completed"),
        ("assistant", "completed"),  # the first answer stays, as version 1 of 2
        ("assistant", "completed"),
    ]

    browser.find_element(By.ID, "archive").click()
    wait(browser, lambda b: sessions_list(b) == [], "the archived session to leave the list")
    assert browser.find_element(By.ID, "session-title").get_attribute("placeholder") == (
        "No session selected"
    )
    assert rest(base, token, "GET", f"/api/sessions/{session_id}")["status"] == "archived"


def test_agent_and_model_pickers_change_the_session(serve, free_port, browser):
    base, token, _ = first_run(serve, free_port, browser)
    session_id = new_session(browser)
    wait(browser, lambda b: len(Select(b.find_element(By.ID, "agent")).options) >= 3, "agents")
    Select(browser.find_element(By.ID, "agent")).select_by_value("plan")
    wait(
        browser,
        lambda b: rest(base, token, "GET", f"/api/sessions/{session_id}")["agent"] == "plan",
        "the agent to change",
    )
    model = browser.find_element(By.ID, "model")
    model.send_keys("nosuch/model" + Keys.TAB)
    wait(browser, lambda b: notice(b)[1] == "VALIDATION_ERROR", "the refusal")
    sentence, _ = notice(browser)
    assert sentence == "Could not change the session: Check model: Unknown provider 'nosuch'."
    model.clear()
    model.send_keys("echo" + Keys.TAB)
    wait(browser, lambda b: notice(b) == ("", ""), "the notice to clear")
    assert rest(base, token, "GET", f"/api/sessions/{session_id}")["model"] == "echo"
    send(browser, "which agent?")
    wait_for_transcript(browser, exchange("which agent?"))
    items = rest(base, token, "GET", f"/api/sessions/{session_id}/messages")["items"]
    assert [(m["agent"], m["model"]) for m in items] == [("plan", "echo")] * 2


def test_stop_replaces_send_during_a_run(serve, free_port, browser):
    first_run(serve, free_port, browser)
    new_session(browser)
    send_button, stop = browser.find_element(By.ID, "send"), browser.find_element(By.ID, "stop")
    assert send_button.is_displayed() and not stop.is_displayed()
    send(browser, f"/slow {SLOW_WORDS}")
    wait(browser, lambda b: stop.is_displayed() and not send_button.is_displayed(), "Stop")
    stop.click()
    wait(browser, lambda b: transcript(b)[-1][1] == "cancelled", "the answer cancelled")
    wait(browser, lambda b: send_button.is_displayed() and not stop.is_displayed(), "Send")


def test_approve_for_the_session_asks_once(serve, free_port, browser, data_dir):
    _, _, project_id = first_run(serve, free_port, browser)
    new_session(browser)
    send(browser, '/tool write {"path": "a.txt", "content": "one"}')
    always = (By.CSS_SELECTOR, ".approval button.approve-session")
    wait(browser, CLICKABLE(always), "the prompt").click()
    wait(browser, lambda b: len(transcript(b)) == 2 and transcript(b)[1][1] == "completed", "it")
    send(browser, '/tool write {"path": "b.txt", "content": "two"}')
    wait(browser, lambda b: len(transcript(b)) == 4 and transcript(b)[3][1] == "completed", "b")
    assert browser.find_elements(By.CSS_SELECTOR, ".approval") == []
    assert (data_dir / "workspaces" / project_id / "b.txt").read_text() == "two"


def test_projects_are_made_in_the_console(serve, free_port, browser, workspace, data_dir):
    base, token, first = first_run(serve, free_port, browser)

    def create(name: str, path: str = "") -> None:
        if not browser.find_element(By.ID, "project-name").is_displayed():
            browser.find_element(By.CSS_SELECTOR, "#new-project summary").click()
        browser.find_element(By.ID, "project-name").send_keys(name)
        browser.find_element(By.ID, "project-path").send_keys(path)
        browser.find_element(By.CSS_SELECTOR, "#project-form button").click()

    create("Docs", str(workspace))
    wait(browser, lambda b: projects_list(b) == ["My project", "Docs"], "the new project")
    docs = selected(browser, "projects")
    assert docs != first
    assert rest(base, token, "GET", f"/api/projects/{docs}")["path"] == str(workspace.resolve())
    create("Scratch")
    wait(browser, lambda b: len(projects_list(b)) == 3, "the second project")
    scratch = selected(browser, "projects")
    path = rest(base, token, "GET", f"/api/projects/{scratch}")["path"]
    assert Path(path) == data_dir.resolve() / "workspaces" / scratch

    create("Nowhere", str(workspace / "missing"))
    wait(browser, lambda b: notice(b)[1] == "VALIDATION_ERROR", "the refusal")
    assert (
        notice(browser)[0] == "Could not create the project: Check path: Directory does not exist."
    )
    assert len(projects_list(browser)) == 3


def test_project_and_session_lists_follow_events(serve, free_port, browser):
    base, token, first = first_run(serve, free_port, browser)
    made = rest(base, token, "POST", "/api/projects", {"name": "Made elsewhere"})
    wait(browser, lambda b: projects_list(b) == ["My project", "Made elsewhere"], "it listed")
    rest(base, token, "POST", f"/api/projects/{first}/sessions", {"title": "From REST"})
    wait(browser, lambda b: sessions_list(b) == ["From REST"], "the session listed")
    rest(base, token, "DELETE", f"/api/projects/{made['id']}")
    wait(browser, lambda b: projects_list(b) == ["My project"], "the deleted one gone")


def test_sign_in_survives_a_new_tab_and_a_reload(serve, free_port, browser):
    base, token, project_id = first_run(serve, free_port, browser)
    assert_token_out_of_reach(browser, token)
    browser.refresh()
    who = (By.ID, "who")
    wait(browser, EC.text_to_be_present_in_element(who, "Signed in as admin"), "the reload")
    wait_for_state(browser, "connected")
    browser.switch_to.new_window("tab")
    browser.get(f"{base}/")  # a bookmark: no token in it
    wait_for_state(browser, "connected")
    assert wait(browser, lambda b: selected(b, "projects"), "the project") == project_id
    assert_token_out_of_reach(browser, token)

    browser.find_element(By.ID, "sign-out").click()
    wait(browser, lambda b: notice(b)[1] == "UNAUTHORIZED", "signed out")
    assert notice(browser)[0] == "Open the URL that botical serve printed to sign in."
    browser.get(f"{base}/")
    wait(browser, lambda b: notice(b)[1] == "UNAUTHORIZED", "still signed out in a new load")
    rest(base, token, "GET", "/api/me")  # the printed token itself still works


def test_a_narrow_window_never_scrolls_sideways(serve, free_port, browser, screenshot):
    browser.set_window_size(420, 900)
    first_run(serve, free_port, browser)
    new_session(browser)
    long_line = "x" * 300
    send(browser, f"{long_line} and `{long_line}`")
    wait(browser, lambda b: len(transcript(b)) == 2 and transcript(b)[1][1] == "completed", "it")
    send(browser, '/tool write {"path": "' + "y" * 200 + '.txt", "content": "z"}')
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".approval")), "the prompt")
    screenshot("narrow")
    width = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], width
    for control in ("stop", "message", "new-session"):  # Stop: the tool call waits
        assert browser.find_element(By.ID, control).is_displayed()


def test_a_provider_error_shows_once_after_a_reload(serve, free_port, browser, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on: the provider cannot connect
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = tmp_path / "provider.toml"
    config.write_text(
        f'[providers.openai]\nbase_url = "http://127.0.0.1:{closed}/v1"\n'
        "max_retries = 0\ntimeout = 5\n"
    )
    base, token = serve(free_port, "--config", str(config)).console_url()
    browser.get(f"{base}/?token={token}")
    wait(browser, lambda b: selected(b, "projects"), "the first project")
    new_session(browser)
    model = wait(browser, CLICKABLE((By.ID, "model")), "the model field")
    model.send_keys("openai/gpt-test" + Keys.TAB)
    wait(browser, lambda b: b.find_element(By.ID, "model").get_attribute("value"), "the model")
    send(browser, "hello?")
    errors = "#transcript .error:not(:empty)"

    def shown_errors(b: WebDriver) -> list[str]:
        return [e.text for e in b.find_elements(By.CSS_SELECTOR, errors)]

    wait(browser, lambda b: len(shown_errors(b)) == 1, "the provider error")
    first = shown_errors(browser)
    assert "127.0.0.1" in first[0]
    browser.refresh()
    wait(browser, CLICKABLE((By.CSS_SELECTOR, "#sessions li button")), "the session").click()
    wait(browser, lambda b: len(transcript(b)) == 2, "the session loaded")
    assert shown_errors(browser) == first
    assert json.dumps(first).count("Provider") == 1
