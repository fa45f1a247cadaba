"""Fixed-window request counters in Redis for the storefront (RELIABILITY D3).

A rate is written `"<requests>/<seconds>"` (`"120/60"`: 120 requests a minute). Each counter
is one Redis key, `ratelimit:<merchant_id>:<bucket>:<who>:<window>`, incremented with INCR
and given an expiry by one Lua script for all of a request's counters (one command, one round
trip), so it disappears on its own after its window.
Keys carry the merchant id (B3). Shoppers' IP addresses are keyed by a keyed hash, never
stored as such.

Every storefront request passes here, so the script goes over a connection of our own rather
than through the shared client: around one EVALSHA, redis-py 8.1's per-command layer (retry
wrapper, connection pool checkout and pid check, observability recorders, event dispatch,
response callbacks, `Script` argument checks) showed as ~0.11 ms of CPU per request in a
sampling profile, more than the command itself; skipping it took a two-counter call from ~170
to ~110 µs of CPU (timeit, 20,000 calls, loopback Redis). The connection is still redis-py's (`Connection.send_command` /
`read_response`, hiredis parsing; no protocol written here), one per process and thread, built
from the shared client's pool settings (host, db, password, timeouts, TLS) and made again after
a fork or when `settings.REDIS_URL` names another server (`loyalnest-ratelimit` in CLIENT LIST).

`rate_limit_send` sends the count and returns at once; its `.wait()` reads the answer, so the
storefront waits for Redis while PostgreSQL finds the shopper (`rate_limit_hit` does both).
`rate_limit_hit` raises `redis.RedisError` when Redis is unreachable: the caller decides
whether to serve the request anyway (reads) or refuse it (point redemptions). Before sending,
a connection the server has closed (Redis restarted, `CLIENT KILL`) is noticed without a round
trip, as redis-py's pool does when it hands out a connection, and replaced, so a restart costs
no request. Any other failure closes the connection, so the next call connects afresh, and is
raised: a command is never sent twice, as it may already have counted. A script Redis lost
(restart, `SCRIPT FLUSH`) is loaded again and run once more.
"""

import contextlib
import functools
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from apps.core.redis import get_redis


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, value: str) -> "Rate":
        """Parse `"<requests>/<seconds>"`; refuse anything else loudly (a typo must not disable limits)."""
        return _parse_rate(cls, value)


@functools.lru_cache(maxsize=256)
def _parse_rate(cls, value: str) -> Rate:
    """`Rate.parse`, once per setting's value (every storefront request parses two rates)."""
    try:
        limit, window = (int(part) for part in str(value).split("/"))
    except ValueError as exc:
        raise ValueError(f"rate must look like '120/60', not {value!r}") from exc
    if limit < 1 or window < 1:
        raise ValueError(f"rate must be positive, not {value!r}")
    return cls(limit=limit, window_seconds=window)


@dataclass(frozen=True)
class Counter:
    """One counter to increment: `rate` allowed per window for `who` in `bucket`."""

    bucket: str
    who: str
    rate: Rate


