"""The storefront counters' own Redis connection (RELIABILITY D3): what lands in Redis, and how it
behaves when Redis forgets the script, drops the connection, is unreachable, or the process forks."""

import contextlib
import os
import socket
import time

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from apps.core import redis as core_redis
from apps.shopify.ratelimit import CONNECTION_NAME, Counter, Rate, rate_limit_hit, rate_limit_send

START = 1_800_000_000.0  # a window boundary for 60- and 3600-second windows
PER_SHOPPER = Counter(bucket="storefront", who="cus_6001", rate=Rate.parse("3/60"))
PER_SHOP = Counter(bucket="shop", who="all", rate=Rate.parse("100/3600"))


def hit(now=START + 5):
    return rate_limit_hit(merchant_id="m-alpha", counters=[PER_SHOPPER, PER_SHOP], now=now)


def stored_counts():
    client = core_redis.get_redis()
    keys = sorted(client.keys("ratelimit:*"))
    return {key: client.get(key) for key in keys}


def counting_connection_ids() -> set[int]:
    """Ids of the counters' connections to the test database, per CLIENT LIST."""
    database = core_redis.get_redis().connection_pool.connection_kwargs.get("db", 0)
    clients = core_redis.get_redis().client_list()
    return {int(c["id"]) for c in clients if c["name"] == CONNECTION_NAME and int(c["db"]) == database}


@contextlib.contextmanager
def redis_url(url, timeout=None):
    """Point the app at another Redis URL (the shared client is rebuilt, as the proxy tests do)."""
    with override_settings(REDIS_URL=url, REDIS_SOCKET_TIMEOUT=timeout or settings.REDIS_SOCKET_TIMEOUT):
        core_redis._client.cache_clear()
        try:
            yield
        finally:
            core_redis._client.cache_clear()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_both_counters_land_in_redis_in_one_call_with_their_expiry():
    first = hit()
    second = hit()

    window = int(START // 60)
    hour = int(START // 3600)
    assert first is None and second is None
    assert stored_counts() == {
        f"ratelimit:m-alpha:shop:all:{hour}": "2",
        f"ratelimit:m-alpha:storefront:cus_6001:{window}": "2",
    }
    client = core_redis.get_redis()
    assert 60 <= client.ttl(f"ratelimit:m-alpha:storefront:cus_6001:{window}") <= 61
    assert 3600 <= client.ttl(f"ratelimit:m-alpha:shop:all:{hour}") <= 3601
    # The third request is the last allowed, the fourth waits for the minute's end.
    assert hit() is None
    assert hit() == 55.0


def test_a_count_sent_now_and_read_later_is_one_hit():
    """The storefront sends its count, reads the shopper from PostgreSQL, then reads the answer."""
    pending = rate_limit_send(merchant_id="m-alpha", counters=[PER_SHOPPER, PER_SHOP], now=START + 5)
    core_redis.get_redis().set("meanwhile", "1")  # other Redis work in between, on the shared client

    assert pending.wait() is None
    assert set(stored_counts().values()) == {"1"}
    with pytest.raises(RuntimeError):
        pending.wait()  # an answer is read once
    assert [hit(), hit(), hit()] == [None, None, 55.0]


def test_a_discarded_count_stands_and_the_next_call_reads_its_own_answer():
    hit()
    (before,) = counting_connection_ids()

    rate_limit_send(merchant_id="m-alpha", counters=[PER_SHOPPER, PER_SHOP], now=START + 5).discard()

    assert hit() is None  # not the discarded count's answer: that one would say 2, this is 3
    assert set(stored_counts().values()) == {"3"}
    assert hit() == 55.0
    (after,) = counting_connection_ids()
    assert after != before


def test_a_count_left_unread_is_not_taken_for_the_next_answer():
    """A caller that neither waits nor discards (a bug) costs a reconnection, never a wrong answer."""
    hit()
    rate_limit_send(merchant_id="m-alpha", counters=[PER_SHOPPER, PER_SHOP], now=START + 5)
    deadline = time.monotonic() + 2  # the unread answer arrives
    client = core_redis.get_redis()
    while (
        client.get(f"ratelimit:m-alpha:storefront:cus_6001:{int(START // 60)}") != "2" and time.monotonic() < deadline
    ):
        time.sleep(0.01)

    assert hit() is None
    assert set(stored_counts().values()) == {"3"}
    assert hit() == 55.0


def test_a_script_redis_forgot_is_loaded_again_and_counts_once():
    hit()
    core_redis.get_redis().script_flush()

    assert hit() is None

    assert set(stored_counts().values()) == {"2"}
    assert len(counting_connection_ids()) == 1  # no reconnection for a lost script
    assert hit() is None and set(stored_counts().values()) == {"3"}


def test_a_connection_the_server_dropped_is_replaced_without_losing_or_doubling_a_count():
    hit()
    (before,) = counting_connection_ids()
    core_redis.get_redis().client_kill_filter(_id=before)

    assert hit() is None

    assert set(stored_counts().values()) == {"2"}
    (after,) = counting_connection_ids()
    assert after != before


def test_with_redis_unreachable_it_raises_at_once_and_recovers_with_the_url():
    hit()

    with redis_url(f"redis://127.0.0.1:{closed_port()}/0"):
        started = time.monotonic()
        with pytest.raises(redis.RedisError):
            hit()
        with pytest.raises(redis.RedisError):
            hit()
        elapsed = time.monotonic() - started

    assert elapsed < settings.REDIS_SOCKET_TIMEOUT
    assert hit() is None
    assert set(stored_counts().values()) == {"2"}


def test_a_redis_that_never_answers_fails_within_the_socket_timeout_and_is_left_behind():
    silent = socket.socket()  # listens (the kernel accepts) but never replies
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        with redis_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.2):
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                hit()
            elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert 0.15 <= elapsed < 0.2 + 0.3
    assert hit() is None and set(stored_counts().values()) == {"1"}


def test_a_forked_child_counts_on_a_connection_of_its_own():
    hit()
    (parent,) = counting_connection_ids()

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw, and leave without running pytest's teardown
        status = 1
        try:
            os.close(read_end)
            hit()
            os.write(write_end, ",".join(str(i) for i in sorted(counting_connection_ids())).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        seen_by_child = {int(i) for i in pipe.read().decode().split(",") if i}
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    child = seen_by_child - {parent}
    assert parent in seen_by_child and len(child) == 1
    # The parent's connection outlived the child's exit: it counts on it, without reconnecting.
    assert hit() is None
    deadline = time.monotonic() + 2  # Redis notices the child's closed socket on its own time
    while counting_connection_ids() != {parent} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counting_connection_ids() == {parent}
    assert set(stored_counts().values()) == {"3"}
