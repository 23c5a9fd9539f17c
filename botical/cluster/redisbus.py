"""The Redis bus backend: several Botical nodes behind one address share channels, seqs,
history, the epoch and cluster-wide events through one Redis (redis-py's asyncio client).

- Events for clients travel on channels (`cluster.channels.RedisBroadcaster`).
- Events that subscribers asked for with `cluster=True` (cache invalidations, cancels,
  approval answers, revocations) travel on one control channel to every node.
- The epoch lives in Redis: it changes only when Redis lost its data (restarted without it)
  or publications had to be dropped while Redis was away; then every client resyncs.
- Redis lost while running: the node is unhealthy (/health/ready answers 503, upgrades 503),
  closes its sockets (1011, reconnect) and reconnects; committed state is in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from botical.bus import Event, EventBus
from botical.cluster import scripts
from botical.cluster.channels import RedisBroadcaster
from botical.config import BusSettings, WebSocketSettings
from botical.errors import ConfigError
from botical.websocket.broadcaster import ChannelKind
from botical.websocket.connections import ConnectionRegistry

log = logging.getLogger(__name__)
NODE_TTL = 15  # seconds a node counts as alive after its last heartbeat
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
UNAVAILABLE = "bus.unavailable"  # published here when Redis is lost (not to other nodes)


class RedisBus(EventBus):
    name = "redis"
    shared = True

    def __init__(self, settings: BusSettings, node: str) -> None:
        super().__init__()
        self.settings = settings
        self.node = node
        self.epoch = ""
        self.healthy = False
        self._keys = settings.prefix
        self._control = f"{self._keys}:control"
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._dropped = False
        self._cluster_names: dict[str, bool] = {}
        self.on_channel_message: Callable[[str, str], None] = lambda channel, message: None
        self.on_subscribed: Callable[[str], None] = lambda channel: None
        self.on_reset: Callable[[], None] = lambda: None

    def broadcaster(
        self, registry: ConnectionRegistry, kinds: Iterable[ChannelKind], limits: WebSocketSettings
    ) -> RedisBroadcaster:
        return RedisBroadcaster(self, registry, kinds, limits)

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; a Redis that does not answer is a configuration error naming the key."""
        try:
            await self._connect()
        except (RedisError, OSError) as exc:
            raise ConfigError(
                f"[bus] url: cannot reach Redis at {_shown(self.settings.url)}: {exc}"
            ) from None
        self._spawn(self._heartbeat())

    async def _connect(self) -> None:
        url = self.settings.url
        timeout = self.settings.timeout
        self._redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        await self._redis.ping()
        self._publish_script = self._redis.register_script(scripts.PUBLISH)
        self._snapshot_script = self._redis.register_script(scripts.SNAPSHOT)
        listener = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=timeout, health_check_interval=2
        )
        self._pubsub = listener.pubsub()
        await self._pubsub.subscribe(self._control)
        await self._load_epoch()
        self.healthy = True
        self._reader = asyncio.create_task(self._read())

    async def _load_epoch(self) -> None:
        key = f"{self._keys}:epoch"
        assert self._redis is not None
        if self._dropped:  # publications were lost while Redis was away: no replay across
            self._dropped = False
            await self._redis.set(key, secrets.token_hex(8))
        else:
            await self._redis.set(key, secrets.token_hex(8), nx=True)
        self.epoch = str(await self._redis.get(key) or "")

    async def stop(self) -> None:
        for task in (*self._jobs, *((self._reader,) if self._reader else ())):
            task.cancel()
        await super().stop()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._close_connections()

    async def _close_connections(self) -> None:
        with contextlib.suppress(Exception):
            if self._pubsub is not None:
                await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            if self._redis is not None:
                await self._redis.aclose()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # -- events for every node --------------------------------------------------------------

    def publish(self, event: Event) -> None:
        self.deliver(event)
        if self._redis is not None and self._for_cluster(event.name) and event.name != UNAVAILABLE:
            self._spawn(self._send_control(event))  # (not from a command that never connected)

    def _for_cluster(self, name: str) -> bool:
        known = self._cluster_names.get(name)
        if known is None:
            known = self._cluster_names[name] = any(
                p == "*" or p == name or (p.endswith(".*") and name.startswith(p[:-1]))
                for p in self.cluster_patterns
            )
        return known

    async def _send_control(self, event: Event) -> None:
        message = {
            "node": self.node,
            "name": event.name,
            "data": event.data,
            "projectId": event.project_id,
            "sessionId": event.session_id,
            "userId": event.user_id,
        }
        try:
            assert self._redis is not None
            await self._redis.publish(self._control, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            self.lost(exc, dropped=1)

    def _control_message(self, text: str) -> None:
        message = json.loads(text)
        if message["node"] == self.node:
            return  # delivered here when it was published
        event = Event(
            message["name"],
            message["data"],
            project_id=message["projectId"],
            session_id=message["sessionId"],
            user_id=message["userId"],
        )
        if event.name == "bus.epoch":
            self.epoch = event.data["epoch"]
        self.deliver(event, remote=True)

    # -- reading and reconnecting -------------------------------------------------------------

    async def _read(self) -> None:
        channel_prefix = f"{self._keys}:ch:"
        try:
            async for message in self._pubsub.listen():
                kind, name = message["type"], message["channel"]
                if kind == "message":
                    if name == self._control:
                        self._control_message(message["data"])
                    else:
                        self.on_channel_message(name[len(channel_prefix) :], message["data"])
                elif kind == "subscribe" and name != self._control:
                    self.on_subscribed(name[len(channel_prefix) :])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.lost(exc)

    def lost(self, exc: BaseException, dropped: int = 0) -> None:
        """Redis failed: become unhealthy, reset what is listened to, reconnect."""
        if dropped:
            self._dropped = True
            log.warning("the bus dropped %d publication(s): %s", dropped, exc)
        if not self.healthy:
            return
        self.healthy = False
        log.error("lost the Redis bus at %s: %s; reconnecting", _shown(self.settings.url), exc)
        self.on_reset()
        self.deliver(Event(UNAVAILABLE, {}))
        self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        await self._close_connections()
        attempt = 0
        while True:
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
            try:
                await self._connect()
            except (RedisError, OSError) as exc:
                log.info("Redis bus still unavailable: %s", exc)
                await self._close_connections()
                continue
            log.info("Redis bus is back (epoch %s)", self.epoch)
            self.publish(Event("bus.epoch", {"epoch": self.epoch}))
            return

    async def _heartbeat(self) -> None:
        while True:
            if self.healthy and self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.set(f"{self._keys}:node:{self.node}", 1, ex=NODE_TTL)
            await asyncio.sleep(NODE_TTL / 3)

    # -- channels (used by the broadcaster) ---------------------------------------------------

    def _key(self, channel: str, what: str) -> str:
        return f"{self._keys}:{{{channel}}}:{what}"

    async def listen(self, channel: str) -> None:
        await self._pubsub.subscribe(f"{self._keys}:ch:{channel}")

    def unlisten(self, channel: str, wanted_again: Callable[[], bool]) -> None:
        if self.healthy:
            self._spawn(self._unlisten(channel, wanted_again))

    async def _unlisten(self, channel: str, wanted_again: Callable[[], bool]) -> None:
        if wanted_again():
            return
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe(f"{self._keys}:ch:{channel}")

    async def current_seq(self, channel: str) -> int:
        assert self._redis is not None
        return int(await self._redis.get(self._key(channel, "seq")) or 0)

    async def history(self, channel: str) -> list[str]:
        assert self._redis is not None
        return [
            str(item) for item in await self._redis.lrange(self._key(channel, "history"), 0, -1)
        ]

    async def snapshot(self, channel: str) -> tuple[int, dict[str, str]]:
        keys = [self._key(channel, "seq"), self._key(channel, "open")]
        out = await self._snapshot_script(keys=keys, args=[self._key(channel, "live:")])
        seq, rest = int(out[0]), out[1:]
        return seq, dict(zip(rest[::2], rest[1::2], strict=True))

    async def publish_batch(self, batch: list[tuple[str, str, str, str, str]], size: int) -> None:
        assert self._redis is not None
        ttl = self.settings.history_ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, body, live, part_id, delta in batch:
                keys = [
                    self._key(channel, "seq"),
                    self._key(channel, "history"),
                    self._key(channel, "open"),
                    self._key(channel, f"live:{part_id}"),
                ]
                args: list[str | int] = [f"{self._keys}:ch:{channel}", body, size, ttl]
                args += [live, part_id, delta]
                await self._publish_script(keys=keys, args=args, client=pipe)
            await pipe.execute()

    # -- connections per user, cluster-wide ---------------------------------------------------

    async def connections_of(self, user_id: str, here: int) -> int:
        """Open sockets of a user on every live node (`here`: on this one); only `here` when
        Redis cannot tell."""
        try:
            return here + await self._elsewhere(user_id)
        except (RedisError, OSError):
            return here

    async def _elsewhere(self, user_id: str) -> int:
        assert self._redis is not None
        key = f"{self._keys}:conns:{user_id}"
        counts = {str(k): int(v) for k, v in (await self._redis.hgetall(key)).items()}
        others = [node for node in counts if node != self.node]
        if not others:
            return 0
        alive = await self._redis.mget([f"{self._keys}:node:{n}" for n in others])
        dead = [n for n, up in zip(others, alive, strict=True) if not up]
        if dead:  # a node that died keeps its count here: forget it
            await self._redis.hdel(key, *dead)
        return sum(counts[n] for n, up in zip(others, alive, strict=True) if up)

    def connection_counted(self, user_id: str, change: int) -> None:
        self._spawn(self._count(user_id, change))

    async def _count(self, user_id: str, change: int) -> None:
        with contextlib.suppress(Exception):
            assert self._redis is not None
            await self._redis.hincrby(f"{self._keys}:conns:{user_id}", self.node, change)


def _shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':***@' if user else '***@'}{host}"
