"""Django's PostgreSQL backend with a connection health check that costs no round trip.

With persistent connections (`CONN_MAX_AGE`) and `CONN_HEALTH_CHECKS`, Django calls
`is_usable()` before the first query of every request, and the stock backend answers it with
`SELECT 1`: one full round trip to PostgreSQL per request. On the storefront's hot endpoint that
was 5–8 % of the machine's CPU. We still want the check (after a database restart the first
request of every web process must not fail), so the common case is answered locally instead.

An idle, healthy PostgreSQL connection has nothing to read: the server speaks only when asked,
and libpq has already consumed everything up to the last ReadyForQuery. So a zero-timeout poll of
the socket that finds nothing readable means the connection is usable, at the cost of one system
call. A readable socket means the server said something unprompted: most often that it is going
away (restart, `pg_terminate_backend`, `idle_session_timeout`, a proxy closing idle clients: a
FATAL "terminating connection due to administrator command" and a FIN), sometimes an
asynchronous message (NOTIFY, a parameter status). Then we fall back to Django's own
`SELECT 1`, which reads that message, returns False on a dead connection (Django then closes it
and reconnects) and True otherwise. Unless the session is idle (inside a transaction, mid-query,
unknown) we defer to `SELECT 1` as well; a poll that fails (`OSError`, `ValueError`, no socket)
means unusable.

What it cannot see is a peer that vanished without closing the socket (a network partition, a
crashed host): nothing is readable then, and the request's first query fails as it would had the
peer vanished mid-request (Django's `SELECT 1` would block until the same TCP timeout).

Hand-written because no library offers a check without a round trip: Django's `is_usable()` runs
`SELECT 1`, psycopg_pool's `check_connection` an empty query, and psycopg 3's `closed`/`broken`
only reflect what libpq has already read.
"""

import select

from django.db.backends.postgresql.base import Database
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper
from psycopg.pq import TransactionStatus


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            # In a transaction (or mid-query, or in an unknown state) the socket says less
            # about the session than a query does: keep Django's check.
            return super().is_usable()
        try:
            poller = select.poll()
            # POLLHUP, POLLERR and POLLNVAL are reported without being asked for.
            poller.register(connection.fileno(), select.POLLIN)
            events = poller.poll(0)
        except (OSError, ValueError, Database.Error):
            return False
        if not events:
            return True
        return super().is_usable()
