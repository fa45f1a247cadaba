"""Building blocks of the staff admin: personal-data masking, typed filters, cheap pagination.

Staff work across merchants in Django admin (`AdminScopesMiddleware` disables tenant scopes
under /admin/). The tables grow to 100,000+ customers per merchant and millions of ledger and
audit rows, so nothing here counts a whole table, renders a list of every merchant, or
matches a search with `LIKE '%…%'` on a large table.
"""

from django.contrib import admin
from django.contrib.admin.utils import flatten
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record

PII_PERMISSION = "core.view_customer_pii"
MASK = "•••"


def has_pii_permission(request) -> bool:
    """Whether this staff user may see personal data (superusers hold every permission)."""
    cached = getattr(request, "_loyalnest_pii_allowed", None)
    if cached is None:
        user = request.user
        cached = bool(user.is_active and user.is_staff and user.has_perm(PII_PERMISSION))
        request._loyalnest_pii_allowed = cached
    return cached


def filtered_changelist_url(model, **filters) -> str:
    query = QueryDict(mutable=True)
    for key, value in filters.items():
        query[key] = value
    return f"{reverse(f'admin:core_{model._meta.model_name}_changelist')}?{query.urlencode()}"


class EstimatedCountPaginator(Paginator):
    """Take the row count of an unfiltered changelist from PostgreSQL's statistics.

    `SELECT COUNT(*)` over millions of ledger rows takes seconds on every page view; the
    planner's estimate is good enough to page through. Filtered lists count for real (the
    merchant filter narrows them to one tenant's rows first).
    """

    estimate_above = 50_000

    @cached_property
    def count(self):
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                        [connection.ops.quote_name(queryset.model._meta.db_table)],
                    )
                    row = cursor.fetchone()
                if row and row[0] and row[0] > self.estimate_above:
                    return int(row[0])
        return super().count


class InputFilter(admin.SimpleListFilter):
    """An exact-match filter typed into a box: a list of every value would be far too long."""

    template = "admin/core/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        # One placeholder entry so that Django renders the filter; the template shows a box.
        return [("", "")]

    def choices(self, changelist):
        remove_query = changelist.get_query_string(remove=[self.parameter_name])
        remaining = QueryDict(remove_query.removeprefix("?"))
        yield {
            "selected": self.value() is None,
            "query_string": remove_query,
            "display": _("All"),
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "hidden_params": [(key, value) for key in remaining for value in remaining.getlist(key)],
        }


class MerchantFilter(InputFilter):
    title = _("merchant")
    parameter_name = "merchant"
    placeholder = _("Shop domain or merchant id")
    field = "merchant"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.startswith("mer_"):
            return queryset.filter(**{f"{self.field}_id": value})
        return queryset.filter(**{f"{self.field}__shop_domain": value.lower()})


class CustomerFilter(InputFilter):
    title = _("customer")
    parameter_name = "customer"
    placeholder = _("Customer id or Shopify customer id")

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.startswith("cus_"):
            return queryset.filter(customer_id=value)
        return queryset.filter(customer__shopify_customer_id=value)


class LoyalNestAdmin(admin.ModelAdmin):
    """Defaults for every core admin: no facet counts, no deletes, typed exact-match search.

    Deleting tenant rows here would bypass the compliance erasure (customers/redact,
    shop/redact), which keeps anonymised ledger totals, so nothing is deletable in admin.
    """

    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    # Fields matched exactly by the search box (indexed columns), and the ones compared in
    # lower case (shop domains are stored in lower case).
    exact_search_fields: tuple[str, ...] = ()
    lowercase_search_fields: tuple[str, ...] = ()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_fields(self, request):
        # Non-empty so that Django shows the search box; `get_search_results` does the work.
        return self.exact_search_fields + self.lowercase_search_fields or self.search_fields

    def search_condition(self, request, term: str) -> Q:
        condition = Q()
        for field in self.exact_search_fields:
            condition |= Q(**{field: term})
        for field in self.lowercase_search_fields:
            condition |= Q(**{field: term.lower()})
        return condition

    def get_search_results(self, request, queryset, search_term):
        if not (self.exact_search_fields or self.lowercase_search_fields):
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(self.search_condition(request, term)), False


class ReadOnlyAdmin(LoyalNestAdmin):
    """View only, for everyone including superusers: rows that services or Shopify own."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        fieldsets = self.get_fieldsets(request, obj)
        return [name for _title, options in fieldsets for name in flatten(options["fields"])]


class PersonalDataAdminMixin:
    """Mask personal data for staff without `core.view_customer_pii`; audit those with it.

    Without the permission the columns are deferred (never loaded), the detail page shows a
    mask, and the search box does not match them. With it, every detail page shown and every
    email search writes a `pii_viewed_action` audit row per row shown (RELIABILITY B4).
    """

    pii_fields: tuple[str, ...] = ()
    pii_search_fields: tuple[str, ...] = ()
    pii_viewed_action = ""
    # Email searches match one address; audit at most this many matching rows per search.
    pii_search_audit_limit = 100

    def _masked(self, names, request):
        if has_pii_permission(request):
            return list(names)
        return [f"masked_{name}" if name in self.pii_fields else name for name in names]

    def get_list_display(self, request):
        return self._masked(super().get_list_display(request), request)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return [
            (title, {**options, "fields": self._masked(options["fields"], request)}) for title, options in fieldsets
        ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not has_pii_permission(request):
            queryset = queryset.defer(*self.pii_fields)
        return queryset

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and not has_pii_permission(request):
            # Blank the deferred columns in memory, so that no template, title or breadcrumb
            # (StaffMember.__str__ uses the name) can load them. Such an object is never saved.
            for name in self.pii_fields:
                setattr(obj, name, "")
            obj._pii_masked = True
        return obj

    def save_model(self, request, obj, form, change):
        if getattr(obj, "_pii_masked", False):
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        if has_pii_permission(request):
            fields = tuple(fields) + self.pii_search_fields
        return fields

    def pii_search_condition(self, term: str) -> Q:
        condition = Q()
        for field in self.pii_search_fields:
            condition |= Q(**{f"{field}__iexact": term})
        return condition

    def search_condition(self, request, term: str) -> Q:
        condition = super().search_condition(request, term)
        if self.pii_search_fields and has_pii_permission(request):
            condition |= self.pii_search_condition(term)
        return condition

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and "@" in term and self.pii_search_fields and has_pii_permission(request):
            self._audit_search(request, queryset.filter(self.pii_search_condition(term)))
        return super().get_search_results(request, queryset, search_term)

    def _audit_search(self, request, matches):
        rows = matches.select_related(None).select_related("merchant").only("pk", "merchant")
        for row in rows[: self.pii_search_audit_limit]:
            audit_record(
                merchant=row.merchant,
                actor=request.user,
                action=self.pii_viewed_action,
                target=row,
                metadata={"source": "admin_search", "fields": list(self.pii_search_fields)},
            )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and has_pii_permission(request):
            audit_record(
                merchant=obj.merchant,
                actor=request.user,
                action=self.pii_viewed_action,
                target=obj,
                metadata={"source": "admin_detail", "fields": list(self.pii_fields)},
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # The masks shown instead of personal data. They show even for empty values, so that
    # whether a customer gave a name is not revealed either.
    @admin.display(description=_("email"))
    def masked_email(self, obj):
        return MASK

    @admin.display(description=_("first name"))
    def masked_first_name(self, obj):
        return MASK

    @admin.display(description=_("last name"))
    def masked_last_name(self, obj):
        return MASK

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return MASK

    @admin.display(description=_("phone"))
    def masked_phone(self, obj):
        return MASK
