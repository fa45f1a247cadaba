"""Churn prediction: a model per merchant trained on its own order history with a time split.

Features are computed as of a cutoff moment T from the orders before T; the label is "no
purchase in the next H days" (H = the merchant's horizon, default 90). The model is fitted
on cutoff now − 2H (labels observed in [now − 2H, now − H)) and validated on cutoff now − H
(labels in [now − H, now)); the card reports the validation AUC, accuracy and the accuracy
of predicting "everyone churns". The winner is then refitted on the most recent window and
scores every customer as of now.

Model parameters are stored as plain numbers (`ChurnModel.parameters`) and applied with
numpy, so no pickle is ever loaded. With too little history, a recency rule stands in and is
labelled as such on the card.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.models import Customer
from apps.core.streams import stream_append_many_on_commit
from apps.core.tracking import track_on_commit
from apps.slack_community.selectors import beta_feature_enabled

from .experiments import nudge_experiment_customers
from .models import ChurnModel, ChurnNudge, RfmExperiment, RfmSettings
from .remote import RemoteModelError, remote_enabled, remote_scores
from .scoring import _ts
from .selectors import churn_model_active, rfm_settings_get

logger = logging.getLogger(__name__)

FEATURES = (
    "log_recency_days",
    "log_frequency",
    "log_monetary",
    "log_tenure_days",
    "log_average_order",
    "orders_last_90_days",
    "has_ordered",
    "recency_over_horizon",
)
DAY = 86400.0


@dataclass
class FeatureSet:
    customer_ids: list[str]
    matrix: np.ndarray  # n × len(FEATURES)
    labels: np.ndarray | None  # 1 = churned (no purchase in the window), None without a window
    recency_days: np.ndarray
    orders: np.ndarray


def _epoch(values) -> np.ndarray:
    return np.array([float(v) if v is not None else np.nan for v in values], dtype=float)


def features_as_of(
    *, merchant_id: str, cutoff: datetime, horizon_days: int, label_until: datetime | None, customer_ids=None
) -> FeatureSet:
    """Features of the merchant's customers as of `cutoff` (set-based SQL, one row each), and
    labels from the orders in [cutoff, label_until) when given."""
    only = ""
    extra: list = []
    if customer_ids is not None:
        only = f" AND u.id IN ({', '.join(['%s'] * len(customer_ids))})"
        extra = list(customer_ids)
    cutoff_ts = _ts(cutoff)
    # One grouped LEFT JOIN (not a join on an aggregated subquery): without fresh statistics
    # the planner may loop over the subquery once per customer.
    # Times come back as epoch seconds: parsing 300,000 timestamps in Python costs a second.
    epoch = "EXTRACT(EPOCH FROM {})" if connection.vendor == "postgresql" else "CAST(strftime('%%s', {}) AS REAL)"
    created, last, first = (
        epoch.format("u.created_at"),
        epoch.format("MAX(o.processed_at)"),
        epoch.format("MIN(o.processed_at)"),
    )
    sql = f"""
        SELECT u.id, {created}, {last}, {first}, COUNT(o.id),
            SUM(o.total_price - o.refunded_amount),
            SUM(CASE WHEN o.processed_at >= %s THEN 1 ELSE 0 END)
        FROM users u
        LEFT JOIN orders o ON o.customer_id = u.id AND o.merchant_id = %s AND o.cancelled_at IS NULL
            AND o.processed_at < %s
        WHERE u.merchant_id = %s AND u.redacted_at IS NULL{only}
        GROUP BY u.id, u.created_at
        HAVING COUNT(o.id) > 0 OR u.created_at < %s
        ORDER BY u.id"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    params = [_ts(cutoff - timedelta(days=90)), merchant_id, cutoff_ts, merchant_id, *extra, cutoff_ts]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ids = [row[0] for row in rows]
    if not rows:
        empty = np.zeros((0, len(FEATURES)))
        return FeatureSet([], empty, np.zeros(0) if label_until else None, np.zeros(0), np.zeros(0))
    now_s = cutoff.timestamp()
    created = _epoch(row[1] for row in rows)
    last = _epoch(row[2] for row in rows)
    first = _epoch(row[3] for row in rows)
    orders = np.array([row[4] or 0 for row in rows], dtype=float)
    spent = np.array([float(row[5] or 0) for row in rows], dtype=float)
    recent = np.array([float(row[6] or 0) for row in rows], dtype=float)
    has_ordered = orders > 0
    # Without an order, "recency" and "tenure" count from the signup.
    recency = np.maximum((now_s - np.where(has_ordered, last, created)) / DAY, 0)
    tenure = np.maximum((now_s - np.where(has_ordered, np.fmin(first, created), created)) / DAY, 0)
    average = np.where(has_ordered, spent / np.maximum(orders, 1), 0)
    matrix = np.column_stack(
        [
            np.log1p(recency),
            np.log1p(orders),
            np.log1p(np.maximum(spent, 0)),
            np.log1p(tenure),
            np.log1p(np.maximum(average, 0)),
            recent,
            has_ordered.astype(float),
            np.minimum(recency / horizon_days, 10),
        ]
    )
    labels = None
    if label_until is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT customer_id FROM orders WHERE merchant_id = %s AND customer_id IS NOT NULL "
                "AND cancelled_at IS NULL AND processed_at >= %s AND processed_at < %s",
                [merchant_id, cutoff_ts, _ts(label_until)],
            )
            bought = {row[0] for row in cursor.fetchall()}
        labels = np.array([0.0 if cid in bought else 1.0 for cid in ids])
    return FeatureSet(ids, matrix, labels, recency, orders)


