"""Validation of a widget's configuration, contrast, and the A/B arithmetic (pure functions)."""

import pytest
from rest_framework.exceptions import ValidationError

from apps.theme_extensions.config import contrast_ratio, widget_config_clean
from apps.theme_extensions.experiments import fnv1a, two_proportion_test, variant_assign


def test_a_full_configuration_is_normalised():
    cleaned = widget_config_clean(
        {
            "widget": "rewards_panel",
            "placement": "cart_page",
            "texts": {"title": {"en": " Rewards ", "ar": "المكافآت"}},
            "colors": {"accent": "#14C", "text": "#111111"},
            "variants": [
                {"id": "cart", "placement": "cart_page", "weight": 50},
                {"id": "home", "placement": "home_page", "weight": 50},
            ],
        }
    )
    assert cleaned["texts"] == {"title": {"en": "Rewards", "ar": "المكافآت"}}
    assert cleaned["colors"]["accent"] == "#1144cc"
    assert cleaned["enabled"] is True and len(cleaned["variants"]) == 2


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"widget": "popup", "placement": "cart_page"}, "widget"),
        ({"widget": "points_display", "placement": "cart_page"}, "placement"),
        ({"widget": "rewards_panel", "placement": "cart_page", "extra": 1}, "theme_extension_config"),
        ({"widget": "rewards_panel", "placement": "cart_page", "texts": {"title": {"xx": "Hi"}}}, "texts"),
        ({"widget": "rewards_panel", "placement": "cart_page", "texts": {"subtitle": {"en": "Hi"}}}, "texts"),
        ({"widget": "rewards_panel", "placement": "cart_page", "texts": {"title": {"en": "x" * 121}}}, "texts"),
        ({"widget": "rewards_panel", "placement": "cart_page", "colors": {"accent": "blue"}}, "colors"),
        ({"widget": "rewards_panel", "placement": "cart_page", "colors": {"accent": "#ffff00"}}, "colors"),
        ({"widget": "rewards_panel", "placement": "cart_page", "colors": {"text": "#cccccc"}}, "colors"),
        (
            {
                "widget": "rewards_panel",
                "placement": "cart_page",
                "variants": [
                    {"id": "a", "placement": "cart_page", "weight": 60},
                    {"id": "b", "placement": "home_page", "weight": 30},
                ],
            },
            "variants",
        ),
        (
            {
                "widget": "rewards_panel",
                "placement": "cart_page",
                "variants": [
                    {"id": "a", "placement": "cart_page", "weight": 50},
                    {"id": "a", "placement": "home_page", "weight": 50},
                ],
            },
            "variants",
        ),
        (
            {
                "widget": "rewards_panel",
                "placement": "cart_page",
                "variants": [{"id": "a", "placement": "order_status_page", "weight": 100}],
            },
            "variants",
        ),
        (
            {
                "widget": "rewards_panel",
                "placement": "cart_page",
                "variants": [{"id": "a", "placement": "cart_page", "weight": True}],
            },
            "variants",
        ),
    ],
)
def test_bad_configurations_are_refused_on_the_right_field(config, field):
    with pytest.raises(ValidationError) as refused:
        widget_config_clean(config)
    assert field in refused.value.detail


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_assignment_is_deterministic_and_follows_the_weights():
    variants = [
        {"id": "a", "placement": "cart_page", "weight": 20},
        {"id": "b", "placement": "home_page", "weight": 80},
    ]
    first = [variant_assign(widget="rewards_panel", visitor=f"v{i}", variants=variants)["id"] for i in range(5000)]
    again = [variant_assign(widget="rewards_panel", visitor=f"v{i}", variants=variants)["id"] for i in range(5000)]
    assert first == again
    assert 0.17 < first.count("a") / 5000 < 0.23
    assert variant_assign(widget="rewards_panel", visitor="x", variants=[]) is None


def test_fnv1a_reference_values():
    # Published FNV-1a 32-bit test vectors.
    assert fnv1a("") == 0x811C9DC5
    assert fnv1a("a") == 0xE40C292C
    assert fnv1a("foobar") == 0xBF9CF968


def test_two_proportion_test():
    clear = two_proportion_test(100, 1000, 150, 1000)
    assert clear.significant and clear.z > 0 and clear.p_value == pytest.approx(0.0007, abs=0.0003)
    unclear = two_proportion_test(10, 100, 12, 100)
    assert not unclear.significant
    assert two_proportion_test(0, 0, 1, 10) is None
