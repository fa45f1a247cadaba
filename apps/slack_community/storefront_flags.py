"""Each web process's copy of merchants' beta flags for storefront requests (merchant id →
frozenset of enabled flags), kept a few seconds (`apps.core.local_cache`). Saving a community
row or switching a flag drops the merchant's copy in that process at once."""

from apps.core.local_cache import LocalCache

storefront_flags = LocalCache()