# --- models as plain numbers --------------------------------------------------------------------


def _standardise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature (e.g. one signup date) must not blow up
    return mean, scale


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -500, 500)))


def predict(parameters: dict, features: FeatureSet, horizon_days: int) -> np.ndarray:
    """Churn probabilities from stored parameters (no scikit-learn object needed)."""
    kind = parameters["kind"]
    if kind == "recency_rule":
        # 50% at half the horizon since the last order, rising steeply after it.
        midpoint, width = horizon_days * parameters["midpoint"], horizon_days * parameters["width"]
        return _sigmoid((features.recency_days - midpoint) / width)
    x = (features.matrix - np.array(parameters["mean"])) / np.array(parameters["scale"])
    if kind == "logistic_regression":
        return _sigmoid(x @ np.array(parameters["coef"]) + parameters["intercept"])
    if kind == "mlp":
        activation = x
        layers = list(zip(parameters["coefs"], parameters["intercepts"], strict=True))
        for weights, bias in layers[:-1]:
            activation = np.maximum(activation @ np.array(weights) + np.array(bias), 0)
        weights, bias = layers[-1]
        return _sigmoid(activation @ np.array(weights) + np.array(bias)).ravel()
    raise ValueError(f"unknown model kind {kind!r}")


def _fit(kind: str, train: FeatureSet) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mean, scale = _standardise(train.matrix)
    x = (train.matrix - mean) / scale
    if kind == "logistic_regression":
        model = LogisticRegression(max_iter=300)
        model.fit(x, train.labels)
        return {
            "kind": kind,
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(),
            "intercept": float(model.intercept_[0]),
        }
    model = MLPClassifier(
        hidden_layer_sizes=(settings.RFM_MLP_HIDDEN_UNITS,),
        max_iter=settings.RFM_MLP_MAX_ITER,
        early_stopping=True,
        random_state=0,
    )
    model.fit(x, train.labels)
    return {
        "kind": kind,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coefs": [w.tolist() for w in model.coefs_],
        "intercepts": [b.tolist() for b in model.intercepts_],
    }


RECENCY_RULE = {"kind": "recency_rule", "midpoint": 0.5, "width": 1 / 6}


