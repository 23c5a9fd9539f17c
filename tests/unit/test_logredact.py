"""What the log redaction replaces, and that every logger's records go through it."""

from __future__ import annotations

import logging

import pytest

from botical import logredact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlLXBhcnQ"
KEY = "bk_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0u1v"


@pytest.mark.parametrize(
    "line, hidden",
    [
        (f"GET /ws?token={JWT} (127.0.0.1)", JWT),
        ("GET /api/me?access_token=opaque-123&x=1 (127.0.0.1)", "opaque-123"),
        ("GET /x?api_key=abcdef123456 (127.0.0.1)", "abcdef123456"),
        (f"headers: {{'Authorization': 'Bearer {KEY}'}}", KEY),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("Authorization: token ghp_0123456789abcdef", "ghp_0123456789abcdef"),
        ("x-api-key: sk-ant-0123456789", "sk-ant-0123456789"),
        (f"Sec-WebSocket-Protocol: botical.v1, botical.token.{JWT}", JWT),
        (f"RuntimeError: failed with {{'secret': '{JWT}'}}", JWT),
        (f"a key {KEY} in prose", KEY),
        ('{"api_key": "sk-live-abcdef"}', "sk-live-abcdef"),
    ],
)
def test_credentials_are_replaced_by_their_shape(line, hidden):
    redacted = logredact.redact(line)
    assert hidden not in redacted
    assert logredact.MASK in redacted


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/projects?limit=50 (127.0.0.1) 1.20ms",
        "GET /ws?token=[redacted] (127.0.0.1)",
        "run run_01m8 ended with PROVIDER_ERROR: Rate limit reached",
        "a basic check of the token bucket",
    ],
)
def test_ordinary_lines_are_left_alone(line):
    assert logredact.redact(line) == line


def test_a_secret_that_was_read_is_never_logged():
    logredact.add_secret("correct-horse-battery")
    logredact.add_secret("short")  # too short to be told from ordinary words
    assert logredact.redact("value correct-horse-battery!") == "value [redacted]!"
    assert logredact.redact("a short word") == "a short word"


def test_every_logger_at_every_level_is_redacted_with_its_traceback(caplog):
    logredact.install()
    logredact.install()  # idempotent: one factory, not two
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("tornado.application").debug("Uncaught %s", f"/x?token={JWT}")
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            logging.getLogger("some.plugin").exception("failed for %r", {"key": KEY})
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "Traceback" in text and "RuntimeError: boom [redacted]" in text
    assert JWT not in text and KEY not in text
