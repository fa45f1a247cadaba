"""Metafields and Flow in the fake Shopify: `metafieldsSet` with compareDigest, `metafieldsDelete`,
customers' metafields read through `nodes(ids:)`, and `flowTriggerReceive`.

Behaviour follows the Admin API reference:
- `metafieldsSet` takes at most 25 metafields (more → a `LESS_THAN_OR_EQUAL_TO` userError) and is
  atomic: any userError and nothing is written;
- `compareDigest` (since 2024-07): a string must equal the digest of the stored value, `null`
  means "must not exist yet", absent means "no check"; a mismatch is `STALE_OBJECT`;
- values are checked against their type (`number_integer`, `number_decimal`, `json`,
  `single_line_text_field`); a blank value is `BLANK`.

- app-owned namespaces: `$app` and `$app:{name}` (and an omitted namespace) resolve to
  `app--{app id}` / `app--{app id}--{name}` — stored, echoed in answers and read back in that
  form, as Shopify does (https://shopify.dev/docs/apps/build/custom-data/ownership);
- `metafieldsDelete` answers `null` for an identifier that does not exist.

State lives in `shop.data["metafields"]` keyed by (owner gid, resolved namespace, key) and
`shop.data["flow_triggers"]` (a list of (handle, payload)). `metafield_tamper` changes a value
behind the app's back, the way a merchant or another app would.
"""

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

MAX_METAFIELDS_PER_SET = 25
MAX_FLOW_PAYLOAD_BYTES = 50_000
METAFIELD_ALIAS = re.compile(r'(\w+)\s*:\s*metafield\(\s*namespace:\s*"([\w$:-]+)"\s*,\s*key:\s*"([\w-]+)"\s*\)')
CUSTOMER_GID = re.compile(r"^gid://shopify/Customer/\d+$")
FLOW_HANDLE = re.compile(r"^[a-z0-9-]{1,30}$")


APP_ID = 7_265_301  # the fake app's id in its resolved namespaces: app--7265301--loyalnest
APP_NAMESPACE = "$app:loyalnest"  # what LoyalNest sends (apps.shopify.metafields.NAMESPACE)


def resolve_namespace(fake, namespace: str | None) -> str:
    """`$app` → `app--{id}`, `$app:x` → `app--{id}--x`, omitted → `app--{id}`; others unchanged."""
    app = f"app--{getattr(fake, 'app_id', APP_ID)}"
    if namespace is None or namespace == "$app":
        return app
    if namespace.startswith("$app:"):
        return f"{app}--{namespace[len('$app:') :]}"
    return namespace


def _store(shop) -> dict:
    return shop.data.setdefault("metafields", {})


def _digest(owner: str, namespace: str, key: str, value: str, version: int) -> str:
    return hashlib.sha256(f"{owner}|{namespace}|{key}|{value}|{version}".encode()).hexdigest()


def _write(shop, owner: str, namespace: str, key: str, value: str, type_: str) -> dict:
    store = _store(shop)
    previous = store.get((owner, namespace, key))
    version = (previous["version"] + 1) if previous else 1
    store[(owner, namespace, key)] = {
        "value": value,
        "type": type_,
        "version": version,
        "digest": _digest(owner, namespace, key, value, version),
    }
    return store[(owner, namespace, key)]


def metafield_get(fake, domain: str, owner: str, key: str, namespace: str = APP_NAMESPACE) -> dict | None:
    """The stored metafield (value, type, digest) of an owner, or None (namespace: LoyalNest's by default)."""
    return _store(fake.shop(domain)).get((owner, resolve_namespace(fake, namespace), key))


def metafield_tamper(fake, domain: str, owner: str, key: str, value: str, namespace: str = APP_NAMESPACE, type_=None):
    """Change a metafield behind the app's back: new value, new digest. In LoyalNest's app-owned
    namespace only Shopify itself could (a test of drift); in a public namespace (the legacy
    `loyalnest`) any app, staff member or translation can."""
    with fake.lock:
        current = metafield_get(fake, domain, owner, key, namespace)
        type_ = type_ or (current["type"] if current else "json")
        return _write(fake.shop(domain), owner, resolve_namespace(fake, namespace), key, value, type_)


def metafields_of(fake, domain: str, namespace: str) -> dict:
    """{(owner, key): stored} of one namespace of a shop (e.g. what is left in the legacy one)."""
    resolved = resolve_namespace(fake, namespace)
    return {(o, k): v for (o, ns, k), v in _store(fake.shop(domain)).items() if ns == resolved}


def _type_error(type_: str, value) -> tuple[str, str] | None:
    if not isinstance(value, str) or not value.strip():
        return "BLANK", "Value can't be blank."
    if type_ == "number_integer":
        if not re.fullmatch(r"-?\d+", value):
            return "INVALID_VALUE", "Value must be an integer."
    elif type_ == "number_decimal":
        try:
            Decimal(value)
        except InvalidOperation:
            return "INVALID_VALUE", "Value must be a decimal."
    elif type_ == "json":
        try:
            json.loads(value)
        except ValueError:
            return "INVALID_VALUE", "Value is invalid JSON."
    elif type_ == "single_line_text_field":
        if "\n" in value or len(value) > 255:
            return "INVALID_VALUE", "Value must be a single line of at most 255 characters."
    else:
        return "INVALID_TYPE", "Type is invalid."
    return None


def _owner_error(shop, owner) -> bool:
    return not (owner == shop.gid or (isinstance(owner, str) and CUSTOMER_GID.match(owner)))


