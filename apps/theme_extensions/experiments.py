"""Placement A/B tests: deterministic assignment and the two-proportion significance test.

The storefront script assigns in the browser with the same hash (assets/loyalnest-widgets.js),
so a visitor sees a variant without waiting for the app proxy; the server computes the same
assignment for the shopper's data and for tests.
"""

import math
from dataclasses import dataclass

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a(key: str) -> int:
    """32-bit FNV-1a over the key's UTF-16 code units (what JavaScript's charCodeAt sees)."""
    value = FNV_OFFSET
    data = key.encode("utf-16-le")
    for index in range(0, len(data), 2):
        value ^= data[index] | (data[index + 1] << 8)
        value = (value * FNV_PRIME) & 0xFFFFFFFF
    return value


def variant_assign(*, widget: str, visitor: str, variants: list[dict]) -> dict | None:
    """The variant a visitor sees: bucket 0..99 of the hash, walked through the weights."""
    if not variants:
        return None
    bucket = fnv1a(f"{widget}:{visitor}") % 100
    upto = 0
    for variant in variants:
        upto += variant["weight"]
        if bucket < upto:
            return variant
    return variants[-1]


@dataclass(frozen=True)
class Comparison:
    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def two_proportion_test(clicks_a: int, views_a: int, clicks_b: int, views_b: int) -> Comparison | None:
    """Two-sided two-proportion z-test of click rates; None without data on both sides."""
    if views_a <= 0 or views_b <= 0:
        return None
    pooled = (clicks_a + clicks_b) / (views_a + views_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / views_a + 1 / views_b))
    if spread == 0:
        return Comparison(z=0.0, p_value=1.0)
    z = (clicks_b / views_b - clicks_a / views_a) / spread
    return Comparison(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))
