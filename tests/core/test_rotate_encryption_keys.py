"""`manage.py rotate_encryption_keys`: every encrypted column moves to the primary key (D5)."""

import base64
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.core.crypto import DecryptionError, key_id_of
from apps.shopify.models import ShopifyInstallation
from tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def _key():
    return base64.b64encode(os.urandom(32)).decode()


def stored(installation):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM shopify_installations WHERE id = %s", [installation.pk])
        return cursor.fetchone()


def store_raw(installation, access_ciphertext):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE shopify_installations SET access_token = %s WHERE id = %s", [access_ciphertext, installation.pk]
        )


def flip_a_byte(ciphertext):
    prefix, key_id, blob = ciphertext.split(":", 2)
    raw = bytearray(base64.b64decode(blob))
    raw[len(raw) // 2] ^= 0x01
    return f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}"


@pytest.fixture
def keys(settings):
    old, new = _key(), _key()
    settings.ENCRYPTION_KEYS = f"old:{old}"
    return {"old": old, "new": new}


def installation_of(merchant):
    return ShopifyInstallation.objects.get(merchant=merchant)


def test_rotate_then_drop_the_old_key_and_tokens_still_decrypt(keys, settings):
    alpha = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    beta = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    tokens = {m.pk: (installation_of(m).access_token, installation_of(m).refresh_token) for m in (alpha, beta)}
    assert all(key_id_of(value) == "old" for value in stored(installation_of(alpha)))

    settings.ENCRYPTION_KEYS = f"new:{keys['new']},old:{keys['old']}"
    dry = StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=dry)
    assert "shopify_installations.access_token: 2 to re-encrypt" in dry.getvalue()
    assert all(key_id_of(value) == "old" for value in stored(installation_of(alpha)))  # dry run wrote nothing

    out = StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "1", stdout=out)
    again = StringIO()
    call_command("rotate_encryption_keys", stdout=again)
    settings.ENCRYPTION_KEYS = f"new:{keys['new']}"  # the old key is gone

    assert "shopify_installations.access_token: 2 re-encrypted" in out.getvalue()
    assert "shopify_installations.refresh_token: 0 re-encrypted, 2 already on key 'new'" in again.getvalue()
    for merchant in (alpha, beta):
        installation = installation_of(merchant)
        assert all(key_id_of(value) == "new" for value in stored(installation))
        assert (installation.access_token, installation.refresh_token) == tokens[merchant.pk]
        assert tokens[merchant.pk][0] not in stored(installation)[0]


def test_a_flipped_byte_in_the_stored_ciphertext_fails(keys, settings):
    alpha = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    beta = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    installation = installation_of(alpha)
    beta_tokens = (installation_of(beta).access_token, installation_of(beta).refresh_token)
    store_raw(installation, flip_a_byte(stored(installation)[0]))

    with pytest.raises(DecryptionError):
        installation_of(alpha)

    settings.ENCRYPTION_KEYS = f"new:{keys['new']},old:{keys['old']}"
    with pytest.raises(CommandError, match=rf"shopify_installations.access_token of row {installation.pk}"):
        call_command("rotate_encryption_keys", stdout=StringIO())
    with pytest.raises(DecryptionError):
        installation_of(alpha)
    assert (installation_of(beta).access_token, installation_of(beta).refresh_token) == beta_tokens
