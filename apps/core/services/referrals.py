"""Customer referral links: codes from a CSPRNG, one active link per customer (RELIABILITY D6)."""

import re
import secrets
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError, NotFound
from apps.core.models import Customer, ReferralLink
from apps.core.signals import referral_link_changed
from apps.core.tracking import track_on_commit

# Upper-case letters and digits without the look-alikes 0/O, 1/I/L: easy to read aloud and type.
REFERRAL_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERRAL_CODE_LENGTH = 10  # 31**10 ≈ 8·10^14 codes: guessing one is hopeless at any rate limit
REFERRAL_CODE_ATTEMPTS = 5
# What a lookup accepts before touching the database (codes made elsewhere may differ in shape).
REFERRAL_CODE_INPUT = re.compile(r"^[A-Za-z0-9_-]{4,32}$")


class SelfReferralRefused(ApplicationError):
    code = "self_referral"
    status = 422
    default_message = _("You cannot use your own referral code.")


def referral_code_new() -> str:
    """Draw a fresh referral code from the operating system's CSPRNG."""
    return "".join(secrets.choice(REFERRAL_CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


@transaction.atomic
def referral_link_get_or_create(
    *, merchant, customer, generate_code: Callable[[], str] = referral_code_new
) -> ReferralLink:
    """Return the customer's active referral link, creating it with a unique code on first use."""
    # The customer's row lock makes concurrent first requests wait and then find the new link.
    Customer.objects.select_for_update().filter(merchant=merchant, pk=customer.pk).first()
    link = ReferralLink.objects.filter(merchant=merchant, customer=customer, is_active=True).first()
    if link is not None:
        return link
    for _attempt in range(REFERRAL_CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                link = ReferralLink.objects.create(merchant=merchant, customer=customer, code=generate_code())
            break
        except IntegrityError:
            # The code is taken (codes are unique across every shop): draw another.
            continue
    else:
        raise RuntimeError("no unused referral code after several draws")
    audit_record(merchant=merchant, action="referral_link_created", target=link, metadata={"customer_id": customer.pk})
    referral_link_changed.send(sender=ReferralLink, merchant=merchant, customer_ids=[customer.pk])
    track_on_commit("referral_link_created", merchant=merchant, distinct_id=customer.pk)
    return link


# Extension point: other apps may accept, at a shop, codes that another shop issued (a store
# group's shared referral codes). A resolver is called as `resolver(merchant=, code=, customer=)`
# only when the shop has no active link for the code, and returns a `ReferralLink` or None; it
# may raise `SelfReferralRefused`. Register from an `AppConfig.ready()`; the core never imports
# the registering app.
_referral_resolvers: dict[str, Callable[..., ReferralLink | None]] = {}


def referral_resolver_register(name: str, resolver: Callable[..., ReferralLink | None]) -> None:
    """Register (or replace, by name) a resolver for codes this shop did not issue."""
    _referral_resolvers[name] = resolver


def referral_link_resolve(*, merchant, code: str, customer=None) -> ReferralLink:
    """Find the merchant's active link for a code (or one a registered resolver accepts at this
    shop); refuse the advocate's own code."""
    code = (code or "").strip()
    if not REFERRAL_CODE_INPUT.match(code):
        raise NotFound(_("This referral code is not valid."))
    link = (
        ReferralLink.objects.filter(merchant=merchant, is_active=True, code__in={code, code.upper()})
        .order_by("-created_at")
        .first()
    )
    if link is None:
        for resolver in list(_referral_resolvers.values()):
            link = resolver(merchant=merchant, code=code, customer=customer)
            if link is not None:
                break
    if link is None:
        raise NotFound(_("This referral code is not valid."))
    if customer is not None and link.customer_id == customer.pk:
        raise SelfReferralRefused()
    return link
