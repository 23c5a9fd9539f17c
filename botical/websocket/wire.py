"""RFC 6455 close codes for broken frames, on top of Tornado's WebSocketProtocol13.

Tornado drops the TCP connection without a close frame when a client breaks the framing
rules. This subclass checks each frame header before Tornado reads on, and each text and
close payload, and fails the connection the way section 7.1.7 says: a close frame with the
code (1002 protocol error, 1007 invalid UTF-8, 1011 when our own callback raised), then the
TCP connection is closed without reading further. What it cannot change is in
docs/protocol.md (section 4).
"""

from __future__ import annotations

import contextlib
import struct
import sys
from collections.abc import Callable
from typing import Any

from tornado.concurrent import Future
from tornado.websocket import WebSocketProtocol, WebSocketProtocol13

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_INTERNAL = 1011
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA_OPCODES = frozenset({_TEXT, _BINARY})
_KNOWN_OPCODES = frozenset({_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG})
# Close codes a peer may send (RFC 6455 section 7.4, and the IANA registry up to 1014).
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)})


class _Failed(Exception):
    """Raised out of a frame read once the connection has been failed: Tornado reads no more."""


class StrictProtocol13(WebSocketProtocol13):
    """WebSocketProtocol13 that answers protocol violations with a close code."""

    _header_next = False
    sent_close: int | None = None  # the code this side closed with, if it closed first
    close_received = False  # whether the client sent a close frame

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.server_terminated and not self.client_terminated:
            self.sent_close = code if code is not None else 1000 if reason else 1005
        super().close(code, reason)

    async def _receive_frame(self) -> None:
        self._header_next = True
        with contextlib.suppress(_Failed):  # the connection was failed; the loop ends
            await super()._receive_frame()

    async def _read_bytes(self, n: int) -> bytes:
        data = await super()._read_bytes(n)
        if self._header_next:  # the first read of a frame is its two header bytes
            self._header_next = False
            problem = self._header_problem(data[0], data[1])
            if problem is not None:
                self._fail(CLOSE_PROTOCOL_ERROR, problem)
                raise _Failed
        return data

    def _header_problem(self, first: int, second: int) -> str | None:
        opcode = first & self.OPCODE_MASK
        reserved = first & self.RSV_MASK
        if self._decompressor is not None and opcode != _CONTINUATION:
            reserved &= ~self.RSV1  # per-message deflate, when negotiated, uses RSV1
        if reserved:
            return "Reserved bits set"
        if opcode not in _KNOWN_OPCODES:
            return "Reserved opcode"
        if not second & 0x80 and not self.mask_outgoing:
            return "Client frames must be masked"
        if opcode & 0x8 and (not first & self.FIN or second & 0x7F >= 126):
            return "Control frames must be whole and under 126 bytes"
        if opcode == _CONTINUATION and self._fragmented_message_buffer is None:
            return "Continuation frame without a message to continue"
        if opcode in _DATA_OPCODES and self._fragmented_message_buffer is not None:
            return "New message before the fragmented one ended"
        return None

    def _handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        if self.client_terminated or self._frame_compressed:
            return super()._handle_message(opcode, data)
        if opcode == _TEXT:  # decoded once, here, instead of in Tornado
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self._fail(CLOSE_INVALID_DATA, "Text frame is not valid UTF-8")
                return None
            self._message_bytes_in += len(data)
            return self._run_callback(self.handler.on_message, text)
        if opcode == _CLOSE and (problem := _close_problem(data)) is not None:
            self._fail(*problem)
            return None
        if opcode == _CLOSE:
            self.close_received = True  # Tornado's own flag is also set when TCP just drops
        return super()._handle_message(opcode, data)

    def _run_callback(self, callback: Callable, *args: Any, **kwargs: Any) -> Future[Any] | None:
        """As Tornado's, but a callback that raises closes with 1011 instead of dropping TCP."""
        try:
            result = callback(*args, **kwargs)
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._fail(CLOSE_INTERNAL, "Internal error")
            return None
        if result is None:
            return None
        return super()._run_callback(lambda: result)  # awaitable: Tornado's handling

    def _fail(self, code: int, reason: str) -> None:
        """Send a close frame with `code`, then close the TCP connection (RFC 6455 7.1.7)."""
        self.close(code, reason)
        self._abort()


def _close_problem(payload: bytes) -> tuple[int, str] | None:
    """What is wrong with a close frame's payload (code, reason text), if anything."""
    if not payload:
        return None
    if len(payload) == 1:
        return CLOSE_PROTOCOL_ERROR, "Close payload of one byte"
    (code,) = struct.unpack(">H", payload[:2])
    if code not in _VALID_CLOSE_CODES:
        return CLOSE_PROTOCOL_ERROR, "Invalid close code"
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return CLOSE_INVALID_DATA, "Close reason is not valid UTF-8"
    return None


def closed_by(protocol: WebSocketProtocol | None) -> tuple[int, str]:
    """How a connection ended: the code of the first close frame and who sent it (`server`,
    `client`), or (1006, `none`) when it ended without one. A close frame without a code is
    1005, as RFC 6455 section 7.1.5 says."""
    sent = getattr(protocol, "sent_close", None)
    if sent is not None:
        return sent, "server"
    if getattr(protocol, "close_received", False):
        return getattr(protocol, "close_code", None) or 1005, "client"
    return 1006, "none"


def strict(protocol: WebSocketProtocol | None) -> WebSocketProtocol | None:
    """The StrictProtocol13 standing in for the protocol Tornado chose (version 13 only)."""
    if not isinstance(protocol, WebSocketProtocol13):
        return protocol
    return StrictProtocol13(protocol.handler, protocol.mask_outgoing, protocol.params)
