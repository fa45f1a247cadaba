"""The seeds' remote churn model ("xAI API"): an optional adapter, off by default.

With `RFM_XAI_ENABLED` and an `RFM_XAI_API_KEY`, forecasts ask xAI's OpenAI-compatible chat
completions endpoint to score the customers' feature rows (numbers only: no ids, names or
e-mail addresses leave LoyalNest) and fall back to the shop's own model when the call fails
or answers anything but one probability per row. The local model's card still describes the
model that is measured; the remote scores are not validated by LoyalNest.
"""

import json
import logging

import httpx
import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

PROMPT = (
    "You score customer churn risk for an online store. Each row holds these features, in order: {features}. "
    'The horizon is {horizon} days. Answer with JSON only: {{"scores": [p1, p2, ...]}}, one probability '
    "between 0 and 1 per row, in the same order."
)


class RemoteModelError(Exception):
    """The remote model did not answer usable scores; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def remote_enabled() -> bool:
    return bool(settings.RFM_XAI_ENABLED and settings.RFM_XAI_API_KEY)


def remote_scores(matrix: np.ndarray, *, features: tuple[str, ...], horizon_days: int) -> np.ndarray:
    """Churn probabilities for the rows of `matrix` from the remote model, in batches."""
    scores: list[float] = []
    timeout = httpx.Timeout(settings.RFM_XAI_READ_TIMEOUT_SECONDS, connect=settings.RFM_XAI_CONNECT_TIMEOUT_SECONDS)
    with httpx.Client(base_url=settings.RFM_XAI_BASE_URL, timeout=timeout) as client:
        for start in range(0, len(matrix), settings.RFM_XAI_BATCH_SIZE):
            batch = np.round(matrix[start : start + settings.RFM_XAI_BATCH_SIZE], 4).tolist()
            scores.extend(_batch(client, batch, features, horizon_days))
    return np.array(scores, dtype=float)


def _batch(client: httpx.Client, rows: list, features: tuple[str, ...], horizon_days: int) -> list[float]:
    body = {
        "model": settings.RFM_XAI_MODEL,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": PROMPT.format(features=", ".join(features), horizon=horizon_days)},
            {"role": "user", "content": json.dumps(rows)},
        ],
    }
    try:
        response = client.post(
            "/chat/completions", json=body, headers={"Authorization": f"Bearer {settings.RFM_XAI_API_KEY}"}
        )
    except httpx.HTTPError as exc:
        raise RemoteModelError(f"xAI unreachable: {type(exc).__name__}", retryable=True) from exc
    if response.status_code != 200:
        retryable = response.status_code == 429 or response.status_code >= 500
        raise RemoteModelError(f"xAI answered {response.status_code}", retryable=retryable)
    try:
        content = response.json()["choices"][0]["message"]["content"]
        scores = json.loads(content)["scores"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RemoteModelError("xAI answered something other than scores", retryable=False) from exc
    if (
        not isinstance(scores, list)
        or len(scores) != len(rows)
        or not all(isinstance(s, int | float) and not isinstance(s, bool) and 0 <= s <= 1 for s in scores)
    ):
        raise RemoteModelError("xAI answered the wrong number of scores or values outside 0–1", retryable=False)
    return [float(s) for s in scores]