@dataclass
class Evaluation:
    auc: float | None
    accuracy: float
    baseline_accuracy: float
    churn_rate: float
    customers: int


def evaluate(scores: np.ndarray, labels: np.ndarray) -> Evaluation:
    """AUC, accuracy at 0.5 and the accuracy of predicting "everyone churns"."""
    from sklearn.metrics import roc_auc_score

    churn_rate = float(labels.mean()) if len(labels) else 0.0
    auc = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None
    accuracy = float(((scores >= 0.5) == (labels == 1)).mean()) if len(labels) else 0.0
    return Evaluation(auc, accuracy, churn_rate, churn_rate, len(labels))


def _enough(data: FeatureSet) -> bool:
    labels = data.labels
    minimum = settings.RFM_CHURN_MIN_CUSTOMERS
    minority = settings.RFM_CHURN_MIN_PER_CLASS
    return len(labels) >= minimum and labels.sum() >= minority and (len(labels) - labels.sum()) >= minority


def _round(value):
    return None if value is None else round(value, 4)


def _pooled_industry_model(*, merchant, horizon_days: int, now: datetime) -> dict | None:
    """A logistic regression trained on the pooled history of other installed shops of the same
    industry (numbers only leave each shop's rows), cached per industry, horizon and day; None
    when the industry has too little history too."""
    from django.core.cache import cache

    from apps.core.models import Merchant

    key = f"rfm:pooled:{merchant.industry}:{horizon_days}:{now.date().isoformat()}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    horizon = timedelta(days=horizon_days)
    peers = list(
        Merchant.objects.filter(industry=merchant.industry, is_installed=True)
        .exclude(pk=merchant.pk)
        .order_by("pk")
        .values_list("pk", flat=True)[: settings.RFM_POOLED_MAX_STORES]
    )
    parts = {"train": [], "validation": []}
    rows = 0
    for peer in peers:
        if rows >= settings.RFM_POOLED_MAX_CUSTOMERS:
            break
        train = features_as_of(
            merchant_id=peer, cutoff=now - 2 * horizon, horizon_days=horizon_days, label_until=now - horizon
        )
        if not _enough(train):
            continue
        validation = features_as_of(merchant_id=peer, cutoff=now - horizon, horizon_days=horizon_days, label_until=now)
        parts["train"].append(train)
        parts["validation"].append(validation)
        rows += len(train.labels)
    result = None
    if parts["train"]:
        train, validation = (_concatenate(parts[name]) for name in ("train", "validation"))
        if _enough(train) and _enough(validation):
            parameters = _fit("logistic_regression", train)
            measured = evaluate(predict(parameters, validation, horizon_days), validation.labels)
            result = {
                "parameters": parameters,
                "card": {"stores": len(parts["train"]), "customers": len(train.labels), "auc": _round(measured.auc)},
            }
    cache.set(key, result or {}, timeout=86400)
    return result


def _concatenate(sets: list[FeatureSet]) -> FeatureSet:
    return FeatureSet(
        customer_ids=[cid for s in sets for cid in s.customer_ids],
        matrix=np.vstack([s.matrix for s in sets]),
        labels=np.concatenate([s.labels for s in sets]),
        recency_days=np.concatenate([s.recency_days for s in sets]),
        orders=np.concatenate([s.orders for s in sets]),
    )


