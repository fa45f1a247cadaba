"""Load the industry presets into `rfm_benchmarks` (rows without a merchant)."""

from django.db import migrations

from apps.rfm.presets import INDUSTRIES, preset_id, preset_thresholds


def forwards(apps, schema_editor):
    RfmBenchmark = apps.get_model("rfm", "RfmBenchmark")
    for industry in INDUSTRIES:
        RfmBenchmark.objects.update_or_create(
            id=preset_id(industry),
            defaults={
                "merchant": None,
                "industry": industry,
                "segment_name": "Champions",
                "thresholds": preset_thresholds(industry),
                "version": 1,
                "is_active": True,
            },
        )


def backwards(apps, schema_editor):
    apps.get_model("rfm", "RfmBenchmark").objects.filter(merchant__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("rfm", "0002_partition_score_history")]

    operations = [migrations.RunPython(forwards, backwards)]
