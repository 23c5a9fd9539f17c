"""The console's conversation features in a real headless Chromium against a real `botical
serve`: queue and interrupt while an answer streams (and taking a queued message back), edit,
regenerate, `< 1/2 >` version switches, fork, and what answers cost. Every wait is an explicit
condition with a timeout."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC

from tests.integration.browser.helpers import (
    SLOW_WORDS,
    exchange,
    rest,
    selected,
    send,
    streaming_text,
    transcript,
    wait,
    wait_for_state,
    wait_for_transcript,
)

CLICKABLE = EC.element_to_be_clickable
PRICED = """
[pricing.echo]
input = 1000000.0
output = 2000000.0
"""
QUEUE_JS = "return [...document.querySelectorAll('#queue li .text')].map((t) => t.textContent)"


def _open(serve, free_port: int, browser: WebDriver, tmp_path: Path) -> tuple[str, str, str]:
    """A first-run server with echo priced at 1 per input and 2 per output token, signed in,
    with a new session open: (base URL, token, session id)."""
    config = tmp_path / "priced.toml"
    config.write_text(PRICED)
    base, token = serve(free_port, "--config", str(config)).console_url()
    browser.get(f"{base}/?token={token}")
    wait_for_state(browser, "connected")
    wait(browser, lambda b: selected(b, "projects"), "the first project")
    wait(browser, CLICKABLE((By.ID, "new-session")), "New session").click()
    return base, token, wait(browser, lambda b: selected(b, "sessions"), "the new session")


def _queue(browser: WebDriver) -> list[str]:
    return browser.execute_script(QUEUE_JS)


def _type(browser: WebDriver, text: str) -> None:
    wait(browser, CLICKABLE((By.ID, "message")), "the message box").send_keys(text)


def _header(browser: WebDriver, index: int) -> str:
    return browser.find_elements(By.CSS_SELECTOR, "#transcript .message header")[index].text


def _click(browser: WebDriver, index: int, css: str) -> None:
    message = f"#transcript .message:nth-of-type({index + 1})"
    button = (By.CSS_SELECTOR, f"{message} {css}")
    wait(browser, CLICKABLE(button), f"{css} of message {index}").click()


def test_queue_take_back_and_interrupt_while_an_answer_streams(
    serve, free_port, browser, tmp_path, screenshot
):
    base, token, session_id = _open(serve, free_port, browser, tmp_path)
    send(browser, f"/slow {SLOW_WORDS}")
    wait(browser, lambda b: "word3" in streaming_text(b), "the answer streaming")
    wait(browser, EC.visibility_of_element_located((By.ID, "interrupt")), "Interrupt")
    assert not browser.find_element(By.ID, "send").is_displayed()
    _type(browser, "later")
    browser.find_element(By.ID, "queue-send").click()
    _type(browser, "never mind")
    browser.find_element(By.ID, "queue-send").click()
    wait(browser, lambda b: _queue(b) == ["later", "never mind"], "two queued messages")
    screenshot("queued")
    browser.find_elements(By.CSS_SELECTOR, "#queue .unqueue")[1].click()
    wait(browser, lambda b: _queue(b) == ["later"], "one taken back")
    _type(browser, "now")
    browser.find_element(By.ID, "interrupt").click()
    wait(browser, lambda b: len(transcript(b)) == 6, "every answer")
    wait(browser, lambda b: _queue(b) == [], "an empty queue")
    shown = transcript(browser)
    assert [(role, text) for role, _, text in shown[2:]] == [
        (role, text) for role, _, text in exchange("now") + exchange("later")
    ]
    assert shown[1][1] == "cancelled" and 0 < len(shown[1][2]) < len(SLOW_WORDS)
    assert "interrupted" in _header(browser, 1)
    synced = rest(base, token, "GET", f"/api/sessions/{session_id}?includeMessages=true")
    assert [m["status"] for m in synced["messages"]][1:] == ["cancelled"] + ["completed"] * 4
    screenshot("interrupted")


def test_edit_regenerate_and_switch_versions(serve, free_port, browser, tmp_path, screenshot):
    base, token, session_id = _open(serve, free_port, browser, tmp_path)
    send(browser, "one two")
    wait_for_transcript(browser, exchange("one two"))
    assert "2 in · 2 out · cost 6" in _header(browser, 1)  # 2 + 2 * 2, at these prices
    wait(
        browser,
        lambda b: b.find_element(By.ID, "session-usage").text == "2 in · 2 out · cost 6",
        "the session's usage",
    )

    _click(browser, 0, "button.edit")
    box = wait(browser, CLICKABLE((By.CSS_SELECTOR, ".editor textarea")), "the editor")
    box.clear()
    box.send_keys("three")
    browser.find_element(By.CSS_SELECTOR, ".editor button.save").click()
    wait_for_transcript(browser, exchange("three"))
    wait(browser, lambda b: "2/2" in _header(b, 0), "versions on the question")
    _click(browser, 0, "button.previous")
    wait_for_transcript(browser, exchange("one two"))
    assert "1/2" in _header(browser, 0)

    _click(browser, 1, "button.regenerate")
    wait(browser, lambda b: "2/2" in _header(b, 1), "versions on the answer")
    wait_for_transcript(browser, exchange("one two"))
    screenshot("versions")
    _click(browser, 1, "button.previous")
    wait(browser, lambda b: "1/2" in _header(b, 1), "the first answer again")
    path = rest(base, token, "GET", f"/api/sessions/{session_id}?includeMessages=true")
    assert [m["versions"]["index"] for m in path["messages"]] == [1, 1]


def test_fork_opens_a_new_session_with_the_path(serve, free_port, browser, tmp_path):
    base, token, session_id = _open(serve, free_port, browser, tmp_path)
    send(browser, "first")
    wait_for_transcript(browser, exchange("first"))
    send(browser, "second")
    wait_for_transcript(browser, exchange("first") + exchange("second"))
    _click(browser, 1, "button.fork")
    wait(browser, lambda b: selected(b, "sessions") not in (None, session_id), "the fork opened")
    wait_for_transcript(browser, exchange("first"))
    fork_id = selected(browser, "sessions")
    fork = rest(base, token, "GET", f"/api/sessions/{fork_id}")
    assert fork["forkedFrom"]["sessionId"] == session_id
    send(browser, "only here")
    wait_for_transcript(browser, exchange("first") + exchange("only here"))
