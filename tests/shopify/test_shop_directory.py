"""The per-process shop directory hands out copies: a request never changes the next one's merchant."""

from apps.core.models import Merchant
from apps.shopify.shops import ShopDirectory


def test_each_caller_gets_its_own_copy_of_the_kept_merchant(merchant, other_merchant, django_assert_num_queries):
    directory = ShopDirectory()
    with django_assert_num_queries(1):
        first = directory.merchant(merchant.shop_domain)
        second = directory.merchant(merchant.shop_domain)

    assert first is not second and first == second == merchant
    assert first.shop_domain == merchant.shop_domain and first.name == "Alpha Pets"
    assert not first._state.adding and first._state.db == "default"
    first.name = "Changed by one request"
    first._state.fields_cache["program_settings"] = object()
    third = directory.merchant(merchant.shop_domain)
    assert third.name == "Alpha Pets" and "program_settings" not in third._state.fields_cache
    assert directory.merchant(other_merchant["merchant"].shop_domain).pk == other_merchant["merchant"].pk


def test_a_copy_saves_like_the_row_it_came_from(merchant):
    copy = ShopDirectory().merchant(merchant.shop_domain)
    copy.name = "Alpha Pets & Co"
    copy.save(update_fields=["name"])

    assert Merchant.objects.get(pk=merchant.pk).name == "Alpha Pets & Co"
    assert ShopDirectory().merchant("unknown-shop.myshopify.com") is None
