"""Django admin lists every gamification table read-only (staff)."""

import pytest

from .conftest import make_badge, make_team

PAGES = ["gamificationsettings", "badge", "achievement", "streak", "team", "teammembership", "teamleaderboard"]


@pytest.mark.parametrize("model", PAGES)
def test_each_table_is_listed_and_cannot_be_added(admin_client, merchant, model):
    make_badge(merchant, {"type": "first_purchase"})
    make_team(merchant, "2026-11", "Red")
    assert admin_client.get(f"/admin/gamification/{model}/").status_code == 200
    assert admin_client.get(f"/admin/gamification/{model}/add/").status_code == 403
