"""Encryption at rest: AES-256-GCM with a key id in every ciphertext, and key rotation (D5).

`ENCRYPTION_KEYS` is "keyid:base64key[,keyid:base64key…]"; the first key encrypts, every
listed key decrypts. Rotation: put a new key first, run `manage.py rotate_encryption_keys`,
then drop the old key. Written on `cryptography`'s AESGCM because django-cryptography does
not import on Django 5 and Fernet is AES-128.
"""

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext was altered, or its key is no longer configured."""


@lru_cache(maxsize=8)
def _parse_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id.isalnum():
            raise ImproperlyConfigured("ENCRYPTION_KEYS entries look like 'keyid:base64key'.")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS key {key_id!r} is not base64.") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS key {key_id!r} must be 32 bytes (AES-256).")
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty.")
    return tuple(keys)


def keys() -> tuple[tuple[str, bytes], ...]:
    return _parse_keys(settings.ENCRYPTION_KEYS)


def primary_key_id() -> str:
    return keys()[0][0]


def encrypt(plaintext: str, *, associated_data: bytes = b"") -> str:
    """Encrypt with the primary key: 'enc1:<keyid>:<base64(nonce + ciphertext + tag)>'."""
    key_id, key = keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), associated_data + key_id.encode())
    return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(token: str) -> str:
    prefix, key_id, _ = token.split(":", 2)
    if prefix != PREFIX:
        raise DecryptionError("not a LoyalNest ciphertext")
    return key_id


def decrypt(token: str, *, associated_data: bytes = b"") -> str:
    try:
        key_id = key_id_of(token)
        blob = base64.b64decode(token.split(":", 2)[2], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DecryptionError("malformed ciphertext") from exc
    key = dict(keys()).get(key_id)
    if key is None:
        raise DecryptionError(f"key {key_id!r} is not configured")
    try:
        plaintext = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data + key_id.encode())
    except InvalidTag as exc:
        raise DecryptionError("ciphertext failed authentication") from exc
    return plaintext.decode()


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; reads give the plaintext back. Not searchable."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_internal_type(self):
        return "TextField"


def encrypted_fields():
    """(model, field) for every EncryptedTextField in the project, for rotation."""
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
