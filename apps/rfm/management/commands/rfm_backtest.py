"""Train a shop's churn model on its history before a date and measure it on what followed.

    python manage.py rfm_backtest --shop DOMAIN --as-of YYYY-MM-DD --horizon-days N

Training and validation use only orders before `--as-of` (validation labels end at it); the
test set is every customer as of `--as-of`, labelled by the orders of the following N days.
Nothing is written.
"""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.rfm.churn import churn_model_fit, evaluate, features_as_of, predict
from apps.rfm.models import RfmSettings


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class Command(BaseCommand):
    help = "Backtest the churn model: train before --as-of, score the following --horizon-days."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="The shop's myshopify.com domain.")
        parser.add_argument("--as-of", required=True, help="YYYY-MM-DD: train on history before this date.")
        parser.add_argument("--horizon-days", type=int, default=90)
        parser.add_argument("--algorithm", choices=RfmSettings.Algorithm.values, default=RfmSettings.Algorithm.AUTO)

    def handle(self, *args, shop, as_of, horizon_days, algorithm, **options):
        merchant = Merchant.objects.filter(shop_domain=shop).first()
        if merchant is None:
            raise CommandError(f"No shop {shop}.")
        try:
            cutoff = datetime.strptime(as_of, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise CommandError("--as-of must be YYYY-MM-DD.") from exc
        if not 7 <= horizon_days <= 730:
            raise CommandError("--horizon-days must be between 7 and 730.")
        window_end = cutoff + timedelta(days=horizon_days)
        if window_end > timezone.now():
            self.stderr.write(f"Warning: the test window ends {window_end.date()}, after today; labels are partial.")
        with merchant_scope(merchant):
            card, parameters = churn_model_fit(
                merchant=merchant, horizon_days=horizon_days, algorithm=algorithm, now=cutoff
            )
            test = features_as_of(
                merchant_id=merchant.pk, cutoff=cutoff, horizon_days=horizon_days, label_until=window_end
            )
        result = evaluate(predict(parameters, test, horizon_days), test.labels)
        self.stdout.write(f"shop: {shop}")
        self.stdout.write(f"model: {card['algorithm']}{' (too little history)' if card['note'] else ''}")
        self.stdout.write(f"trained on: {card['customers']} customers, validated on {card['validation_customers']}")
        self.stdout.write(f"validation AUC: {_fmt(card['auc'])}, accuracy: {_fmt(card['accuracy'])}")
        self.stdout.write(f"test window: {cutoff.date()} to {window_end.date()}, {result.customers} customers")
        self.stdout.write(f"AUC: {_fmt(result.auc)}")
        self.stdout.write(f"accuracy: {_fmt(result.accuracy)}")
        self.stdout.write(f"baseline accuracy (everyone churns): {_fmt(result.baseline_accuracy)}")
