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

It also gives `prepared_cursor()`: a cursor whose statements PostgreSQL prepares once per
connection (see its docstring).
"""

import select

from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, Database, ServerBindingCursor
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper
from django.db.backends.postgresql.operations import DatabaseOperations as PostgreSQLDatabaseOperations
from django.db.backends.postgresql.psycopg_any import errors, register_tzloader
from django.utils.asyncio import async_unsafe
from psycopg.pq import Format, TransactionStatus

NEVER_AUTOMATICALLY = 2**62


class PreparedStatementCursor(ServerBindingCursor):
    """Server-side binding, and every statement prepared on its first execution: PostgreSQL
    parses and plans it once per connection, later executions only bind and run it (psycopg
    keeps the connection's last `prepared_max` statements)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


class DatabaseOperations(PostgreSQLDatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """The logged text of a prepared statement (DEBUG, tests): Django reads a client-bound
        cursor's own query text, which a server-bound one does not keep; compose it as Django does
        for server-side binding."""
        if isinstance(cursor, PreparedStatementCursor):
            try:
                return self.compose_sql(sql, params)
            except errors.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    ops_class = DatabaseOperations

    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("prepare_threshold") is None:
            # Django turns psycopg's automatic preparation off (for connection poolers), and
            # psycopg then ignores an explicit `prepare=True` as well. A threshold no statement
            # reaches keeps automatic preparation off and lets `prepared_cursor()` prepare.
            params["prepare_threshold"] = NEVER_AUTOMATICALLY
        return params

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

    @async_unsafe
    def prepared_cursor(self):
        """A cursor like `cursor()` (same health check, wrapping and query logging) whose
        statements are prepared: for the few fixed statements run on every storefront request,
        where parsing and planning cost PostgreSQL more than running them (the shopper lookup:
        0.14–0.19 ms of planning for 0.05 ms of execution). Django's own cursors bind on the
        client and prepare nothing, so connection poolers in transaction mode keep working for
        everything else; behind PgBouncer, this needs 1.21+ with `max_prepared_statements` set.
        """
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = PreparedStatementCursor(self.connection)
            # As Django's create_cursor: the cursor's time zone only where the connection's differs.
            if self.timezone != self.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
                register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)
