"""The web console in a real headless Chromium against a real `botical serve`.

Every wait is an explicit condition with a timeout (WebDriverWait); screenshots of each step go
to test-artifacts/browser/.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

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
    return WebDriverWait(browser, WAIT, poll_frequency=0.05).until(condition, f"waiting for {what}")


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
    browser.find_element(By.CSS_SELECTOR, f'#projects button[data-id="{project_id}"]').click()
    wait(browser, EC.element_to_be_clickable((By.ID, "new-session")), "New session").click()
    selected = (By.CSS_SELECTOR, "#sessions li.selected")
    return wait(browser, EC.presence_of_element_located(selected), "it").get_attribute("data-id")


def send(browser: WebDriver, text: str) -> None:
    box = wait(browser, EC.element_to_be_clickable((By.ID, "message")), "the message box")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()


def put_todos(base: str, token: str, session_id: str, todos: list[dict[str, str]]) -> None:
    request = urllib.request.Request(
        f"{base}/api/sessions/{session_id}/todos",
        data=json.dumps({"todos": todos}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def todo_list(browser: WebDriver) -> list[tuple[str, str]]:
    """(status, text) of each shown todo, read in one go: a resync may re-render the list."""
    return [tuple(item) for item in browser.execute_script(TODOS_JS)]


def test_chat_tool_and_restart(cli, serve, free_port, browser, screenshot, workspace):
    cli("user", "create", "admin", "--admin", "--exec")
    project_id = cli("project", "create", "Demo", "--owner", "admin", "--path", str(workspace))
    server = serve(free_port)
    base, token = server.console_url()

    # The printed URL's token is traded for an HttpOnly cookie and leaves the address bar.
    session_id = sign_in_and_open_a_session(browser, f"{base}/?token={token}", project_id)
    assert browser.current_url == f"{base}/"
    assert_token_out_of_reach(browser, token)
    screenshot("signed-in")

    send(browser, HELLO)
    wait_for_transcript(browser, exchange(HELLO))
    screenshot("answer-streamed")

    send(browser, TOOL_CALL)
    approve = (By.CSS_SELECTOR, ".approval button.approve")
    wait(browser, EC.element_to_be_clickable(approve), "the approval prompt")
    arguments = browser.find_element(By.CSS_SELECTOR, ".approval code").text
    assert json.loads(arguments) == {"path": "note.txt", "content": "hi"}
    screenshot("approval-asked")
    browser.find_element(*approve).click()
    before = exchange(HELLO) + exchange(TOOL_CALL, TOOL_ANSWER)
    wait_for_transcript(browser, before)
    call = browser.find_element(By.CSS_SELECTOR, '.tool-call[data-tool="write"]')
    assert call.get_attribute("data-status") == "completed"
    assert call.find_element(By.CSS_SELECTOR, ".tool-status").text == "completed"
    assert call.find_element(By.CSS_SELECTOR, ".tool-result").text == "Wrote 2 bytes to note.txt"
    assert browser.find_elements(By.CSS_SELECTOR, ".approval") == []
    assert (workspace / "note.txt").read_text() == "hi"

    # A todo list changed elsewhere (REST) shows up live.
    todos = [
        ("completed", "Write the note", "Writing the note"),
        ("in_progress", "Check the note", "Checking the note"),
    ]
    keys = ("status", "content", "activeForm")
    put_todos(base, token, session_id, [dict(zip(keys, todo, strict=True)) for todo in todos])
    shown = [("completed", "Write the note"), ("in_progress", "Checking the note")]
    wait(browser, lambda b: todo_list(b) == shown, f"the todo list {shown}")
    screenshot("tool-approved")

    # Restart on the same port and data: the page reconnects by itself and resyncs.
    assert server.stop() == 0
    wait_for_state(browser, "reconnecting")
    screenshot("reconnecting")
    serve(free_port).console_url()
    wait_for_state(browser, "connected")
    wait_for_transcript(browser, before)
    wait(browser, lambda b: todo_list(b) == shown, "the todo list after the restart")

    send(browser, "Still here after the restart")
    wait_for_transcript(browser, before + exchange("Still here after the restart"))
    assert_token_out_of_reach(browser, token)
    screenshot("after-restart")


def test_resume_after_a_dropped_connection(cli, serve, free_port, browser, screenshot, workspace):
    cli("user", "create", "admin", "--admin")
    project_id = cli("project", "create", "Demo", "--owner", "admin", "--path", str(workspace))
    base, token = serve(free_port).console_url()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SOCKETS_JS})
    session_id = sign_in_and_open_a_session(browser, f"{base}/?token={token}", project_id)
    channel = f"session:{session_id}"

    # Drop the socket while an answer streams; the page resumes from its last seq.
    send(browser, f"/slow {SLOW_WORDS}")
    wait(browser, lambda b: streaming_text(b).startswith("word0 "), "the first words")
    browser.execute_script("window.sockets[0].close()")
    screenshot("dropped-mid-answer")
    wait(browser, lambda b: b.execute_script("return window.sockets.length") == 2, "a new socket")
    wait_for_state(browser, "connected")
    wait_for_transcript(browser, exchange(f"/slow {SLOW_WORDS}", SLOW_WORDS))
    screenshot("resumed")

    first, second = browser.execute_script("return window.sockets.map((s) => [s.sent, s.received])")
    epoch = first[1][0]["data"]["epoch"]
    assert second[1][0]["data"]["epoch"] == epoch
    resume = next(f for f in second[0] if f["type"] == "subscribe" and f["channels"] == [channel])
    last_seq = max(f["seq"] for f in first[1] if f.get("channel") == channel)
    assert (resume["since"], resume["epoch"]) == ({channel: last_seq}, epoch)
    ack = next(f for f in second[1] if f.get("id") == resume["id"])
    assert ack["result"]["subscribed"][0]["recovered"] is True
    assert token not in json.dumps([first[0], second[0]])  # the cookie signs the socket in
    urls = browser.execute_script("return window.sockets.map((s) => s.url)")
    assert urls == [f"ws://{base.removeprefix('http://')}/ws"] * 2


def test_without_a_token_the_page_says_how_to_sign_in(cli, serve, free_port, browser):
    cli("user", "create", "admin", "--admin")
    base, _ = serve(free_port).console_url()
    browser.get(f"{base}/")
    notice = wait(browser, EC.visibility_of_element_located((By.ID, "notice")), "the notice")
    assert "Open the URL that botical serve printed" in notice.text
    assert connection_state(browser) == "offline"
