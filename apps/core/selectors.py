"""Reads of the loyalty core. Callers are inside the merchant's scope."""

from django.db.models import Q

from .models import Customer, PointsTransaction, Reward, StaffMember
from .pagination import keyset_page


def customer_get(*, merchant, customer_id: str) -> Customer | None:
    return Customer.objects.select_related("vip_tier").filter(merchant=merchant, pk=customer_id).first()


def customer_list(*, merchant, search: str = "", cursor=None, limit=50):
    queryset = Customer.objects.select_related("vip_tier").filter(merchant=merchant, redacted_at__isnull=True)
    if search:
        queryset = queryset.filter(
            Q(email__iexact=search) | Q(shopify_customer_id=search) | Q(last_name__iexact=search)
        )
    return keyset_page(queryset, cursor=cursor, limit=limit)


def points_transaction_list(*, merchant, customer, cursor=None, limit=50):
    queryset = PointsTransaction.objects.filter(merchant=merchant, customer=customer)
    return keyset_page(queryset, cursor=cursor, limit=limit, descending=True)


def points_transaction_get(*, merchant, transaction_id: str) -> PointsTransaction | None:
    return PointsTransaction.objects.select_related("customer").filter(merchant=merchant, pk=transaction_id).first()


def reward_get(*, merchant, reward_id: str) -> Reward | None:
    return Reward.objects.filter(merchant=merchant, pk=reward_id, is_active=True).first()


def staff_member_list(*, merchant):
    return list(StaffMember.objects.filter(merchant=merchant).order_by("created_at"))
