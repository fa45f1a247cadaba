"""Run RFM work for one shop now: rescoring, and optionally churn training, forecasting, nudges.

python manage.py rfm_refresh --shop DOMAIN [--incremental] [--train] [--forecast] [--nudge]
"""

import time

from django.core.management.base import BaseCommand, CommandError

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.rfm import services


class Command(BaseCommand):
    help = "Rescore a shop's customers now; optionally train, forecast churn and send nudges."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="The shop's myshopify.com domain.")
        parser.add_argument("--incremental", action="store_true", help="Only customers with orders since the last run.")
        parser.add_argument("--train", action="store_true", help="Train a new churn model.")
        parser.add_argument("--forecast", action="store_true", help="Forecast churn for every customer.")
        parser.add_argument("--nudge", action="store_true", help="Send churn-risk nudges.")

    def handle(self, *args, shop, incremental, train, forecast, nudge, **options):
        merchant = Merchant.objects.filter(shop_domain=shop).first()
        if merchant is None:
            raise CommandError(f"No shop {shop}.")
        with merchant_scope(merchant):
            started = time.perf_counter()
            run = services.rfm_scores_refresh(merchant=merchant, incremental=incremental)
            if run is None:
                self.stdout.write("nobody ordered since the last run: nothing to rescore (incremental)")
            else:
                self.stdout.write(
                    f"scored {run.customers_scored} customers ({run.kind}) in {time.perf_counter() - started:.2f}s"
                )
            if train:
                started = time.perf_counter()
                model = services.churn_model_train(merchant=merchant)
                self.stdout.write(
                    f"trained {model.algorithm} in {time.perf_counter() - started:.2f}s: AUC {model.auc}, "
                    f"accuracy {model.accuracy}, baseline accuracy {model.baseline_accuracy}"
                )
            if forecast:
                started = time.perf_counter()
                forecasts = services.churn_forecast(merchant=merchant)
                self.stdout.write(f"forecast {len(forecasts)} customers in {time.perf_counter() - started:.2f}s")
            if nudge:
                self.stdout.write(f"nudged {services.churn_nudges_send(merchant=merchant)} customers")
