"""The PostgreSQL connection health check (apps/core/db/postgresql): no round trip on a healthy
idle connection, a reconnect after the server closed it, Django's SELECT 1 otherwise.

Round trips are observed from the server side: a second psycopg connection reads our backend's
row in pg_stat_activity, whose `state_change` and `query` move with every statement we send
(Django's SELECT 1 goes straight to psycopg, so Django's query log would not see it)."""

import os
import select
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as StockDatabaseWrapper

from apps.core.db.postgresql.base import DatabaseWrapper
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def persistent_connection(transactional_db):
    """`django.db.connection` as the web processes have it: this backend, kept open between
    requests and health-checked. (The suite's settings use the stock backend without either.)"""
    original = connections[DEFAULT_DB_ALIAS]
    settings_dict = {
        **original.settings_dict,
        "ENGINE": "apps.core.db.postgresql",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
    wrapper = DatabaseWrapper(settings_dict, alias=DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        connections[DEFAULT_DB_ALIAS] = original


@pytest.fixture
def observer(persistent_connection):
    """A separate connection that watches ours from the server's side."""
    settings_dict = persistent_connection.settings_dict
    params = {
        "dbname": settings_dict["NAME"],
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"],
        "host": settings_dict["HOST"],
        "port": settings_dict["PORT"],
    }
    with psycopg.connect(**{key: value for key, value in params.items() if value}, autocommit=True) as conn:
        yield conn


def _activity(observer, pid):
    """(state, state_change, query) of backend `pid`, or None once it has exited."""
    return observer.execute("SELECT state, state_change, query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()


def _run(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone() if cursor.description else None


def test_postgresql_urls_select_this_backend_and_sqlite_stays():
    script = "from django.db import connections; print(type(connections['default']).__module__)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}

    def backend_for(database_url):
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {script}"],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "loyalnest.settings.dev", "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert backend_for("postgres://postgres@127.0.0.1:5432/loyalnest") == "apps.core.db.postgresql.base"
    assert backend_for("sqlite:///:memory:") == "django.db.backends.sqlite3.base"


def test_a_healthy_idle_connection_is_usable_without_a_round_trip(persistent_connection, observer):
    _run("SELECT 'the last statement before the health check'")
    pid = persistent_connection.connection.info.backend_pid
    before = _activity(observer, pid)

    assert persistent_connection.is_usable() is True

    assert before[0] == "idle"
    assert _activity(observer, pid) == before
    # Control: the observer does see Django's own check, so the assertion above can fail.
    assert StockDatabaseWrapper.is_usable(persistent_connection) is True
    after_stock_check = _activity(observer, pid)
    assert after_stock_check[2] == "SELECT 1"
    assert after_stock_check[1] > before[1]


def test_a_connection_the_server_closed_is_not_usable(persistent_connection, observer):
    _run("SELECT 1")
    pid = persistent_connection.connection.info.backend_pid

    observer.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: _activity(observer, pid) is None)

    # psycopg has not noticed (nothing has read the socket): only the poll can tell.
    assert persistent_connection.connection.closed is False
    assert persistent_connection.is_usable() is False


def test_the_first_request_after_the_server_closed_the_connection_reconnects(persistent_connection, observer):
    _run("SELECT 1")
    pid = persistent_connection.connection.info.backend_pid
    observer.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: _activity(observer, pid) is None)

    # The next request: request_started closes old connections and re-arms the health check,
    # which runs before the request's first query.
    close_old_connections()
    persistent_connection.close_if_health_check_failed()
    assert persistent_connection.connection is None
    (new_pid,) = _run("SELECT pg_backend_pid()")

    assert new_pid != pid
    assert persistent_connection.is_usable() is True


def test_an_asynchronous_message_falls_back_to_select_1_and_stays_usable(persistent_connection, observer):
    _run("LISTEN loyalnest_health_check")
    pid = persistent_connection.connection.info.backend_pid
    observer.execute("NOTIFY loyalnest_health_check")
    readable, _, _ = select.select([persistent_connection.connection.fileno()], [], [], 10)
    assert readable
    before = _activity(observer, pid)

    assert persistent_connection.is_usable() is True

    after = _activity(observer, pid)
    assert after[2] == "SELECT 1"
    assert after[1] > before[1]


def test_inside_a_transaction_the_check_is_djangos_select_1(persistent_connection, observer):
    with transaction.atomic():
        _run("SELECT 'inside the transaction'")
        pid = persistent_connection.connection.info.backend_pid
        before = _activity(observer, pid)

        assert persistent_connection.is_usable() is True

        after = _activity(observer, pid)

    assert before[0] == "idle in transaction"
    assert after[2] == "SELECT 1"
    assert after[1] > before[1]
