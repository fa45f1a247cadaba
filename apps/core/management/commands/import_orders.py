"""Import a merchant's order history from a CSV file (see apps.core.services.imports)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from apps.core.models import Merchant
from apps.core.services.imports import MalformedCsv, orders_csv_rows, orders_import


class Command(BaseCommand):
    help = "Import orders from a CSV (customer_id, email, order_id, processed_at, total, currency); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="The shop domain, e.g. my-shop.myshopify.com.")
        parser.add_argument("--csv", required=True, dest="csv_path", help="The CSV file to import.")

    def handle(self, *args, shop, csv_path, **options):
        merchant = Merchant.objects.filter(shop_domain=shop.strip().lower()).first()
        if merchant is None:
            raise CommandError(_("Unknown shop %(shop)s.") % {"shop": shop})
        try:
            with open(csv_path, encoding="utf-8-sig", newline="") as stream:
                report = orders_import(merchant=merchant, rows=orders_csv_rows(stream))
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(path)s: %(error)s") % {"path": csv_path, "error": exc.strerror}
            ) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(_("%(path)s is not UTF-8 text.") % {"path": csv_path}) from exc
        except MalformedCsv as exc:
            raise CommandError(str(exc.message)) from exc
        for error in report.errors:
            self.stderr.write(_("Line %(line)s: %(reason)s") % {"line": error.line, "reason": error.reason})
        self.stdout.write(
            _(
                "Imported %(imported)s orders, skipped %(skipped)s already present, rejected %(rejected)s; "
                "%(customers)s new customers, %(points)s points earned."
            )
            % {
                "imported": report.imported,
                "skipped": report.skipped,
                "rejected": report.rejected,
                "customers": report.customers_created,
                "points": report.points_earned,
            }
        )
