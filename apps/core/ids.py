"""Prefixed ULID primary keys (`cus_01J…`): sortable by creation, unguessable enough, readable."""

from django.db import models
from django.utils.deconstruct import deconstructible
from ulid import ULID

ID_MAX_LENGTH = 40


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


@deconstructible
class IdGenerator:
    """Callable default that migrations can serialise."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other):
        return isinstance(other, IdGenerator) and other.prefix == self.prefix


class PrefixedIdField(models.CharField):
    """Text primary key `<prefix>_<ULID>`, generated on instantiation."""

    def __init__(self, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", ID_MAX_LENGTH)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        kwargs["default"] = IdGenerator(prefix)
        super().__init__(**kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        kwargs.pop("default", None)
        for key, value in (("max_length", ID_MAX_LENGTH), ("primary_key", True), ("editable", False)):
            if kwargs.get(key) == value:
                kwargs.pop(key)
        return name, path, args, kwargs