def client_fingerprint(address: str) -> str:
    """A stable, non-reversible key for an IP address (personal data stays out of Redis)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()
    return f"ip:{digest[:24]}"


def rate_limit_hit(*, merchant_id: str, counters: list[Counter], now: float | None = None) -> float | None:
    """Count one request against every counter; return seconds to wait when one is over, else None.

    Raises `redis.RedisError` when Redis cannot be reached.
    """
    return rate_limit_send(merchant_id=merchant_id, counters=counters, now=now).wait()


def rate_limit_send(*, merchant_id: str, counters: list[Counter], now: float | None = None) -> "PendingHit":
    """Send the count without waiting for Redis's answer: `.wait()` reads it (what
    `rate_limit_hit` returns). In between, the caller can wait on something else, such as the
    storefront's shopper lookup in PostgreSQL, so a request waits for one answer instead of
    two in a row. A caller that gives up before `.wait()` calls `.discard()`.

    Raises `redis.RedisError` when Redis cannot be reached (nothing was counted then).
    """
    now = time.time() if now is None else now
    keys, expiries, window_ends = [], [], []
    for counter in counters:
        window = counter.rate.window_seconds
        index = int(now // window)
        keys.append(f"ratelimit:{merchant_id}:{counter.bucket}:{counter.who}:{index}")
        expiries.append(window + 1)
        window_ends.append((index + 1) * window)
    command = ("EVALSHA", _COUNT_SHA, len(keys), *keys, *expiries)
    connection = _connection(get_redis())
    try:
        _send(connection, command)
    except redis.RedisError:
        connection.disconnect()
        raise
    return PendingHit(connection, command, counters, window_ends, now)


class PendingHit:
    """A count sent to Redis whose answer has not been read yet (`rate_limit_send`)."""

    __slots__ = ("_command", "_connection", "_counters", "_now", "_window_ends")

    def __init__(self, connection, command, counters, window_ends, now):
        self._connection, self._command = connection, command
        self._counters, self._window_ends, self._now = counters, window_ends, now

    def wait(self) -> float | None:
        """Seconds to wait when a counter is over its rate, else None. Raises `redis.RedisError`."""
        connection, self._connection = self._connection, None
        if connection is None:
            raise RuntimeError("this count was already read or discarded")
        try:
            try:
                counts = connection.read_response()
            except redis.exceptions.NoScriptError:
                # Redis lost the script (restart, SCRIPT FLUSH): nothing was counted; load and run it.
                _round_trip(connection, ("SCRIPT", "LOAD", _COUNT))
                counts = _round_trip(connection, self._command)
        except redis.RedisError:
            # The reply may be half read or the socket dead: start the next call on a new one.
            connection.disconnect()
            raise
        waits = [
            window_end - self._now
            for counter, window_end, count in zip(self._counters, self._window_ends, counts, strict=True)
            if int(count) > counter.rate.limit
        ]
        return max(waits) if waits else None

    def discard(self) -> None:
        """Give up on the answer (the count stands): the connection is closed, as its unread
        reply would otherwise be taken for the next command's."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.disconnect()


# INCR every key and (re-)arm its expiry — harmless on every hit: the window index is in the key.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[i])
end
return counts
"""


# Redis names a script by its SHA1 (an identifier, not a security measure).
_COUNT_SHA = hashlib.sha1(_COUNT.encode(), usedforsecurity=False).hexdigest()

# What CLIENT LIST shows for these connections (one per process and thread).
CONNECTION_NAME = "loyalnest-ratelimit"

# This thread's _ThreadConnection; see _connection().
_local = threading.local()


class _ThreadConnection:
    """A thread's connection, for one process and one shared client. Dropping it closes the
    socket at once (the thread ended, or it was replaced): redis-py's connection sits in a
    reference cycle, which would keep the socket open until the next garbage collection."""

    __slots__ = ("client", "connection", "pid")

    def __init__(self, pid: int, client: redis.Redis, connection: redis.Connection):
        self.pid, self.client, self.connection = pid, client, connection

    def __del__(self):
        # In a forked child, redis-py only closes its copy of the parent's socket (no shutdown),
        # so the parent's connection keeps working. Errors are moot here (interpreter exit).
        with contextlib.suppress(Exception):
            self.connection.disconnect()


def _round_trip(connection: redis.Connection, command: tuple) -> object:
    """Send one command and read its reply, on a fresh socket if the server closed ours."""
    _send(connection, command)
    return connection.read_response()


def _send(connection: redis.Connection, command: tuple) -> None:
    """Send one command, on a fresh socket if the server closed ours."""
    if connection.is_connected:
        # Readable before we have asked anything: closed by the server (EOF or reset), or
        # stray bytes. Nothing was sent yet, so reconnecting cannot count a request twice.
        try:
            stale = connection.can_read(timeout=0)
        except redis.RedisError:
            stale = True
        if stale:
            connection.disconnect()
    # No PING health check: the readiness test above finds what it would, without a round trip.
    connection.send_command(*command, check_health=False)


def _connection(client: redis.Redis) -> redis.Connection:
    """This thread's connection, with the shared client's settings; made again after a fork
    (a socket must not be shared with the parent) or when the client changed (REDIS_URL)."""
    pid = os.getpid()
    current = getattr(_local, "current", None)
    if current is not None and current.pid == pid and current.client is client:
        return current.connection
    pool = client.connection_pool
    # The pool's maintenance handler re-binds the pool's own connections; this one is not in it.
    kwargs = {key: value for key, value in pool.connection_kwargs.items() if key != "maint_notifications_pool_handler"}
    kwargs["client_name"] = CONNECTION_NAME  # CLIENT SETNAME once per connection
    _local.current = _ThreadConnection(pid, client, pool.connection_class(**kwargs))  # closes the one it replaces
    return _local.current.connection