def churn_model_fit(*, merchant, horizon_days: int, algorithm: str, now: datetime) -> tuple[dict, dict]:
    """Train and validate on the merchant's history up to `now`; returns (card fields, params)."""
    horizon = timedelta(days=horizon_days)
    train = features_as_of(
        merchant_id=merchant.pk, cutoff=now - 2 * horizon, horizon_days=horizon_days, label_until=now - horizon
    )
    validation = features_as_of(
        merchant_id=merchant.pk, cutoff=now - horizon, horizon_days=horizon_days, label_until=now
    )
    card = {"cutoff_at": now - horizon, "customers": len(train.labels), "validation_customers": len(validation.labels)}
    if not (_enough(train) and _enough(validation)):
        pooled = _pooled_industry_model(merchant=merchant, horizon_days=horizon_days, now=now)
        parameters = pooled["parameters"] if pooled else RECENCY_RULE
        # Measured on this shop's own validation window, however small: that is what it will score.
        result = evaluate(predict(parameters, validation, horizon_days), validation.labels)
        card.update(
            algorithm=ChurnModel.Algorithm.POOLED_INDUSTRY if pooled else ChurnModel.Algorithm.RECENCY_RULE,
            auc=_round(result.auc),
            accuracy=_round(result.accuracy),
            baseline_accuracy=_round(result.baseline_accuracy),
            churn_rate=_round(result.churn_rate),
            candidates=[{"algorithm": "pooled_industry", **pooled["card"]}] if pooled else [],
            note="too_little_history",
        )
        return card, parameters
    kinds = [algorithm]
    if algorithm == RfmSettings.Algorithm.AUTO:
        # The neural network in the automatic choice is a LoyalNest Collective beta (`rfm_advanced`).
        advanced = beta_feature_enabled(merchant, "rfm_advanced")
        kinds = ["logistic_regression", "mlp"] if advanced else ["logistic_regression"]
    candidates = []
    for kind in kinds:
        parameters = _fit(kind, train)
        result = evaluate(predict(parameters, validation, horizon_days), validation.labels)
        candidates.append((kind, parameters, result))
    kind, _parameters, best = max(candidates, key=lambda c: (c[2].auc or 0, c[0] == "logistic_regression"))
    # Refit the winner on the most recent labelled window for forecasting as of now.
    final = _fit(kind, validation)
    card.update(
        algorithm=kind,
        auc=_round(best.auc),
        accuracy=_round(best.accuracy),
        baseline_accuracy=_round(best.baseline_accuracy),
        churn_rate=_round(best.churn_rate),
        candidates=[{"algorithm": k, "auc": _round(r.auc), "accuracy": _round(r.accuracy)} for k, _p, r in candidates],
        note="",
    )
    return card, final


@transaction.atomic
def churn_model_train(*, merchant, now: datetime | None = None, algorithm: str | None = None) -> ChurnModel:
    """Train the merchant's churn model and store its card (the previous one is kept, inactive)."""
    now = now or timezone.now()
    settings_row = rfm_settings_get(merchant=merchant)
    card, parameters = churn_model_fit(
        merchant=merchant,
        horizon_days=settings_row.horizon_days,
        algorithm=algorithm or settings_row.algorithm,
        now=now,
    )
    ChurnModel.objects.filter(merchant=merchant, is_active=True).update(is_active=False)
    model = ChurnModel.objects.create(
        merchant=merchant, horizon_days=settings_row.horizon_days, trained_at=now, parameters=parameters, **card
    )
    audit_record(
        merchant=merchant,
        action="churn_model_trained",
        target=model,
        metadata={"algorithm": model.algorithm, "auc": model.auc, "accuracy": model.accuracy},
    )
    return model


# --- forecasting -------------------------------------------------------------------------------

_STAGE_SQL = """CASE WHEN last_order_at IS NOT NULL AND last_order_at < %s THEN 'churned'
    WHEN vip_tier_id IS NOT NULL THEN 'vip'
    WHEN orders_count >= 2 THEN 'repeat_buyer'
    ELSE 'new_lead' END"""
STREAM_MIN_CHANGE = 0.05


def _current_rows(merchant, ids: list[str] | None, now: datetime, horizon_days: int) -> dict[str, tuple]:
    """id → (stored churn score, stored stage, the stage the customer row calls for now)."""
    only = f" AND id IN ({', '.join(['%s'] * len(ids))})" if ids is not None else ""
    sql = f"SELECT id, churn_score, lifecycle_stage, {_STAGE_SQL} FROM users WHERE merchant_id = %s{only}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [_ts(now - timedelta(days=horizon_days)), merchant.pk, *(ids or [])])
        return {row[0]: (row[1], row[2], row[3]) for row in cursor.fetchall()}


