"""Set-based RFM scoring: one INSERT … SELECT scores every customer of a merchant into
`rfm_score_history`, one UPDATE … FROM copies segment and lifecycle stage onto `users`.

The SQL runs on PostgreSQL and SQLite (UPDATE … FROM needs SQLite ≥ 3.33); only the JSON
constructor and rounding differ. Scores come from the customer row's `last_order_at`,
`orders_count` and `total_spent` (kept current by the order webhooks). Customers without an
order are not scored (their segment is empty).

Threshold scoring compares against the bars (recency bars become timestamps: "<= 14 days"
is `last_order_at >= now - 14 days`), so equal customers always score equally. Quintile
scoring uses `ntile(5)` over the merchant's customers; its cut points are kept as bars for
incremental runs in between.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils.dateparse import parse_datetime

from .presets import LEVELS

_SEGMENT_CASE = """CASE
    WHEN r = 5 AND fm >= 4 THEN 'champions'
    WHEN r >= 3 AND fm >= 4 THEN 'loyal'
    WHEN r >= 4 AND fm >= 2 THEN 'potential_loyalist'
    WHEN r = 5 THEN 'new'
    WHEN r = 4 THEN 'promising'
    WHEN r = 3 AND fm = 3 THEN 'need_attention'
    WHEN r = 3 THEN 'about_to_sleep'
    WHEN fm = 5 THEN 'cant_lose'
    WHEN fm >= 3 THEN 'at_risk'
    WHEN r = 1 AND fm = 1 THEN 'lost'
    ELSE 'hibernating'
END"""

_COMPARATORS = {"lte": "<=", "lt": "<", "gte": ">=", "gt": ">"}
# Recency bars are upper bounds on days since the last order, i.e. lower bounds on its time.
_RECENCY_AS_TIME = {"lte": ">=", "lt": ">"}


def _ts(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def segment_for(r: int, fm: int) -> str:
    """The segment the SQL gives (r, fm) — for Python callers (previews, tests, docs)."""
    if r == 5 and fm >= 4:
        return "champions"
    if r >= 3 and fm >= 4:
        return "loyal"
    if r >= 4 and fm >= 2:
        return "potential_loyalist"
    if r == 5:
        return "new"
    if r == 4:
        return "promising"
    if r == 3:
        return "need_attention" if fm == 3 else "about_to_sleep"
    if fm == 5:
        return "cant_lose"
    if fm >= 3:
        return "at_risk"
    return "lost" if r == 1 and fm == 1 else "hibernating"


def _case(column: str, ladder: dict, *, now: datetime | None, params: list) -> str:
    """`CASE WHEN col >= %s THEN 5 … ELSE 1 END` for one dimension's bars."""
    parts = []
    for level in LEVELS:
        condition = ladder[level]
        if now is not None:
            operator = _RECENCY_AS_TIME[condition["op"]]
            params.append(_ts(now - timedelta(days=float(condition["value"]))))
        else:
            operator = _COMPARATORS[condition["op"]]
            params.append(float(condition["value"]))
        parts.append(f"WHEN {column} {operator} %s THEN {int(level)}")
    return f"CASE {' '.join(parts)} ELSE 1 END"


@dataclass
class ScoreQuery:
    sql: str
    params: list


