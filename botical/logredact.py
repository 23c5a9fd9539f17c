"""No token, key or secret in any log line, from any logger, at any level.

`install()` (called by the `botical` command before anything logs) replaces the logging
record factory: every record is rendered once as it is made, and its text, traceback and
stack are rewritten by `redact`, which replaces credentials found by their shape (JWTs, API
keys, Bearer and token headers, token query parameters) and every secret value Botical has
read (`add_secret`: the server secret, provider API keys, tool secrets). Log calls are kept
free of secrets at the source too; this is what catches the ones that are not (Tornado's
request summaries, an SDK's exception message, a plugin).
"""

from __future__ import annotations

import logging
import re
import threading
from types import TracebackType
from typing import Any

import tornado.web
from tornado.log import app_log, gen_log

MASK = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter "secrets" would blank out ordinary words
_SHAPES = re.compile(
    r"(?P<keep>(?i:[?&;](?:token|access_token|api_key|apikey|key|secret|password)=)"
    r"|(?i:\bbearer\s+)|(?i:\bbotical\.token\.)"
    r"|(?i:\b(?:x-api-key|api[_-]?key|token)['\"]?\s*[:=]\s*['\"]?)"
    r"|(?i:\bauthorization['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token)\s+)?))"
    r"(?P<value>[^\s&#'\",;}\[\]]+)"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT anywhere
    r"|\bbk_[A-Za-z0-9_-]{16,}"  # a Botical API key anywhere
)
_secrets: frozenset[str] = frozenset()
_lock = threading.Lock()
_formatter = logging.Formatter()
_installed = False


def redact(text: str) -> str:
    """`text` with every credential replaced by MASK."""
    text = _SHAPES.sub(_mask, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask(match: re.Match[str]) -> str:
    keep = match.group("keep")
    if keep is None:
        return MASK
    if match.group("value").lower() in ("none", "null"):
        return match.group(0)
    return keep + MASK


def add_secret(value: str) -> None:
    """Never log `value` (a secret Botical read from the environment or a file)."""
    global _secrets
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets = _secrets | {value}


def install() -> None:
    """Redact every log record made from now on, in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        scrub(record)
        return record

    logging.setLogRecordFactory(factory)


def scrub(record: logging.LogRecord) -> None:
    """Render the record's message (and traceback) now, redacted; handlers format the rest."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format call: leave it for logging to report
        return
    record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = _formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def request_summary(handler: tornado.web.RequestHandler) -> str:
    """`METHOD URI (ip)` for logs, credentials in the URI redacted."""
    request = handler.request
    return f"{request.method} {redact(request.uri or '')} ({request.remote_ip})"


def log_uncaught(
    handler: tornado.web.RequestHandler,
    typ: type[BaseException] | None,
    value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """Tornado's log of an uncaught exception, without the request's repr (its URI would
    carry a `?token=`): HTTPErrors as warnings, anything else as an error with its traceback."""
    if isinstance(value, tornado.web.HTTPError):
        if value.log_message:
            gen_log.warning(
                "%d %s: %s", value.status_code, request_summary(handler), value.get_message()
            )
        return
    app_log.error("Uncaught exception %s", request_summary(handler), exc_info=value)
