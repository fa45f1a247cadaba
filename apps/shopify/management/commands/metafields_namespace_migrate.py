"""Issue 9, once after the deploy that moved LoyalNest's metafields to `$app:loyalnest`: fill the
app-owned namespace of every installed shop and delete the public `loyalnest` copies.

python manage.py metafields_namespace_migrate            # queue one task per installed shop
python manage.py metafields_namespace_migrate --shop DOMAIN --now   # one shop, in this process

Safe to run again (see apps/shopify/metafields/legacy.py); docs/OPERATIONS.md.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.core.models import Merchant
from apps.core.tenancy import scopes_disabled
from apps.shopify.metafields import legacy_namespace_retire, legacy_namespace_retire_task
from apps.shopify.models import ShopifyInstallation


class Command(BaseCommand):
    help = "Move LoyalNest's metafields to the app-owned namespace: fill $app:loyalnest, delete the public copies."

    def add_arguments(self, parser):
        parser.add_argument("--shop", help="Only this myshopify.com domain (default: every installed shop).")
        parser.add_argument("--now", action="store_true", help="Run here and now instead of queueing tasks.")

    def handle(self, *args, shop=None, now=False, **options):
        with scopes_disabled():
            installations = ShopifyInstallation.objects.filter(merchant__is_installed=True, needs_reauth=False)
            if shop:
                installations = installations.filter(merchant__shop_domain=shop)
            merchant_ids = list(installations.order_by("merchant_id").values_list("merchant_id", flat=True))
        if shop and not merchant_ids:
            raise CommandError(f"No installed shop {shop} with a usable token.")
        for merchant_id in merchant_ids:
            if now:
                merchant = Merchant.objects.get(pk=merchant_id)
                result = legacy_namespace_retire(merchant=merchant)
                self.stdout.write(
                    f"{merchant.shop_domain}: {result['swept']['written']} written to $app:loyalnest, "
                    f"{result['legacy_deleted']} public copies deleted"
                )
            else:
                legacy_namespace_retire_task.delay(merchant_id=merchant_id)
        if not now:
            self.stdout.write(f"queued {len(merchant_ids)} shops")