def _scored_select(
    *, merchant_id: str, thresholds: dict, now: datetime, horizon_days: int, since: datetime | None, quintiles: bool
) -> ScoreQuery:
    """SELECT id, r, f, m, stage of the merchant's scorable customers."""
    params: list = []
    if quintiles:
        r_sql = "ntile(5) OVER (ORDER BY u.last_order_at, u.id)"
        f_sql = "ntile(5) OVER (ORDER BY u.orders_count, u.id)"
        m_sql = "ntile(5) OVER (ORDER BY u.total_spent, u.id)"
    else:
        r_sql = _case("u.last_order_at", thresholds["recency"], now=now, params=params)
        f_sql = _case("u.orders_count", thresholds["frequency"], now=None, params=params)
        m_sql = _case("u.total_spent", thresholds["monetary"], now=None, params=params)
    params.append(_ts(now - timedelta(days=horizon_days)))
    params.append(merchant_id)
    where = "u.merchant_id = %s AND u.orders_count > 0 AND u.last_order_at IS NOT NULL"
    if since is not None:
        # New orders move last_order_at; late or refunded ones move the ledger, which touches the row.
        where += " AND (u.last_order_at >= %s OR u.updated_at > %s)"
        params += [_ts(since), _ts(since)]
    sql = f"""
        SELECT u.id AS id, {r_sql} AS r, {f_sql} AS f, {m_sql} AS m,
            CASE WHEN u.last_order_at < %s THEN 'churned'
                 WHEN u.vip_tier_id IS NOT NULL THEN 'vip'
                 WHEN u.orders_count >= 2 THEN 'repeat_buyer'
                 ELSE 'new_lead' END AS stage
        FROM users u
        WHERE {where}"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    return ScoreQuery(sql, params)


def _json_score(weights: dict, params: list) -> str:
    total = sum(weights.values())
    params.extend(
        [weights["recency"] / total, weights["frequency"] / total, weights["monetary"] / total],
    )
    weighted = "(%s * r + %s * f + %s * m)"
    if connection.vendor == "postgresql":
        return (
            f"jsonb_build_object('recency', r, 'frequency', f, 'monetary', m, 'score', round(({weighted})::numeric, 2))"
        )
    return f"json_object('recency', r, 'frequency', f, 'monetary', m, 'score', round({weighted}, 2))"


def score_into_history(
    *,
    merchant_id: str,
    run_id: str,
    thresholds: dict,
    now: datetime,
    horizon_days: int,
    since: datetime | None = None,
) -> int:
    """Score the merchant's customers (all, or those ordering since `since`) into history rows
    of `run_id`; returns how many were scored."""
    quintiles = thresholds.get("method") == "quintiles" and since is None
    scored = _scored_select(
        merchant_id=merchant_id,
        thresholds=thresholds,
        now=now,
        horizon_days=horizon_days,
        since=since,
        quintiles=quintiles,
    )
    head: list = [f"rsh_{run_id.rsplit('_', 1)[-1]}_", merchant_id, run_id]
    json_params: list = []
    json_sql = _json_score(thresholds["weights"], json_params)
    sql = f"""
        INSERT INTO rfm_score_history
            (history_id, merchant_id, customer_id, run_id, rfm_score, segment, lifecycle_stage, created_at)
        SELECT %s || CAST(ROW_NUMBER() OVER (ORDER BY s.id) AS TEXT), %s, s.id, %s, {json_sql},
            {_SEGMENT_CASE}, s.stage, %s
        FROM (SELECT b.*, (b.f + b.m + 1) / 2 AS fm FROM ({scored.sql}) b) s"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    params = [*head, *json_params, _ts(now), *scored.params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def apply_history_to_customers(*, merchant_id: str, run_id: str, now: datetime, full: bool) -> int:
    """Copy the run's segment and lifecycle stage onto `users` where they changed."""
    sql = """
        UPDATE users SET rfm_segment = h.segment, lifecycle_stage = h.lifecycle_stage, updated_at = %s
        FROM rfm_score_history h
        WHERE h.merchant_id = %s AND h.run_id = %s AND users.id = h.customer_id AND users.merchant_id = %s
          AND (users.rfm_segment <> h.segment OR users.lifecycle_stage <> h.lifecycle_stage)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [_ts(now), merchant_id, run_id, merchant_id])
        changed = cursor.rowcount
        if full:
            # Customers whose orders were all cancelled or refunded away drop out of scoring.
            cursor.execute(
                "UPDATE users SET rfm_segment = '', updated_at = %s "
                "WHERE merchant_id = %s AND rfm_segment <> '' AND (orders_count = 0 OR last_order_at IS NULL)",
                [_ts(now), merchant_id],
            )
            changed += cursor.rowcount
    return changed


def _as_datetime(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def quintile_bars(*, merchant_id: str, now: datetime, base: dict) -> dict:
    """The `ntile(5)` cut points as bars (level k = at least the lowest value of tile k)."""
    aggregates = []
    for level in LEVELS:
        aggregates += [
            f"MIN(CASE WHEN rt = {level} THEN last_order_at END)",
            f"MIN(CASE WHEN ft = {level} THEN orders_count END)",
            f"MIN(CASE WHEN mt = {level} THEN total_spent END)",
        ]
    sql = f"""
        SELECT {", ".join(aggregates)} FROM (
            SELECT last_order_at, orders_count, total_spent,
                ntile(5) OVER (ORDER BY last_order_at, id) AS rt,
                ntile(5) OVER (ORDER BY orders_count, id) AS ft,
                ntile(5) OVER (ORDER BY total_spent, id) AS mt
            FROM users WHERE merchant_id = %s AND orders_count > 0 AND last_order_at IS NOT NULL) t"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant_id])
        row = cursor.fetchone()
    bars = {"method": "quintiles", "weights": base["weights"], "recency": {}, "frequency": {}, "monetary": {}}
    for index, level in enumerate(LEVELS):
        last_order_at, orders, spent = row[index * 3 : index * 3 + 3]
        if last_order_at is None:  # fewer than five customers: keep the base bars
            return {**base, "method": "quintiles"}
        days = max((now - _as_datetime(last_order_at)).total_seconds() / 86400, 0)
        bars["recency"][level] = {"op": "lte", "value": round(days, 4)}
        bars["frequency"][level] = {"op": "gte", "value": int(orders)}
        bars["monetary"][level] = {"op": "gte", "value": float(spent)}
    return bars


def segmented_query(*, merchant_id: str, thresholds: dict, now: datetime, horizon_days: int) -> ScoreQuery:
    """SELECT id, r, f, m, stage, fm, segment of every scorable customer under `thresholds`."""
    scored = _scored_select(
        merchant_id=merchant_id,
        thresholds=thresholds,
        now=now,
        horizon_days=horizon_days,
        since=None,
        quintiles=thresholds.get("method") == "quintiles",
    )
    sql = f"""SELECT s.*, {_SEGMENT_CASE} AS segment
        FROM (SELECT b.*, (b.f + b.m + 1) / 2 AS fm FROM ({scored.sql}) b) s"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    return ScoreQuery(sql, scored.params)


def preview_counts(*, merchant_id: str, thresholds: dict, now: datetime, horizon_days: int) -> dict[str, int]:
    """Customers per standard segment under `thresholds`, computed without writing anything."""
    query = segmented_query(merchant_id=merchant_id, thresholds=thresholds, now=now, horizon_days=horizon_days)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT segment, COUNT(*) FROM ({query.sql}) t GROUP BY segment", query.params)  # noqa: S608
        return dict(cursor.fetchall())
