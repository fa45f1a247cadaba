"""The app-proxy signature check against shopify_app's verifier, its reference (RELIABILITY A7).

`proxy_signature_verify` is hand-written to the rules of `shopify_app.verify_app_proxy_req`
without its per-request overhead; the library is the oracle. Hypothesis builds query strings
(unicode, `%`-escapes, `+`, blank and bare fields, repeated keys, zero to two `shop`s, valid,
stale and garbage timestamps, signatures by the current, the previous or another secret,
missing, repeated, garbage or tampered after signing) and both must agree on ok, the failure
code and `logged_in_customer_id`. The library is given the URL `verify_proxy_request` used to
build for it (`get_full_path()` passes the query through `iri_to_uri`) and, unless the query
holds a tab or a line break (urlsplit deletes those from a URL), the query exactly as generated.

The library reads the time from its module's `time`; that (third-party) clock is frozen for each
call so the 90 s boundary is tested on both sides. Hypothesis is derandomized, with no example
database, as in tests/security/test_api_fuzzing.py.
"""

import hashlib
import hmac
import importlib
from unittest import mock
from urllib.parse import parse_qs, parse_qsl, quote, quote_plus

import pytest
from django.utils.encoding import iri_to_uri
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shopify_app import verify_app_proxy_req

from apps.shopify.proxy_signature import proxy_signature_verify
from tests.shopify_helpers import proxy_signed_query

shopify_app_proxy = importlib.import_module("shopify_app.verify.app_proxy")

SECRET = "shpss_current_0123456789abcdef"
PREVIOUS = "shpss_previous_fedcba9876543210"
WRONG = "shpss_another_apps_secret_0000"
NOW = 1_760_000_000  # whole seconds; the clock adds a fraction, which both sides truncate
SHOP = "alpha-pets.myshopify.com"


