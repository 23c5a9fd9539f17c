"""The floor Botical is measured against: a bare Tornado WebSocket server that speaks the same
frames with no validation, auth, database or bus.

- first frame: a `connection.ready` event shaped like Botical's;
- `ping` -> `pong`;
- `request` -> a fixed response per method (`--responses FILE`, a JSON object {method: result},
  each result serialized once at start-up; any other method answers `{}`);
- `subscribe` / `unsubscribe` with the same acks;
- `bench.publish` {channel, part, deltas}: answered at once, then streams one `part.updated`
  delta event per item to the channel's subscribers (serialized once per event, written to
  each subscriber, yielding to the loop between deltas as Botical's `echo` provider does), and
  records each delta's publish time (time.monotonic_ns) for `bench.marks` {channel}.

Run: python bench/baseline_server.py --port 0  (prints "listening on PORT").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

READY = (
    '{"type":"event","channel":"connection","event":"connection.ready","data":'
    '{"connectionId":"conn_00000000000000000000000000","userId":"usr_00000000000000000000000000",'
    '"protocol":1,"epoch":"0000000000000000","heartbeatMs":25000,"limits":{"maxMessageSize":'
    '1048576,"maxChannels":100,"maxInflight":16,"rateLimit":20.0,"rateBurst":60}},"seq":0}'
)

PONG = '{"type":"pong","id":%s}'


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Hub:
    """Channels, their subscribers and seqs, and the publish marks of each channel."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self.fixed = {method: dumps(result) for method, result in responses.items()}
        self.subscribers: dict[str, dict[Any, None]] = {}
        self.seqs: dict[str, int] = {}
        self.marks: dict[str, list[tuple[int, int]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def publish(self, channel: str, part: dict[str, Any], deltas: list[str]) -> None:
        task = asyncio.ensure_future(self._stream(channel, part, deltas))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _stream(self, channel: str, part: dict[str, Any], deltas: list[str]) -> None:
        marks = self.marks.setdefault(channel, [])
        for delta in deltas:
            seq = self.seqs[channel] = self.seqs.get(channel, 0) + 1
            marks.append((seq, time.monotonic_ns()))
            event = {"part": part, "delta": delta}
            text = dumps(
                {
                    "type": "event",
                    "channel": channel,
                    "event": "part.updated",
                    "data": event,
                    "seq": seq,
                }
            )
            for socket in tuple(self.subscribers.get(channel, ())):
                try:  # noqa: SIM105 (try is free here; contextlib.suppress is not, per frame)
                    socket.write_message(text)
                except tornado.websocket.WebSocketClosedError:
                    pass
            await asyncio.sleep(0)


class BaselineSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub
        self.channels: set[str] = set()

    def get_compression_options(self) -> None:
        return None  # as Botical

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small frames must not wait for the peer's delayed ACK
        self.write_message(READY)

    def on_message(self, message: str | bytes) -> None:
        frame = json.loads(message)
        kind = frame.get("type")
        if kind == "ping":
            frame_id = frame.get("id")
            self.write_message(PONG % dumps(frame_id) if frame_id else '{"type":"pong"}')
        elif kind == "request":
            self._request(frame)
        elif kind == "subscribe":
            self._subscribe(frame)
        elif kind == "unsubscribe":
            for channel in frame["channels"]:
                self.hub.subscribers.get(channel, {}).pop(self, None)
                self.channels.discard(channel)
            if frame.get("id"):
                self._respond(frame["id"], dumps({"unsubscribed": frame["channels"]}))

    def _respond(self, frame_id: str, result_json: str) -> None:
        self.write_message(f'{{"type":"response","id":{dumps(frame_id)},"result":{result_json}}}')

    def _request(self, frame: dict[str, Any]) -> None:
        method, params = frame.get("method"), frame.get("params") or {}
        if method == "bench.publish":
            self.hub.publish(params["channel"], params["part"], params["deltas"])
            self._respond(frame["id"], dumps({"published": len(params["deltas"])}))
        elif method == "bench.marks":
            marks = self.hub.marks.pop(params["channel"], [])
            self._respond(frame["id"], dumps({"marks": marks}))
        else:
            self._respond(frame["id"], self.hub.fixed.get(method, "{}"))

    def _subscribe(self, frame: dict[str, Any]) -> None:
        acks = []
        for channel in frame["channels"]:
            self.hub.subscribers.setdefault(channel, {})[self] = None
            self.channels.add(channel)
            seq = self.hub.seqs.get(channel, 0)
            acks.append({"channel": channel, "seq": seq, "recovered": False})
        if frame.get("id"):
            self._respond(frame["id"], dumps({"subscribed": acks, "rejected": []}))

    def on_close(self) -> None:
        for channel in self.channels:
            self.hub.subscribers.get(channel, {}).pop(self, None)


def make_app(responses: dict[str, Any] | None = None) -> tornado.web.Application:
    """The baseline application; the same liveness and size settings as Botical's defaults."""
    hub = Hub(responses or {})
    return tornado.web.Application(
        [(r"/ws", BaselineSocket, {"hub": hub})],
        websocket_ping_interval=25.0,
        websocket_ping_timeout=20.0,
        websocket_max_message_size=1024 * 1024,
    )


async def serve(port: int, responses: dict[str, Any]) -> None:
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(responses))
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    if os.environ.get("BENCH_BASELINE_GC"):  # cross-check (bench/NOTES.md): Botical's GC settings
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
    print(f"listening on {bound}", flush=True)
    await asyncio.Event().wait()  # until the process is terminated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--responses", help="JSON file: {method: fixed result}")
    args = parser.parse_args(argv)
    responses = {}
    if args.responses:
        with open(args.responses, encoding="utf-8") as handle:
            responses = json.load(handle)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, responses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
