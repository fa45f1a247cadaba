"""Templates in the recipient's locale, the fallback chain (recipient → merchant's primary
locale → English, recorded on the row), and right-to-left text.

The project's catalogues translate every type in all 22 locales, so a missing translation cannot
be seen with them: here a catalogue made in the test (a real compiled .mo) replaces them on
LOCALE_PATHS, with Arabic only — every other locale has no translation.
"""

import re

import polib
import pytest

from apps.notifications.catalogue import TYPES
from apps.notifications.models import State
from apps.notifications.rendering import FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE, placeholders, render
from apps.notifications.services import notify
from tests.notifications.support import connect_providers, deliver_due, reload, subscribed_customer

pytestmark = pytest.mark.django_db

ARABIC = {
    TYPES["badge_earned"].subject: "لقد حصلت على شارة %(badge)s",
    TYPES["badge_earned"].body: "تهانينا! لقد حصلت على شارة %(badge)s في %(shop_name)s.",
}


@pytest.fixture
def arabic_catalogue(settings, tmp_path):
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "ar"}
    for msgid, msgstr in ARABIC.items():
        catalogue.append(polib.POEntry(msgid=msgid, msgstr=msgstr))
    directory = tmp_path / "ar" / "LC_MESSAGES"
    directory.mkdir(parents=True)
    catalogue.save_as_mofile(str(directory / "django.mo"))
    settings.LOCALE_PATHS = [tmp_path]  # instead of the project's catalogues; clears Django's caches
    return tmp_path


def test_every_type_has_english_text_with_only_named_placeholders():
    for notification_type in TYPES.values():
        assert notification_type.subject and notification_type.body
        text = notification_type.subject + notification_type.body
        assert text.count("%") == len(re.findall(r"%\(\w+\)s", text)), notification_type.key
        rendered = render(
            type_key=notification_type.key,
            context=dict.fromkeys(placeholders(notification_type), "X"),
            locale="en",
            merchant_locale="en",
        )
        assert "%(" not in rendered.subject + rendered.text
        assert rendered.fallback == ""


def test_arabic_renders_right_to_left_with_latin_values_isolated(arabic_catalogue):
    rendered = render(
        type_key="badge_earned",
        context={"badge": {"en": "Seasonal Star"}, "shop_name": "Alpha Pets"},
        locale="ar",
        merchant_locale="en",
    )

    assert (rendered.locale, rendered.direction, rendered.fallback) == ("ar", "rtl", "")
    assert rendered.subject == f"لقد حصلت على شارة {FIRST_STRONG_ISOLATE}Seasonal Star{POP_DIRECTIONAL_ISOLATE}"
    assert f"{FIRST_STRONG_ISOLATE}Alpha Pets{POP_DIRECTIONAL_ISOLATE}" in rendered.text
    assert '<html lang="ar" dir="rtl">' in rendered.html
    assert "text-align:right" in rendered.html
    assert "<bdi>Alpha Pets</bdi>" in rendered.html


def test_values_are_escaped_in_the_html(arabic_catalogue):
    rendered = render(
        type_key="badge_earned",
        context={"badge": "<script>alert(1)</script>", "shop_name": "A & B"},
        locale="en",
        merchant_locale="en",
    )

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html and "A &amp; B" in rendered.html
    assert '<html lang="en" dir="ltr">' in rendered.html


@pytest.mark.parametrize(
    ("customer_locale", "merchant_locale", "rendered_locale", "fallback"),
    [
        ("ar", "en", "ar", ""),
        ("ja", "ar", "ar", "ja→ar (no translation)"),
        ("ja", "ko", "en", "ja→en (no translation)"),
        ("en", "ar", "en", ""),
    ],
)
def test_a_missing_translation_falls_back_to_the_merchants_locale_then_english_and_is_recorded(
    arabic_catalogue, merchant, fake_providers, customer_locale, merchant_locale, rendered_locale, fallback
):
    merchant.primary_locale = merchant_locale
    merchant.save(update_fields=["primary_locale"])
    connect_providers(merchant)
    customer = subscribed_customer(merchant, locale=customer_locale)
    [row] = notify(
        merchant=merchant,
        type="badge_earned",
        customer=customer,
        context={"badge": {"en": "Seasonal Star", "ar": "نجمة الموسم"}},
        idempotency_key="b",
        channels=("email",),
    )

    deliver_due()

    sent = reload(row)
    assert (sent.state, sent.locale, sent.rendered_locale, sent.locale_fallback) == (
        State.SENT,
        customer_locale,
        rendered_locale,
        fallback,
    )
    properties = fake_providers.klaviyo.requests[0].json()["data"]["attributes"]["properties"]
    assert properties["locale"] == rendered_locale
    assert properties["direction"] == ("rtl" if rendered_locale == "ar" else "ltr")
    # Merchant-entered badge names follow the rendered locale.
    assert ("نجمة الموسم" in properties["subject"]) == (rendered_locale == "ar")


@pytest.mark.parametrize("locale", ["de", "ja", "he", "fa", "zh-CN"])
def test_the_project_catalogues_render_every_type_without_a_fallback(locale):
    for notification_type in TYPES.values():
        rendered = render(
            type_key=notification_type.key,
            context=dict.fromkeys(placeholders(notification_type), "7"),
            locale=locale,
            merchant_locale="en",
        )
        assert rendered.fallback == "", (locale, notification_type.key)
        assert rendered.subject != notification_type.subject, (locale, notification_type.key)
        assert rendered.direction == ("rtl" if locale in ("he", "fa") else "ltr")
