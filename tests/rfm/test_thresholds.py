"""The strict threshold grammar and its validation (RELIABILITY C7: nothing is evaluated)."""

import pytest

from apps.rfm.presets import INDUSTRIES, preset_thresholds
from apps.rfm.thresholds import InvalidThresholds, format_condition, parse_condition, thresholds_parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<=14", {"op": "lte", "value": 14}),
        (">=5", {"op": "gte", "value": 5}),
        (">500", {"op": "gt", "value": 500}),
        (" < 30 ", {"op": "lt", "value": 30}),
        (">99.95", {"op": "gt", "value": 99.95}),
        ("≤7", {"op": "lte", "value": 7}),
    ],
)
def test_the_seeds_strings_parse_to_structured_conditions(text, expected):
    assert parse_condition(text) == expected
    assert parse_condition(format_condition(expected)) == expected


@pytest.mark.parametrize(
    "text",
    ["14", "=14", "<=", "<=-1", "<=1e3", "<=14 or 1", "__import__('os')", "<=0x10", ">=5;", "<= 1.234", "", "<<5"],
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        parse_condition(text)


def test_a_bare_string_sets_level_five_and_keeps_the_rest_of_the_base():
    base = preset_thresholds("pet_store")

    parsed = thresholds_parse({"recency": "<=10", "monetary": ">600"}, base=base)

    assert parsed["recency"]["5"] == {"op": "lte", "value": 10}
    assert parsed["recency"]["4"] == base["recency"]["4"]
    assert parsed["monetary"]["5"] == {"op": "gt", "value": 600}
    assert parsed["frequency"] == base["frequency"]


def test_levels_and_structured_conditions_are_accepted():
    parsed = thresholds_parse(
        {"frequency": {"5": ">=9", "4": {"op": "gte", "value": 6}}, "method": "quintiles", "weights": {"recency": 2}},
        base=preset_thresholds("other"),
    )

    assert parsed["frequency"]["5"] == {"op": "gte", "value": 9}
    assert parsed["frequency"]["4"] == {"op": "gte", "value": 6}
    assert parsed["method"] == "quintiles"
    assert parsed["weights"]["recency"] == 2.0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"loyalty": "<=3"}, "thresholds.loyalty"),
        ({"recency": ">=14"}, "thresholds.recency.5"),  # recency bars are upper bounds
        ({"frequency": "<=5"}, "thresholds.frequency.5"),
        ({"recency": "<=5000"}, "thresholds.recency.5"),  # out of range
        ({"recency": "<=1.5"}, "thresholds.recency.5"),  # days are whole
        ({"recency": {"6": "<=3"}}, "thresholds.recency.6"),
        ({"recency": {"5": "<=40"}}, "thresholds.recency"),  # not below level 4's 30 days
        ({"monetary": {"4": ">600"}}, "thresholds.monetary"),  # above level 5's 500
        ({"method": "eval"}, "thresholds.method"),
        ({"weights": {"recency": -1}}, "thresholds.weights.recency"),
        ({"weights": {"recency": 0, "frequency": 0, "monetary": 0}}, "thresholds.weights"),
        ({"recency": {"op": "lte", "value": True}}, "thresholds.recency.5"),
        ({"recency": 14}, "thresholds.recency"),
    ],
)
def test_invalid_thresholds_name_the_field(raw, field):
    with pytest.raises(InvalidThresholds) as caught:
        thresholds_parse(raw, base=preset_thresholds("pet_store"))

    assert field in caught.value.details


@pytest.mark.parametrize("industry", INDUSTRIES)
def test_every_preset_is_valid_and_monotonic(industry):
    preset = preset_thresholds(industry)

    assert thresholds_parse(preset, base=preset) == preset


def test_there_are_presets_for_at_least_ten_industries_and_the_seeds_examples_hold():
    assert len(INDUSTRIES) >= 10
    assert preset_thresholds("pet_store")["recency"]["5"] == {"op": "lte", "value": 14}
    assert preset_thresholds("electronics")["recency"]["5"] == {"op": "lte", "value": 30}
    assert preset_thresholds("pet_store")["frequency"]["5"] == {"op": "gte", "value": 5}
    assert preset_thresholds("pet_store")["monetary"]["5"] == {"op": "gt", "value": 500}


def test_the_presets_migration_loads_every_industry_into_rfm_benchmarks(db):
    from importlib import import_module

    from django.apps import apps as django_apps

    from apps.rfm.models import RfmBenchmark

    RfmBenchmark.presets.all().delete()

    import_module("apps.rfm.migrations.0003_industry_presets").forwards(django_apps, None)

    rows = {row.industry: row for row in RfmBenchmark.presets.all()}
    assert sorted(rows) == sorted(INDUSTRIES)
    assert rows["pet_store"].pk == "bm_preset_pet_store" and rows["pet_store"].merchant_id is None
    assert rows["electronics"].thresholds == preset_thresholds("electronics")
