"""JSON through orjson for the storefront's endpoints (drf-orjson-renderer).

Shoppers' widgets call the app proxy on every page view; DRF's `JSONRenderer` (the standard
library's `json` with DRF's encoder) took ~43 µs to write the widget endpoint's 2.6 KB answer,
orjson ~3 µs. The output is the same JSON: types orjson does not know natively (lazy
translations, Decimal, UUID, querysets...) go through DRF's own encoder, so they come out as
DRF writes them, and anything unknown raises as it does (the library's default would write
null); UTC datetimes end in `Z` as DRF writes them. Unlike DRF it leaves U+2028/U+2029 unescaped,
which JSON allows and `fetch().json()` reads.
"""

import orjson
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class StorefrontJSONRenderer(ORJSONRenderer):
    # Non-string keys (a list field's errors are keyed by index) written as strings, as json does.
    options = ORJSONRenderer.options | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    default = staticmethod(JSONEncoder().default)