def _write_scores(merchant, changed: list[tuple[str, float, str]], now: datetime) -> None:
    """Write (id, churn score, stage) for the customers whose values changed."""
    if not changed:
        return
    ids, scores, stages = (list(column) for column in zip(*changed, strict=True))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """UPDATE users SET churn_score = v.score, lifecycle_stage = v.stage, updated_at = %s
                FROM (SELECT unnest(%s::text[]) AS id, unnest(%s::float8[]) AS score, unnest(%s::text[]) AS stage) v
                WHERE users.id = v.id AND users.merchant_id = %s""",
                [_ts(now), ids, scores, stages, merchant.pk],
            )
        else:
            cursor.executemany(
                "UPDATE users SET churn_score = %s, lifecycle_stage = %s, updated_at = %s WHERE id = %s AND merchant_id = %s",
                [(score, stage, _ts(now), cid, merchant.pk) for cid, score, stage in changed],
            )


@transaction.atomic
def churn_forecast(
    *, merchant, customer_ids: list[str] | None = None, actor=None, now: datetime | None = None
) -> list[dict]:
    """Score churn for the given customers (all when None) with the merchant's model (trained
    first if there is none); update `users`, stream `rfm:{customer_id}`, audit, track and queue
    the customer metafield sync. Returns [{customer_id, churn_score, lifecycle_stage}]."""
    now = now or timezone.now()
    model = churn_model_active(merchant=merchant) or churn_model_train(merchant=merchant, now=now)
    horizon = model.horizon_days
    features = features_as_of(
        merchant_id=merchant.pk, cutoff=now, horizon_days=horizon, label_until=None, customer_ids=customer_ids
    )
    scores = predict(model.parameters, features, horizon) if features.customer_ids else np.zeros(0)
    source = model.algorithm
    if remote_enabled() and features.customer_ids:
        try:
            scores, source = remote_scores(features.matrix, features=FEATURES, horizon_days=horizon), "remote"
        except RemoteModelError as exc:
            logger.warning("remote churn model not used, the shop's own model scored instead: %s", exc)
    current = _current_rows(merchant, customer_ids, now, horizon)
    forecasts, changed, moved = [], [], set()
    for cid, raw in zip(features.customer_ids, scores.tolist(), strict=True):
        score = round(raw, 4)
        before, stored_stage, stage = current[cid]
        forecasts.append({"customer_id": cid, "churn_score": score, "lifecycle_stage": stage})
        if before is None or abs(before - score) >= 0.00005 or stored_stage != stage:
            changed.append((cid, score, stage))
        if before is None or abs(before - score) >= STREAM_MIN_CHANGE:
            moved.add(cid)
    _write_scores(merchant, changed, now)
    entries = []
    for forecast in forecasts:
        if customer_ids is not None or forecast["customer_id"] in moved:
            entries.append((f"rfm:{forecast['customer_id']}", {**forecast, "model_id": model.pk, "at": now}))
    stream_append_many_on_commit(merchant_id=merchant.pk, entries=entries)
    audit_record(
        merchant=merchant,
        actor=actor,
        action="churn_forecasted",
        target=model,
        metadata={
            "customers": len(forecasts),
            "algorithm": model.algorithm,
            "scored_by": source,
            "auc": model.auc,
            "accuracy": model.accuracy,
            "baseline_accuracy": model.baseline_accuracy,
        },
    )
    track_on_commit(
        "churn_forecasted",
        merchant=merchant,
        distinct_id=getattr(actor, "pk", None) or merchant.pk,
        properties={"customers": len(forecasts), "algorithm": model.algorithm, "accuracy": model.accuracy},
    )
    merchant_id = merchant.pk
    ids = [f["customer_id"] for f in forecasts]
    transaction.on_commit(lambda: _queue_metafield_sync(merchant_id, ids if customer_ids is not None else None))
    return forecasts


