"""Cross-store data for RFM (issue item 7): the group's real membership is what RFM's comparison
reads (`multi_store_config.shared_stores`, rewritten on every join and leave)."""

from apps.core.models import ProgramSettings
from apps.multistore.selectors import group_store_ids
from apps.multistore.services import group_leave
from apps.rfm.selectors import store_group

from .conftest import join, plus_store


def _domains(merchant):
    return [m.shop_domain for m in store_group(merchant=merchant)]


def test_stores_of_a_group_see_each_other_in_the_rfm_comparison_and_an_outsider_does_not(stores):
    (us, us_owner), (eu, eu_owner), (jp, _jp_owner) = stores
    outsider, _owner = plus_store("outside.myshopify.com", user_id="91009")
    join(us, us_owner, eu, eu_owner)

    assert _domains(us) == [us.shop_domain, eu.shop_domain]
    assert _domains(eu) == [eu.shop_domain, us.shop_domain]
    assert _domains(jp) == [jp.shop_domain] and _domains(outsider) == [outsider.shop_domain]
    assert group_store_ids(us) == group_store_ids(eu) == sorted([us.pk, eu.pk])
    assert group_store_ids(jp) == [jp.pk]


def test_joining_and_leaving_keep_the_comparison_in_step(stores):
    (us, us_owner), (eu, eu_owner), (jp, jp_owner) = stores
    join(us, us_owner, eu, eu_owner)
    join(us, us_owner, jp, jp_owner)
    assert _domains(jp) == [jp.shop_domain, *sorted([us.shop_domain, eu.shop_domain])]

    group_leave(merchant=eu, actor=eu_owner)

    assert _domains(us) == [us.shop_domain, jp.shop_domain]
    assert _domains(eu) == [eu.shop_domain]
    assert ProgramSettings.objects.get(merchant=eu).multi_store_config == {}
    assert group_store_ids(eu) == [eu.pk] and group_store_ids(jp) == sorted([us.pk, jp.pk])
