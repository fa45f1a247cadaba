"""GraphQL operations the webhooks feature sends: the reconciliation orders query.

Orders live in `shop.data["orders"]` as GraphQL `Order` nodes (tests add them with
`add_order`); `ReconcileOrders` filters them by `updated_at:>='…'`, sorts by updatedAt and
pages with opaque cursors, like the Admin API.
"""

import re
from datetime import datetime

UPDATED_SINCE = re.compile(r"updated_at:>='?([0-9T:\-Z.+]+)'?")


def _parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def add_order(fake, domain: str, node: dict) -> None:
    """Put (or replace) an order node in the fake shop."""
    with fake.lock:
        orders = fake.shop(domain).data.setdefault("orders", {})
        orders[node["legacyResourceId"]] = node


def register(fake):
    @fake.operation("ReconcileOrders", cost=20)
    def reconcile_orders(fake, shop, variables):
        match = UPDATED_SINCE.search(variables.get("query") or "")
        since = _parsed(match.group(1)) if match else None
        nodes = sorted(
            (n for n in shop.data.get("orders", {}).values() if since is None or _parsed(n["updatedAt"]) >= since),
            key=lambda n: (_parsed(n["updatedAt"]), n["legacyResourceId"]),
        )
        start = int(variables.get("after") or 0)
        page = nodes[start : start + int(variables.get("first") or 50)]
        end = start + len(page)
        return {
            "orders": {
                "pageInfo": {"hasNextPage": end < len(nodes), "endCursor": str(end) if page else None},
                "nodes": page,
            }
        }
