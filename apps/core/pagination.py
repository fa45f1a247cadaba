"""Keyset pagination over ULID ids: stable and index-friendly at 100,000+ rows."""

from rest_framework import serializers

MAX_PAGE_SIZE = 200


class PageInputSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=64)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=50)


def keyset_page(queryset, *, cursor: str | None, limit: int, descending: bool = False):
    """Return (rows, next_cursor); rows are ordered by id."""
    if cursor:
        queryset = queryset.filter(**{"id__lt" if descending else "id__gt": cursor})
    rows = list(queryset.order_by("-id" if descending else "id")[: limit + 1])
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor
