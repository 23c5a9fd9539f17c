"""Request bodies over `max_body_size` get 413 PAYLOAD_TOO_LARGE, whatever their size.

Tornado's own limit answers a bare 400 and drops the connection, so the HTTP server is given
a much larger one (DRAIN_LIMIT) and this delegate, wrapped around the application, enforces
the real one: it answers 413 as soon as it knows (from Content-Length, or once a chunked body
passes the limit), never hands the body to a handler, and reads the rest of the body only to
discard it, so that a client still sending gets to read the answer. A body declared larger
than DRAIN_LIMIT is answered at once and the connection is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from tornado import httputil
from tornado.http1connection import HTTP1Connection

from botical.errors import PayloadTooLarge
from botical.jsonout import dumps
from botical.logredact import redact

DRAIN_LIMIT = 64 * 1024 * 1024  # bytes of a refused body read and dropped before closing
access_log = logging.getLogger("tornado.access")


class BodyLimit(httputil.HTTPServerConnectionDelegate):
    """The application's connection delegate, with the body limit in front of it."""

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, limit: int) -> None:
        self.app = app
        self.limit = limit

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = self.app.start_request(server_conn, request_conn)
        assert isinstance(request_conn, HTTP1Connection)  # what HTTPServer makes
        return _LimitedMessage(inner, request_conn, self.limit)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _LimitedMessage(httputil.HTTPMessageDelegate):
    """One request: passed through while its body is within the limit, refused past it."""

    def __init__(
        self, inner: httputil.HTTPMessageDelegate, conn: HTTP1Connection, limit: int
    ) -> None:
        self.inner, self.conn, self.limit = inner, conn, limit
        self.start_line: httputil.RequestStartLine | None = None
        self.received = 0
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line = start_line
        declared = _content_length(headers)
        if declared is None or declared <= self.limit:
            return self.inner.headers_received(start_line, headers)
        self.conn.set_max_body_size(declared)  # else Tornado refuses it with a bare 400
        # Closing at once: a client waiting for "100 Continue" sends no body; past
        # DRAIN_LIMIT the body is not worth reading. Otherwise it is read and dropped.
        close = declared > DRAIN_LIMIT or headers.get("Expect", "").lower() == "100-continue"
        self._refuse(close)
        if close:
            self.conn.finish()  # Tornado closes the connection once this is written
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:  # a chunked body, past the limit
            self.inner.on_connection_close()  # the handler drops what it buffered
            self._refuse(close=False)
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.refused:
            self.conn.finish()
        else:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()

    def _refuse(self, close: bool) -> None:
        """Write the 413 now; the response ends when the body does (`finish`)."""
        self.refused = True
        body = dumps({"error": PayloadTooLarge().to_payload()}).encode()
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json; charset=utf-8",
                "Content-Length": str(len(body)),
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        if close:
            headers["Connection"] = "close"
        self.conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Payload Too Large"), headers, body
        )
        assert self.start_line is not None
        access_log.warning(
            "413 %s %s (body over %d bytes)",
            self.start_line.method,
            redact(self.start_line.path),
            self.limit,
        )


def _content_length(headers: httputil.HTTPHeaders) -> int | None:
    """The declared body size, if it is one number (Tornado refuses the rest itself)."""
    value = headers.get("Content-Length", "").split(",")[0].strip()
    return int(value) if value.isdigit() else None
