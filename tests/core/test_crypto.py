"""AES-256-GCM encryption at rest with key ids and rotation (D5)."""

import base64
import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core import crypto
from apps.core.crypto import DecryptionError, EncryptedTextField, decrypt, encrypt, key_id_of


def _key():
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def two_keys(settings):
    old, new = _key(), _key()
    settings.ENCRYPTION_KEYS = f"old:{old}"
    yield {"old": old, "new": new}


def test_round_trip_carries_the_key_id(two_keys):
    token = encrypt("shpat_secret_token")

    assert token.startswith("enc1:old:") and "shpat" not in token
    assert decrypt(token) == "shpat_secret_token"
    assert encrypt("same") != encrypt("same")  # a fresh nonce every time


def test_a_flipped_byte_fails_to_decrypt(two_keys):
    token = encrypt("balance: 500")
    prefix, key_id, blob = token.split(":", 2)
    raw = bytearray(base64.b64decode(blob))
    raw[-5] ^= 0x01

    with pytest.raises(DecryptionError):
        decrypt(f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}")


def test_the_key_id_is_authenticated(two_keys, settings):
    token = encrypt("x")
    settings.ENCRYPTION_KEYS = f"old:{two_keys['old']},other:{two_keys['old']}"

    with pytest.raises(DecryptionError):
        decrypt(token.replace(":old:", ":other:"))


def test_rotation_new_key_encrypts_old_key_still_decrypts(two_keys, settings):
    before = encrypt("token-a")
    settings.ENCRYPTION_KEYS = f"new:{two_keys['new']},old:{two_keys['old']}"

    after = encrypt("token-b")

    assert key_id_of(after) == "new"
    assert decrypt(before) == "token-a" and decrypt(after) == "token-b"
    settings.ENCRYPTION_KEYS = f"new:{two_keys['new']}"
    with pytest.raises(DecryptionError):  # once the old key is dropped, re-encrypt first
        decrypt(before)


@pytest.mark.parametrize(
    "value",
    ["", "nocolon", "k1:not-base64!", f"k1:{base64.b64encode(b'short').decode()}", f"bad id:{_key()}"],
)
def test_bad_key_configuration_is_refused(settings, value):
    settings.ENCRYPTION_KEYS = value
    crypto._parse_keys.cache_clear()

    with pytest.raises(ImproperlyConfigured):
        encrypt("x")


def test_the_field_encrypts_on_the_way_in_and_decrypts_on_the_way_out(two_keys):
    field = EncryptedTextField()

    stored = field.get_prep_value("refresh-token-123")

    assert stored.startswith("enc1:") and "refresh" not in stored
    assert field.from_db_value(stored, None, None) == "refresh-token-123"
    assert field.get_prep_value(None) is None and field.from_db_value(None, None, None) is None