class FrozenClock:
    """Stands in for the `time` module inside shopify_app's verifier."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


def library_verdict(url_query: str, *, secret: str, previous: str | None, now: float):
    request = {"method": "GET", "headers": {}, "url": "https://app-proxy.invalid/proxy/x?" + url_query, "body": ""}
    config = {"client_id": "x", "client_secret": secret, "old_client_secret": previous}
    with mock.patch.object(shopify_app_proxy, "time", FrozenClock(now)):
        result = verify_app_proxy_req(request, config)
    return result.ok, None if result.ok else result.log.code, result.logged_in_customer_id


def our_verdict(query: str, *, secret: str, previous: str | None, now: float):
    check = proxy_signature_verify(query, secret=secret, previous_secret=previous, now=now)
    return check.ok, check.code, check.logged_in_customer_id


def library_signature(query: str, secret: str) -> str:
    """Sign as the library checks: its own parse and `_generate_param_string` (not our code)."""
    params = parse_qs(query, keep_blank_values=True)
    params.pop("signature", None)
    message = shopify_app_proxy._generate_param_string(params)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- the differential test -------------------------------------------------------------------

SNIPPETS = ["%", "%2", "%zz", "%41", "%2B", "%C3%A9", "%c3%a9", "%E2%82", "%FF", "%00", "%26", "%3D", "%23"]
SNIPPETS += ["+", " ", ",", "=", "&", "é", "日本", "🙂", "\x00", "\t", "\n", "ß", "İ", "/apps/loyalnest"]
fragments = st.lists(
    st.one_of(st.text(st.characters(codec="utf-8"), max_size=6), st.sampled_from(SNIPPETS)), max_size=4
).map("".join)
keys = st.one_of(
    st.sampled_from(["shop", "timestamp", "signature", "logged_in_customer_id", "path_prefix", "locale"]),
    st.sampled_from(["Shop", "shop ", "sh%6Fp", "shop%00", "a", "z", "é", "", "signature%20", "timestamp[]"]),
    fragments,
)


def encode(text: str, how: str, *, key: bool) -> str:
    """How a field reaches us: as typed (the parser decodes `%` and `+` in it), or escaped."""
    if how == "raw" and not set(text) & ({"&", "#", "="} if key else {"&", "#"}):
        return text  # a raw `#` would start a URL fragment for the library: see the explicit test
    if how == "percent":
        return quote(text, safe="")
    if how == "every_byte":
        return "".join(f"%{byte:02x}" for byte in text.encode())
    return quote_plus(text)


@st.composite
def timestamps(draw) -> str:
    within, boundary = st.integers(-90, 90), st.sampled_from([-3600, -91, -90, 90, 91, 3600])
    offset = draw(st.one_of(within, within, boundary))
    value = NOW + offset
    written = draw(st.sampled_from(["plain"] * 9 + ["spaced", "signed", "underscored", "arabic", "decimal", "garbage"]))
    if written == "spaced":
        return f" {value}\n"
    if written == "signed":
        return f"+{value}"
    if written == "underscored":
        return f"{value:_}"
    if written == "arabic":  # int() reads any Unicode decimal digits
        return str(value).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    if written == "decimal":
        return f"{value}.0"
    if written == "garbage":
        return draw(fragments)
    return str(value)


@st.composite
def proxy_queries(draw) -> str:
    fields = [
        ("shop", draw(st.one_of(st.just(SHOP), fragments))) for _ in range(draw(st.sampled_from([1] * 8 + [0, 2])))
    ]
    for _ in range(draw(st.sampled_from([1, 1, 0, 2]))):
        fields.append(("logged_in_customer_id", draw(st.one_of(st.sampled_from(["", "6001"]), fragments))))
    if draw(st.booleans()):
        fields.append(("path_prefix", "/apps/loyalnest"))
    for _ in range(draw(st.sampled_from([1] * 8 + [0, 2]))):
        fields.append(("timestamp", draw(timestamps())))
    fields += draw(st.lists(st.tuples(keys, fragments), max_size=3))
    fields = draw(st.permutations(fields))

    encoding = st.sampled_from(["raw", "plus", "percent", "every_byte"])
    parts = []
    for key, value in fields:
        key_part = encode(key, draw(encoding), key=True)
        if value == "" and draw(st.booleans()):
            parts.append(key_part)  # a bare field: a blank value
        else:
            parts.append(f"{key_part}={encode(value, draw(encoding), key=False)}")
    if draw(st.integers(0, 9)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), "")  # `&&`
    unsigned = "&".join(parts)

    signed_with = draw(st.sampled_from(["current"] * 4 + ["previous", "wrong", "empty", "none", "twice", "garbage"]))
    event(f"signed with {signed_with}")
    signature = library_signature(
        unsigned, {"current": SECRET, "previous": PREVIOUS, "empty": ""}.get(signed_with, WRONG)
    )
    signatures = {
        "none": [],
        "twice": [signature, signature],
        "garbage": [draw(st.one_of(fragments, st.just(signature.upper()), st.just(signature[:-1])))],
    }.get(signed_with, [signature])
    for value in signatures:
        parts.insert(draw(st.integers(0, len(parts))), f"signature={encode(value, draw(encoding), key=False)}")
    if signed_with in ("current", "previous") and draw(st.integers(0, 4)) == 0:
        event("tampered after signing")
        index = draw(st.integers(0, len(parts) - 1))
        tamper = draw(st.sampled_from(["0", "x", "%41", "+", "&shop=" + SHOP, "&extra="]))
        parts[index] += tamper if "=" in parts[index] or tamper.startswith("&") else "=" + tamper
    return "&".join(parts)


@settings(
    max_examples=800,
    derandomize=True,
    database=None,
    deadline=None,
    # The suite's autouse fixtures (Redis flush, caches) are irrelevant to this pure function.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=proxy_queries(),
    previous=st.sampled_from([None, "", PREVIOUS]),
    fraction=st.sampled_from([0.0, 0.5, 0.999]),
)
def test_our_verifier_agrees_with_shopify_apps(query, previous, fraction):
    now = NOW + fraction

    ours = our_verdict(query, secret=SECRET, previous=previous, now=now)

    event(f"ok={ours[0]} code={ours[1]}")
    url_queries = [iri_to_uri(query)]  # what verify_proxy_request handed the library
    if not set(query) & {"\t", "\r", "\n"}:  # urlsplit deletes those from a URL
        url_queries.append(query)
    for url_query in url_queries:
        try:
            expected = library_verdict(url_query, secret=SECRET, previous=previous, now=now)
        except TypeError:
            # The library's hmac.compare_digest refuses a non-ASCII signature by raising.
            signatures = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == "signature"]
            assert len(signatures) == 1 and not signatures[0].isascii()
            assert ours == (False, "invalid_signature", None)
            continue
        assert ours == expected, url_query


# --- examples --------------------------------------------------------------------------------


def signed(customer_id="6001", *, secret=SECRET, timestamp=NOW, **params) -> str:
    return proxy_signed_query(SHOP, customer_id, secret=secret, timestamp=timestamp, **params)


def both(query, *, previous=None, now=NOW + 0.5):
    ours = our_verdict(query, secret=SECRET, previous=previous, now=now)
    assert ours == library_verdict(query, secret=SECRET, previous=previous, now=now)
    return ours


def test_a_valid_request_is_accepted_with_its_customer():
    assert both(signed("6001", locale="fr")) == (True, None, "6001")
    assert both(signed(None)) == (True, None, "")  # anonymous: blank, as signed
    assert both(signed("6001", extra=["1", "2"])) == (True, None, "6001")


def test_a_value_changed_after_signing_is_refused():
    query = signed("6002")

    assert both(query.replace("logged_in_customer_id=6002", "logged_in_customer_id=6001")) == (
        False,
        "invalid_signature",
        None,
    )
    assert both(query + "&extra=1") == (False, "invalid_signature", None)
    assert both(query + "&shop=" + SHOP) == (False, "multiple_shop_parameters", None)


def test_timestamps_more_than_90_seconds_off_are_refused():
    for offset in (-90, 90):
        assert both(signed(timestamp=NOW + offset))[0] is True
    for offset in (-91, 91, -600):
        assert both(signed(timestamp=NOW + offset)) == (False, "timestamp_too_old", None)
    assert both(signed(timestamp="soon")) == (False, "invalid_timestamp", None)
    # The clock is truncated to whole seconds before comparing, on both sides.
    assert both(signed(timestamp=NOW - 90), now=NOW + 0.999)[0] is True


def test_the_previous_secret_is_accepted_only_during_a_rotation():
    query = signed(secret=PREVIOUS)

    assert both(query, previous=PREVIOUS) == (True, None, "6001")
    assert both(query) == (False, "invalid_signature", None)
    assert both(query, previous="") == (False, "invalid_signature", None)
    assert both(signed(secret=WRONG), previous=PREVIOUS) == (False, "invalid_signature", None)


def test_a_missing_or_repeated_signature_is_missing():
    query = signed()
    without = "&".join(part for part in query.split("&") if not part.startswith("signature="))
    signature = dict(parse_qsl(query))["signature"]

    assert both(without) == (False, "missing_signature", None)
    assert both(f"{query}&signature={signature}") == (False, "missing_signature", None)
    assert both("") == (False, "missing_timestamp", None)


def test_where_we_differ_from_the_library_we_refuse():
    query = signed()
    # A non-ASCII signature: the library raises TypeError (a 500); we refuse it.
    forged = query.replace("signature=", "signature=%C3%A9")
    with pytest.raises(TypeError):
        library_verdict(forged, secret=SECRET, previous=None, now=NOW)
    assert our_verdict(forged, secret=SECRET, previous=None, now=NOW) == (False, "invalid_signature", None)
    # A raw `#` ends the URL for the library, which never sees a second shop after it; the view
    # reads the whole query string (`request.query_params`), and so do we.
    smuggled = f"{query}#&shop=beta-gadgets.myshopify.com"
    assert library_verdict(smuggled, secret=SECRET, previous=None, now=NOW)[0] is True
    assert our_verdict(smuggled, secret=SECRET, previous=None, now=NOW) == (False, "multiple_shop_parameters", None)