def _queue_metafield_sync(merchant_id: str, customer_ids: list[str] | None) -> None:
    """Customer metafields `churn_score` / `lifecycle_stage` follow the row (apps.shopify)."""
    from apps.shopify.metafields import customer_metafields_sweep_task, customer_metafields_sync_task

    try:
        if customer_ids is None:
            customer_metafields_sweep_task.delay(merchant_id=merchant_id)
        elif customer_ids:
            customer_metafields_sync_task.delay(merchant_id=merchant_id, customer_ids=customer_ids)
    except Exception:  # the sweep finds the drift later anyway
        logger.warning("queueing the metafield sync after a forecast failed", exc_info=True)


# --- churn-risk nudges --------------------------------------------------------------------------

FLOW_TRIGGER_CHURN_RISK = "loyalnest-churn-risk"


def _window(now: datetime, days: int) -> int:
    return math.floor(now.timestamp() / (days * DAY))


@transaction.atomic
def churn_nudges_send(*, merchant, now: datetime | None = None, limit: int | None = None) -> int:
    """Nudge customers whose churn score crossed the merchant's threshold: a notification
    (Klaviyo event) and a Flow trigger, at most one per customer per window. Returns how many."""
    from apps.notifications.services import notify
    from apps.shopify.flow.triggers import flow_trigger_fire

    now = now or timezone.now()
    policy = rfm_settings_get(merchant=merchant)
    if not policy.nudges_enabled:
        return 0
    window_start = now - timedelta(days=policy.nudge_window_days)
    recently = ChurnNudge.objects.filter(merchant=merchant, created_at__gte=window_start).values("customer_id")
    recent_ids = set(recently.values_list("customer_id", flat=True))
    candidates = list(
        Customer.objects.filter(merchant=merchant, churn_score__gte=policy.nudge_threshold, redacted_at__isnull=True)
        .exclude(lifecycle_stage="churned")
        .exclude(pk__in=recently)
        .order_by("-churn_score", "id")[: limit or settings.RFM_NUDGES_MAX_PER_RUN]
    )
    window = _window(now, policy.nudge_window_days)
    chosen = {c.pk: (c, None, "") for c in candidates}
    experiment = RfmExperiment.objects.filter(merchant=merchant, status=RfmExperiment.Status.RUNNING).first()
    if experiment is not None:
        for customer, variant in nudge_experiment_customers(
            merchant=merchant, experiment=experiment, now=now, window=window
        ):
            if customer.pk not in recent_ids:
                chosen[customer.pk] = (customer, experiment, variant)
    chosen = dict(list(chosen.items())[: limit or settings.RFM_NUDGES_MAX_PER_RUN])
    created = ChurnNudge.objects.bulk_create(
        [
            ChurnNudge(
                merchant=merchant,
                customer=customer,
                churn_score=customer.churn_score or 0.0,
                window=window,
                experiment=experiment_row,
                variant=variant,
            )
            for customer, experiment_row, variant in chosen.values()
        ],
        ignore_conflicts=True,
    )
    candidates = [customer for customer, _experiment, _variant in chosen.values()]
    for customer in candidates:
        notify(
            merchant=merchant,
            type="churn_risk_nudge",
            idempotency_key=f"churn_risk_nudge:{customer.pk}:{window}",
            customer=customer,
            context={"points_balance": customer.points_balance},
        )
        flow_trigger_fire(
            merchant=merchant,
            handle=FLOW_TRIGGER_CHURN_RISK,
            payload={
                "customer_id": int(customer.shopify_customer_id)
                if customer.shopify_customer_id.isdigit()
                else customer.shopify_customer_id,
                "Churn score": round(customer.churn_score or 0.0, 4),
                "Lifecycle stage": customer.lifecycle_stage,
            },
        )
    if candidates:
        audit_record(
            merchant=merchant, action="churn_risk_nudged", metadata={"customers": len(created), "window": window}
        )
    return len(candidates)
