"""OpenAPI generation: name nested serializers after their view (`PointsAdjustApiInput`)."""

from drf_spectacular.openapi import AutoSchema


class LoyalNestAutoSchema(AutoSchema):
    def _get_serializer_name(self, serializer, direction, *args, **kwargs):
        name = super()._get_serializer_name(serializer, direction, *args, **kwargs)
        qualname = type(serializer).__qualname__
        if "." in qualname and not getattr(getattr(serializer, "Meta", None), "ref_name", None):
            owner = qualname.rsplit(".", 1)[0].replace(".", "")
            return f"{owner}{name}"
        return name
