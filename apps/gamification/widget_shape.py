"""Each web process's copy of what a merchant's storefront widget has to read per shopper
((merchant id, cycle) → (has badges, has teams this cycle)), kept a few seconds
(`apps.core.local_cache`): a shop without badges or teams skips those reads. Saving a badge or
a team drops the merchant's copy in that process at once."""

from apps.core.local_cache import LocalCache

widget_shapes = LocalCache()


def widget_shape_forget(merchant_id: str) -> None:
    widget_shapes.forget_where(lambda key: key[0] == merchant_id)
