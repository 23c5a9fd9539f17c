"""What the browser tests share: waits with a timeout, reading the transcript, signing in."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20.0
TOOL_CALL = '/tool write {"path": "note.txt", "content": "hi"}'
TOOL_ANSWER = "Tool write returned: Wrote 2 bytes to note.txt"
HELLO = "Hello from Chromium"
SLOW_WORDS = " ".join(f"word{n}" for n in range(40))

TRANSCRIPT_JS = """
return [...document.querySelectorAll('#transcript .message')].map((m) => ({
  role: m.dataset.role,
  status: m.dataset.status,
  text: [...m.querySelectorAll('.part.text')].map((p) => p.textContent).join(''),
}));
"""
TODOS_JS = """
return [...document.querySelectorAll('#todos li')].map((li) => [li.dataset.status, li.textContent]);
"""
# Runs before the page's own scripts (CDP, so outside the page's CSP): keeps every WebSocket
# the page opens, with the frames it sent and received, so a test can read them or drop one.
RECORD_SOCKETS_JS = """
window.sockets = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    this.sent = [];
    this.received = [];
    this.addEventListener('message', (event) => this.received.push(JSON.parse(event.data)));
    window.sockets.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
    super.send(data);
  }
};
"""


def wait(browser: WebDriver, condition: Any, what: str) -> Any:
    # A page that reloads meanwhile leaves stale elements behind: look again.
    stale = [StaleElementReferenceException]
    waiting = WebDriverWait(browser, WAIT, 0.05, ignored_exceptions=stale)
    return waiting.until(condition, f"waiting for {what}")


def transcript(browser: WebDriver) -> list[tuple[str, str, str]]:
    """Each message as (role, status, its text parts joined)."""
    messages = browser.execute_script(TRANSCRIPT_JS)
    return [(m["role"], m["status"], m["text"]) for m in messages]


def exchange(text: str, answer: str | None = None) -> list[tuple[str, str, str]]:
    """A question and its completed answer; echo answers with the same text."""
    return [("user", "completed", text), ("assistant", "completed", answer or text)]


def wait_for_transcript(browser: WebDriver, expected: list[tuple[str, str, str]]) -> None:
    wait(browser, lambda b: transcript(b) == expected, f"the transcript {expected}")


def streaming_text(browser: WebDriver) -> str:
    """The text of the answer being streamed, or "" when none is."""
    streaming = [text for role, status, text in transcript(browser) if status == "streaming"]
    return streaming[-1] if streaming else ""


def connection_state(browser: WebDriver) -> str:
    return browser.find_element(By.ID, "connection").get_attribute("data-state")


def wait_for_state(browser: WebDriver, state: str) -> None:
    wait(browser, lambda b: connection_state(b) == state, f"connection state {state!r}")


def assert_token_out_of_reach(browser: WebDriver, token: str) -> None:
    """No script can read the token: not in the URL, storage or document.cookie; the sign-in
    cookie is HttpOnly and SameSite=Strict."""
    assert "token" not in browser.current_url
    readable = browser.execute_script(
        "return [document.cookie, JSON.stringify(sessionStorage), JSON.stringify(localStorage)]"
    )
    assert token not in "".join(readable) and "botical_token" not in readable[0]
    cookies = browser.execute_cdp_cmd("Network.getCookies", {})["cookies"]
    [cookie] = [c for c in cookies if c["name"].startswith("botical_token")]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/")


def sign_in_and_open_a_session(browser: WebDriver, url: str, project_id: str) -> str:
    """Open the printed URL, pick the project, create a session; returns its id."""
    browser.get(url)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "who"), "admin"), "the user name")
    wait_for_state(browser, "connected")
    project = (By.CSS_SELECTOR, f'#projects button[data-id="{project_id}"]')
    wait(browser, EC.element_to_be_clickable(project), "the project").click()
    wait(browser, EC.element_to_be_clickable((By.ID, "new-session")), "New session").click()
    selected = (By.CSS_SELECTOR, "#sessions li.selected")
    return wait(browser, EC.presence_of_element_located(selected), "it").get_attribute("data-id")


def send(browser: WebDriver, text: str) -> None:
    box = wait(browser, EC.element_to_be_clickable((By.ID, "message")), "the message box")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()


def rest(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """A REST call with the token as Bearer; the parsed body (None for 204), asserting 2xx."""
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert 200 <= response.status < 300
        raw = response.read()
    return json.loads(raw) if raw else None


def put_todos(base: str, token: str, session_id: str, todos: list[dict[str, str]]) -> None:
    rest(base, token, "PUT", f"/api/sessions/{session_id}/todos", {"todos": todos})


def todo_list(browser: WebDriver) -> list[tuple[str, str]]:
    """(status, text) of each shown todo, read in one go: a resync may re-render the list."""
    return [tuple(item) for item in browser.execute_script(TODOS_JS)]


def notice(browser: WebDriver) -> tuple[str, str]:
    """The notice's sentence and the error code shown beside it."""
    shown = browser.find_element(By.ID, "notice")
    if not shown.is_displayed():
        return "", ""
    return (
        browser.find_element(By.ID, "notice-text").text,
        browser.find_element(By.ID, "notice-code").text,
    )


def sessions_list(browser: WebDriver) -> list[str]:
    """The labels of the session list, top first."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#sessions li')].map((li) => li.textContent)"
    )


def projects_list(browser: WebDriver) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('#projects li')].map((li) => li.textContent)"
    )


def selected(browser: WebDriver, list_id: str) -> str | None:
    return browser.execute_script(
        f"return document.querySelector('#{list_id} li.selected')?.dataset.id ?? null"
    )
