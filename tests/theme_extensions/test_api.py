"""PUT /v1/api/theme-extensions: validation, storage, metafield sync, cache, audit (seeds section 5)."""

import json

import pytest

from apps.core.models import AuditLog, ProgramSettings
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from tests.shopify_helpers import auth_header

CONFIG = {
    "widget": "rewards_panel",
    "placement": "cart_page",
    "texts": {"title": {"en": "Your rewards", "ar": "مكافآتك"}},
    "colors": {"accent": "#1f5199", "background": "#ffffff", "text": "#1a1a1a"},
    "variants": [
        {"id": "cart", "placement": "cart_page", "weight": 50},
        {"id": "home", "placement": "home_page", "weight": 50},
    ],
}


def put(api, staff, body):
    return api.put("/v1/api/theme-extensions", data=body, format="json", **auth_header(staff))


def foreign_state(foreign):
    return ProgramSettings.objects.get(merchant=foreign["merchant"]).theme_extension_config


def test_configure_stores_audits_caches_and_previews(api, owner, program, foreign, django_capture_on_commit_callbacks):
    before = foreign_state(foreign)
    with django_capture_on_commit_callbacks(execute=True):
        response = put(api, owner, {"merchant_id": owner.merchant.pk, "theme_extension_config": CONFIG, "locale": "ar"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    preview = body["preview"]
    assert preview["widget"] == "rewards_panel" and preview["locale"] == "ar" and preview["dir"] == "rtl"
    assert 'dir="rtl"' in preview["html"] and "مكافآتك" in preview["html"]
    assert 'aria-label="عرض رصيد النقاط"' in preview["html"]
    assert "Beta" not in preview["html"]

    stored = ProgramSettings.objects.get(merchant=owner.merchant).theme_extension_config
    assert stored["widgets"]["rewards_panel"]["placement"] == "cart_page"
    assert [v["id"] for v in stored["widgets"]["rewards_panel"]["variants"]] == ["cart", "home"]
    assert stored["program"]["points_per_currency_unit"] == 1.0

    audit = AuditLog.objects.get(merchant=owner.merchant, action="theme_extension_configured")
    assert audit.actor == owner and audit.metadata["widget"] == "rewards_panel"
    assert audit.metadata["placement"] == "cart_page"

    key = stream_name(owner.merchant.pk, f"theme:{owner.merchant.pk}:ar")
    entry = get_redis().xrevrange(key, count=1)
    assert json.loads(entry[0][1]["data"])["theme_extension_config"]["placement"] == "cart_page"

    assert foreign_state(foreign) == before
    assert not AuditLog.objects.filter(merchant=foreign["merchant"], action="theme_extension_configured").exists()


def test_english_preview_uses_the_seeds_aria_label(api, owner, program, other_merchant):
    response = put(
        api, owner, {"theme_extension_config": {"widget": "sticky_bar", "placement": "all_pages"}, "locale": "en"}
    )

    html = response.json()["preview"]["html"]
    assert 'aria-label="View points balance"' in html and 'dir="ltr"' in html


def test_configuring_a_second_widget_keeps_the_first(api, owner, program, other_merchant):
    put(api, owner, {"theme_extension_config": CONFIG, "locale": "en"})
    put(
        api,
        owner,
        {"theme_extension_config": {"widget": "points_display", "placement": "product_page"}, "locale": "en"},
    )

    widgets = ProgramSettings.objects.get(merchant=owner.merchant).theme_extension_config["widgets"]
    assert set(widgets) == {"rewards_panel", "points_display"}


@pytest.mark.django_db(transaction=True)
def test_configure_queues_the_shop_metafield_write(
    api, owner, program, other_merchant, fake_shopify, celery_worker_process
):
    from tests.conftest import wait_for
    from tests.shopify_helpers import shopify_connect

    shopify_connect(fake_shopify, owner.merchant)
    response = put(api, owner, {"theme_extension_config": CONFIG, "locale": "en"})
    assert response.status_code == 200

    from tests.fakes.shopify_ops_metafields import metafield_get

    shop = owner.merchant.shop_domain
    owner_gid = fake_shopify.shop(shop).gid
    wait_for(lambda: metafield_get(fake_shopify, shop, owner_gid, "theme_extension_config") is not None)
    value = metafield_get(fake_shopify, shop, owner_gid, "theme_extension_config")["value"]
    assert json.loads(value)["widgets"]["rewards_panel"]["placement"] == "cart_page"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"widget": "rewards_panel", "placement": "nowhere"}, "placement"),
        ({**CONFIG, "variants": [{"id": "a", "placement": "cart_page", "weight": 70}]}, "variants"),
        ({**CONFIG, "colors": {"accent": "#ffff00"}}, "colors"),
    ],
)
def test_bad_config_is_400_with_a_localized_message_and_nothing_changes(api, owner, program, config, field):
    response = put(api, owner, {"theme_extension_config": config, "locale": "en"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in json.dumps(error["fields"])
    assert ProgramSettings.objects.get(merchant=owner.merchant).theme_extension_config == {}
    assert not AuditLog.objects.filter(action="theme_extension_configured").exists()


def test_bad_config_message_follows_the_locale(api, owner, program):
    from django.utils import translation

    response = put(api, owner, {"theme_extension_config": {"widget": "popup", "placement": "x"}, "locale": "fr"})

    assert response.status_code == 400
    with translation.override("fr"):
        from apps.theme_extensions.config import WIDGETS

        expected = translation.gettext("Choose one of the widgets: %(names)s.") % {"names": ", ".join(WIDGETS)}
    assert response.json()["error"]["fields"]["theme_extension_config"]["widget"] == [expected]


def test_without_admin_frontend_scope_is_403_and_nothing_changes(api, support, program):
    response = put(api, support, {"theme_extension_config": CONFIG, "locale": "en"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert ProgramSettings.objects.get(merchant=support.merchant).theme_extension_config == {}
    assert not AuditLog.objects.filter(action="theme_extension_configured").exists()


def test_another_merchants_id_is_404_and_changes_nothing(api, owner, program, foreign):
    before = foreign_state(foreign)

    response = put(
        api, owner, {"merchant_id": foreign["merchant"].pk, "theme_extension_config": CONFIG, "locale": "en"}
    )

    assert response.status_code == 404
    assert foreign_state(foreign) == before
    assert ProgramSettings.objects.get(merchant=owner.merchant).theme_extension_config == {}


def test_no_token_is_401(api, program):
    response = api.put("/v1/api/theme-extensions", data={"theme_extension_config": CONFIG}, format="json")
    assert response.status_code == 401
