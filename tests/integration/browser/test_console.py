"""The web console in a real headless Chromium against a real `botical serve`.

Every wait is an explicit condition with a timeout (WebDriverWait); screenshots of each step go
to test-artifacts/browser/.
"""

from __future__ import annotations

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.integration.browser.helpers import (
    HELLO,
    RECORD_SOCKETS_JS,
    SLOW_WORDS,
    TOOL_ANSWER,
    TOOL_CALL,
    assert_token_out_of_reach,
    connection_state,
    exchange,
    put_todos,
    send,
    sign_in_and_open_a_session,
    streaming_text,
    todo_list,
    wait,
    wait_for_state,
    wait_for_transcript,
)


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