def metafields_set(fake, shop, variables):
    inputs = variables.get("metafields") or []
    if len(inputs) > MAX_METAFIELDS_PER_SET:
        error = {
            "field": ["metafields"],
            "message": f"Exceeded the maximum metafields input limit of {MAX_METAFIELDS_PER_SET}.",
            "code": "LESS_THAN_OR_EQUAL_TO",
            "elementIndex": None,
        }
        return {"metafieldsSet": {"metafields": [], "userErrors": [error]}}
    store = _store(shop)
    errors = []
    for index, item in enumerate(inputs):
        owner, namespace, key = item.get("ownerId"), resolve_namespace(fake, item.get("namespace")), item.get("key")
        if _owner_error(shop, owner):
            errors.append(
                {"field": ["metafields", str(index), "ownerId"], "message": "Owner does not exist.", "code": "INVALID"}
            )
            continue
        problem = _type_error(item.get("type", ""), item.get("value"))
        if problem:
            errors.append({"field": ["metafields", str(index), "value"], "message": problem[1], "code": problem[0]})
            continue
        if "compareDigest" in item:
            current = store.get((owner, namespace, key))
            expected = item["compareDigest"]
            if (expected is None and current is not None) or (
                expected is not None and (current is None or current["digest"] != expected)
            ):
                errors.append(
                    {
                        "field": ["metafields", str(index)],
                        "message": "The metafield has been modified since it was loaded.",
                        "code": "STALE_OBJECT",
                    }
                )
    if errors:
        for error in errors:
            error["elementIndex"] = int(error["field"][1])
        return {"metafieldsSet": {"metafields": [], "userErrors": errors}}
    written = []
    for item in inputs:
        owner, namespace, key = item["ownerId"], resolve_namespace(fake, item.get("namespace")), item["key"]
        stored = _write(shop, owner, namespace, key, item["value"], item["type"])
        written.append(
            {
                "key": key,
                "namespace": namespace,
                "value": stored["value"],
                "compareDigest": stored["digest"],
                "owner": {"id": owner},
            }
        )
    return {"metafieldsSet": {"metafields": written, "userErrors": []}}


def metafields_delete(fake, shop, variables):
    store = _store(shop)
    deleted = []
    for item in variables.get("metafields") or []:
        identifier = (item.get("ownerId"), resolve_namespace(fake, item.get("namespace")), item.get("key"))
        if store.pop(identifier, None) is not None:
            deleted.append({"ownerId": identifier[0], "namespace": identifier[1], "key": identifier[2]})
        else:
            deleted.append(None)
    return {"metafieldsDelete": {"deletedMetafields": deleted, "userErrors": []}}


def customer_metafields_read(fake, shop, variables, query: str):
    aliases = METAFIELD_ALIAS.findall(query)
    store = _store(shop)
    nodes = []
    for gid in variables.get("ids") or []:
        if not CUSTOMER_GID.match(str(gid)):
            nodes.append(None)
            continue
        node = {"id": gid}
        for alias, namespace, key in aliases:
            stored = store.get((gid, resolve_namespace(fake, namespace), key))
            node[alias] = {"value": stored["value"], "compareDigest": stored["digest"]} if stored else None
        nodes.append(node)
    return {"nodes": nodes}


def shop_metafields_read(fake, shop, variables):
    """`shop { metafields(namespace:, first: 250) { nodes { key } } }`."""
    namespace = resolve_namespace(fake, variables.get("namespace"))
    keys = sorted(k for (owner, ns, k) in _store(shop) if owner == shop.gid and ns == namespace)
    return {"shop": {"metafields": {"nodes": [{"key": key} for key in keys[:250]]}}}


def flow_trigger_receive(fake, shop, variables):
    handle, payload = variables.get("handle"), variables.get("payload")
    if not isinstance(handle, str) or not FLOW_HANDLE.match(handle):
        return {"flowTriggerReceive": {"userErrors": [{"field": ["handle"], "message": "Invalid handle."}]}}
    if fake.flow_trigger_handles is not None and handle not in fake.flow_trigger_handles:
        return {
            "flowTriggerReceive": {
                "userErrors": [{"field": ["handle"], "message": f"Trigger with handle {handle} not found."}]
            }
        }
    if not isinstance(payload, dict) or len(json.dumps(payload).encode()) > MAX_FLOW_PAYLOAD_BYTES:
        return {"flowTriggerReceive": {"userErrors": [{"field": ["payload"], "message": "Invalid payload."}]}}
    shop.data.setdefault("flow_triggers", []).append((handle, payload))
    return {"flowTriggerReceive": {"userErrors": []}}


def register(fake):
    """Add the operations of apps.shopify.metafields and apps.shopify.flow to a FakeShopify."""
    fake.flow_trigger_handles = None  # a set of deployed trigger handles, or None for any valid one
    fake.operation("CustomerMetafieldsSet", cost=10)(metafields_set)
    fake.operation("ShopMetafieldsSet", cost=10)(metafields_set)
    fake.operation("CustomerMetafieldsDelete", cost=10)(metafields_delete)
    fake.operation("LegacyMetafieldsDelete", cost=10)(metafields_delete)
    fake.operation("LegacyShopMetafields", cost=3)(shop_metafields_read)
    fake.operation("FlowTriggerReceive", cost=10)(flow_trigger_receive)

    # The handler signature carries no query text; the aliases of the read are fixed per app build,
    # so the read handler is bound to the query the app sends (see apps.shopify.metafields).
    from apps.shopify.metafields import CUSTOMER_METAFIELDS_READ

    fake.operation("CustomerMetafieldsRead", cost=40)(
        lambda fake, shop, variables: customer_metafields_read(fake, shop, variables, CUSTOMER_METAFIELDS_READ)
    )
