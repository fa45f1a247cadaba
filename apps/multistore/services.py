"""Writes of the multi-store feature: groups and invites, shared identity, copy sync.

Ownership: Shopify gives an app no organisation id, so two stores have the same owner when the
staff member who invites is the owner (role `owner`) of the inviting store, the staff member
who accepts is the owner of the invited store, and both have the same normalized email.
"""

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_entry, audit_record
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.core.models import (
    AuditLog,
    Customer,
    Merchant,
    PointsTransaction,
    ProgramSettings,
    ReferralLink,
    StaffRole,
    VipTier,
)
from apps.core.services import SelfReferralRefused
from apps.core.streams import stream_append_many_on_commit, stream_append_on_commit
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.core.tracking import track_on_commit
from apps.notifications.services import notify

from .bulk import rows_update
from .ledger import LINK_KEY, MIRROR_KEY, apply_to_customer, lock_accounts, mirror_entry
from .models import (
    LinkReview,
    MemberRole,
    ReviewStatus,
    SharedAccount,
    SharedEntryKind,
    SharedLedgerEntry,
    StoreGroup,
    StoreGroupInvite,
    StoreGroupMember,
    SyncLagSample,
)

logger = logging.getLogger(__name__)

INVITE_SALT = "apps.multistore.invite"
UNVERIFIED_CONSENT = {"invalid", "redacted"}


class InviteInvalid(ApplicationError):
    code = "invite_invalid"
    status = 400
    default_message = _("This invitation is invalid or has expired.")


class NotSameOwner(ApplicationError):
    code = "not_same_owner"
    status = 403
    default_message = _("Only the owner of both stores can join them into a group.")


class NotPlus(ApplicationError):
    code = "plan_not_eligible"
    status = 403
    default_message = _("Store groups need Shopify Plus.")


class AlreadyInGroup(Conflict):
    code = "already_in_group"
    default_message = _("This store already belongs to a store group.")


class NotInGroup(ApplicationError):
    code = "not_in_group"
    status = 404
    default_message = _("This store does not belong to a store group.")


# --- helpers -----------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def email_digest(email: str) -> str:
    normalized = normalize_email(email)
    return hashlib.sha256(normalized.encode()).hexdigest() if normalized else ""


def is_verified_email(customer: Customer) -> bool:
    """An address we may match on: present, well-formed, not redacted, not flagged invalid by Shopify."""
    return customer.redacted_at is None and _is_verified(customer.email, customer.email_marketing_consent)


def _is_verified(email: str, marketing_consent: str) -> bool:
    if not email or marketing_consent in UNVERIFIED_CONSENT:
        return False
    try:
        validate_email(normalize_email(email))
    except DjangoValidationError:
        return False
    return True


def _owner_email(staff) -> str:
    if staff is None or staff.role != StaffRole.OWNER or not staff.is_active:
        return ""
    return normalize_email(staff.email)


def _membership(merchant) -> StoreGroupMember | None:
    return (
        StoreGroupMember.across_stores.select_related("group")
        .filter(merchant_id=getattr(merchant, "pk", merchant))
        .first()
    )


def group_for(merchant) -> StoreGroup:
    member = _membership(merchant)
    if member is None:
        raise NotInGroup()
    return member.group


def _audit(merchant, actor, event: str, target=None, **metadata):
    with merchant_scope(merchant):
        audit_record(
            merchant=merchant,
            actor=actor,
            action="multi_store_sync",
            target=target,
            metadata={"event": event, **metadata},
        )


def _write_config(group: StoreGroup) -> None:
    """Each member's `program_settings.multi_store_config`: the seeds' keys plus what is shared."""
    members = list(
        StoreGroupMember.across_stores.filter(group=group).select_related("merchant").order_by("merchant_id")
    )
    domains = [m.merchant.shop_domain for m in members]
    config = {
        "group_id": group.pk,
        "shared_stores": domains,
        "shared_leaderboard": bool(group.sharing.get("leaderboard")),
        "shared": {key: bool(group.sharing.get(key, True)) for key in ("points", "tiers", "referrals")},
    }
    for member in members:
        with merchant_scope(member.merchant):
            program, _created = ProgramSettings.objects.get_or_create(merchant=member.merchant)
            program.multi_store_config = config
            program.save(update_fields=["multi_store_config", "updated_at"])


def _clear_config(merchant) -> None:
    with merchant_scope(merchant):
        ProgramSettings.objects.filter(merchant=merchant).update(multi_store_config={})


# --- groups and invites --------------------------------------------------------------------------


@dataclass
class InviteResult:
    invite: StoreGroupInvite
    token: str


@transaction.atomic
def group_invite_create(*, merchant, actor, shop_domain: str) -> InviteResult:
    """Invite another store of the same owner; creates the group on the first invite."""
    if not _owner_email(actor):
        raise NotSameOwner()
    if not merchant.is_plus:
        raise NotPlus()
    shop_domain = (shop_domain or "").strip().lower()
    if shop_domain == merchant.shop_domain:
        raise ValidationFailed(details={"shop_domain": [str(_("Invite another store, not this one."))]})
    member = _membership(merchant)
    if member is None:
        group = StoreGroup.objects.create(name=merchant.name, created_by=actor)
        StoreGroupMember.across_stores.create(group=group, merchant=merchant, role=MemberRole.PRIMARY)
        _write_config(group)
    else:
        group = member.group
    ttl = timedelta(seconds=settings.MULTISTORE_INVITE_TTL_SECONDS)
    invite = StoreGroupInvite.objects.create(
        group=group,
        invited_by=merchant,
        invited_by_staff=actor,
        shop_domain=shop_domain,
        expires_at=timezone.now() + ttl,
    )
    token = signing.dumps({"invite": invite.pk, "shop": shop_domain}, salt=INVITE_SALT, compress=True)
    _audit(merchant, actor, "invite_created", target=invite, group_id=group.pk)
    return InviteResult(invite=invite, token=token)


@transaction.atomic
def group_invite_accept(*, merchant, actor, token: str) -> StoreGroup:
    """Accept an invite inside the invited store's own admin; links shared customers after commit."""
    try:
        payload = signing.loads(token or "", salt=INVITE_SALT, max_age=settings.MULTISTORE_INVITE_TTL_SECONDS)
    except signing.BadSignature as exc:  # also SignatureExpired
        raise InviteInvalid() from exc
    invite = (
        StoreGroupInvite.objects.select_for_update(of=("self",))
        .select_related("group", "invited_by_staff")
        .filter(pk=payload.get("invite"))
        .first()
    )
    now = timezone.now()
    if (
        invite is None
        or invite.accepted_at
        or invite.revoked_at
        or invite.expires_at <= now
        or invite.shop_domain != merchant.shop_domain
        or payload.get("shop") != merchant.shop_domain
    ):
        raise InviteInvalid()
    accepting, inviting = _owner_email(actor), _owner_email(invite.invited_by_staff)
    if not accepting or accepting != inviting:
        raise NotSameOwner()
    if not merchant.is_plus:
        raise NotPlus()
    if _membership(merchant) is not None:
        raise AlreadyInGroup()
    StoreGroupMember.across_stores.create(group=invite.group, merchant=merchant, role=MemberRole.MEMBER)
    invite.accepted_at, invite.accepted_merchant = now, merchant
    invite.save(update_fields=["accepted_at", "accepted_merchant"])
    _write_config(invite.group)
    _audit(merchant, actor, "group_joined", target=invite, group_id=invite.group_id)
    _audit(invite.invited_by, None, "store_joined", target=invite, group_id=invite.group_id, store=merchant.pk)
    group_id = invite.group_id
    if settings.MULTISTORE_LINK_ON_JOIN:
        transaction.on_commit(lambda: _queue_link(group_id))
    return invite.group


def _queue_link(group_id: str) -> None:
    from .tasks import shared_customers_link_task

    shared_customers_link_task.delay(group_id=group_id)


def group_leave(*, merchant, actor) -> None:
    """Leave the group: every linked customer is unlinked first (points conserved), then the store."""
    if actor is None or actor.role != StaffRole.OWNER:
        raise PermissionDenied()
    group = group_for(merchant)
    with scopes_disabled():
        linked = list(
            Customer.objects.filter(merchant=merchant, shared_customer_id__isnull=False).values_list("pk", flat=True)
        )
    for customer_id in linked:
        shared_customer_unlink(merchant=merchant, customer_id=customer_id, actor=actor)
    with transaction.atomic():
        StoreGroupMember.across_stores.filter(group=group, merchant=merchant).delete()
        _clear_config(merchant)
        _write_config(group)
        _audit(merchant, actor, "group_left", group_id=group.pk)


@transaction.atomic
def group_sharing_update(*, merchant, actor, **switches) -> StoreGroup:
    """Turn the shared tiers, referrals and leaderboard on or off for the whole group."""
    if actor is None or actor.role != StaffRole.OWNER:
        raise PermissionDenied()
    group = StoreGroup.objects.select_for_update().get(pk=group_for(merchant).pk)
    before = dict(group.sharing)
    for key in ("tiers", "referrals", "leaderboard"):
        if key in switches and switches[key] is not None:
            group.sharing[key] = bool(switches[key])
    group.sharing["points"] = True
    group.save(update_fields=["sharing", "updated_at"])
    _write_config(group)
    _audit(merchant, actor, "sharing_updated", group_id=group.pk, before=before, after=group.sharing)
    if before.get("leaderboard") != group.sharing.get("leaderboard"):
        with merchant_scope(merchant):
            audit_record(
                merchant=merchant,
                actor=actor,
                action="shared_leaderboard_updated",
                metadata={"group_id": group.pk, "enabled": group.sharing["leaderboard"]},
            )
    return group


# --- shared identity -----------------------------------------------------------------------------


@dataclass
class LinkReport:
    linked: int = 0
    accounts_created: int = 0
    reviews: int = 0
    failed: int = 0  # emails an error kept from linking (logged); the next run tries them again


@dataclass(frozen=True, slots=True)
class _Candidate:
    """What matching needs of one store customer (a group can hold 300,000: no model rows)."""

    pk: str
    merchant_id: str
    shared_customer_id: str | None
    # hash((first, last)) trimmed and lower-case, when both are given: names are only compared
    # within one email's candidates, and an int is a third of the memory of the two strings.
    name: int | None


def _member_ids(group) -> list[str]:
    return list(StoreGroupMember.across_stores.filter(group=group).values_list("merchant_id", flat=True))


def _candidates(members: list[str]) -> dict[str, list[_Candidate]]:
    """The member stores' customers with a verified email, by email digest (read in chunks)."""
    stores = {merchant_id: merchant_id for merchant_id in members}  # one string per store, shared
    candidates = defaultdict(list)
    rows = (
        Customer.objects.filter(merchant_id__in=members, redacted_at__isnull=True)
        .exclude(email="")
        .values_list(
            "pk", "merchant_id", "email", "email_marketing_consent", "shared_customer_id", "first_name", "last_name"
        )
        .iterator(chunk_size=5000)
    )
    for pk, merchant_id, email, consent, shared_id, first_name, last_name in rows:
        if not _is_verified(email, consent):
            continue
        first_name, last_name = first_name.strip().lower(), last_name.strip().lower()
        name = hash((first_name, last_name)) if first_name and last_name else None
        candidates[email_digest(email)].append(_Candidate(pk, stores[merchant_id], shared_id or None, name))
    return candidates


def shared_customers_link(*, group, batch: int = 500) -> LinkReport:
    """Link member stores' customers with the same verified email to one shared customer.

    Unambiguous matches (at most one candidate per store, names not contradicting) are linked;
    others wait in the review list. Emails whose customers are all unlinked are linked `batch`
    to a transaction with set-based writes, the others email by email. A transaction that fails
    is retried in halves down to single emails: one bad email never holds back the others (it
    is logged and counted in `failed`, and the next run tries it again).
    """
    report = LinkReport()
    members = _member_ids(group)
    with scopes_disabled():
        merchants = Merchant.objects.in_bulk(members)
        candidates = _candidates(members)
        kept_apart = set(
            LinkReview.objects.filter(group=group, status=ReviewStatus.KEPT_APART).values_list(
                "email_digest", flat=True
            )
        )
        pending = set(
            LinkReview.objects.filter(group=group, status=ReviewStatus.PENDING).values_list("email_digest", flat=True)
        )
    fresh = {}  # digest -> customer ids: no customer linked yet, no pending review (batched)
    for digest, customers in candidates.items():
        if digest in kept_apart:
            continue
        stores = {c.merchant_id for c in customers}
        unlinked = [c for c in customers if not c.shared_customer_id]
        if len(stores) < 2 or not unlinked:
            continue
        reason = _ambiguity(customers)
        if reason:
            report.reviews += _review_open(group, digest, customers, reason)
            continue
        if len(unlinked) == len(customers) and digest not in pending:
            fresh[digest] = [c.pk for c in customers]
            if len(fresh) == batch:
                _link_fresh(group, merchants, fresh, report)
                fresh = {}
            continue
        _link_one(group, digest, [c.pk for c in customers], len(unlinked), report)
    _link_fresh(group, merchants, fresh, report)
    return report


def _link_fresh(group, merchants, items: dict[str, list[str]], report: LinkReport) -> None:
    """Link one batch of emails read as all unlinked: set-based where nothing changed meanwhile."""
    if not items:
        return
    with scopes_disabled():
        existing = set(
            SharedAccount.objects.filter(group=group, email_digest__in=list(items)).values_list(
                "email_digest", flat=True
            )
        )
    batched = {digest: ids for digest, ids in items.items() if digest not in existing}
    # An account exists already, or a customer was linked meanwhile: the per-email path.
    later = [digest for digest in items if digest in existing] + _link_many_or_split(group, merchants, batched, report)
    for digest in later:
        _link_one(group, digest, items[digest], len(items[digest]), report)


def _link_many_or_split(group, merchants, items: dict[str, list[str]], report: LinkReport) -> list[str]:
    """`_link_many`, and when its transaction fails, the same in halves down to single emails.

    Returns the emails left for the per-email path (their customers changed since they were read).
    """
    if not items:
        return []
    try:
        deferred = _link_many(group=group, items=items, merchants=merchants)
    except (DatabaseError, ApplicationError) as exc:
        if len(items) == 1:
            logger.warning("multi-store link of one email in group %s failed: %r", group.pk, exc)
            report.failed += 1
            return []
        logger.info("multi-store link of %s emails failed (%s); retrying in halves", len(items), type(exc).__name__)
        digests = list(items)
        half = len(digests) // 2
        return [
            digest
            for part in (digests[:half], digests[half:])
            for digest in _link_many_or_split(group, merchants, {d: items[d] for d in part}, report)
        ]
    for digest, customer_ids in items.items():
        if digest not in deferred:
            report.linked += len(customer_ids)
            report.accounts_created += 1
    return deferred


def _link_one(group, digest: str, customer_ids: list[str], joining: int, report: LinkReport) -> None:
    """`_link` for one email; an error is logged and counted, the other emails go on."""
    try:
        created = _link(group=group, digest=digest, customer_ids=customer_ids)
    except (DatabaseError, ApplicationError) as exc:
        logger.warning("multi-store link of one email in group %s failed: %r", group.pk, exc)
        report.failed += 1
        return
    report.linked += joining
    report.accounts_created += int(created)


def _ambiguity(customers) -> str:
    per_store = defaultdict(int)
    for customer in customers:
        per_store[customer.merchant_id] += 1
    if any(count > 1 for count in per_store.values()):
        return "duplicate_in_store"
    names = {c.name for c in customers if c.name}
    if len(names) > 1:
        return "name_mismatch"
    accounts = {c.shared_customer_id for c in customers if c.shared_customer_id}
    if len(accounts) > 1:
        return "linked_elsewhere"
    return ""


@transaction.atomic
def _review_open(group, digest, customers, reason) -> int:
    review, created = LinkReview.objects.get_or_create(
        group=group, email_digest=digest, status=ReviewStatus.PENDING, defaults={"reason": reason}
    )
    review.customers.add(*[c.pk for c in customers])
    return int(created)


def _merge_into(account, customers, total, lifetime, version, shared_tiers, tiers, now) -> list[PointsTransaction]:
    """Bring each locked customer to the merged balance (and shared tier) and link it to the
    account; return their `adjust` entries (none for a customer already at the balance)."""
    entries = []
    for customer in customers:
        delta = total - customer.points_balance
        lifetime_delta = lifetime - customer.lifetime_points if shared_tiers else 0
        balance = apply_to_customer(customer, delta, lifetime_delta, tiers, shared_tiers)
        if delta:
            entries.append(
                mirror_entry(
                    customer,
                    points=delta,
                    balance_after=balance,
                    key=f"multistore:link:{account.pk}:{version}",
                    metadata={LINK_KEY: account.pk},
                    reason="multi-store link",
                )
            )
        customer.shared_customer_id = account.pk
        customer.updated_at = now
    return entries


def _link_entries(account, joining, before: dict) -> list[SharedLedgerEntry]:
    """The account's `link` entry per joining customer, carrying its own balance before the link."""
    running, shared_entries = account.points_balance, []
    for customer in joining:
        running += before[customer.pk]
        shared_entries.append(
            SharedLedgerEntry(
                account=account,
                kind=SharedEntryKind.LINK,
                source_merchant_id=customer.merchant_id,
                source_customer=customer,
                points=before[customer.pk],
                balance_after=running,
            )
        )
    return shared_entries


@transaction.atomic
def _link(*, group, digest: str, customer_ids: list[str]) -> bool:
    """Join these customers (and the shared account of any already linked one) into one account.

    The shared balance becomes the sum of the joining customers' balances plus the account's;
    every linked customer gets an `adjust` entry bringing its balance to it (the merge of the
    stores' own histories), and the account a `link` entry per joining customer.
    """
    with scopes_disabled():
        preview = list(Customer.objects.filter(pk__in=customer_ids).values_list("shared_customer_id", flat=True))
        existing_ids = sorted({sid for sid in preview if sid})
        if len(existing_ids) > 1:
            raise Conflict(_("These customers are already linked to different shared customers."))
        created = False
        if existing_ids:
            account = lock_accounts(existing_ids)[existing_ids[0]]
        else:
            account = SharedAccount.objects.filter(group=group, email_digest=digest).first() if digest else None
            if account is None:
                account = SharedAccount.objects.create(group=group, email_digest=digest)
                created = True
            account = lock_accounts([account.pk])[account.pk]
        customers = list(
            Customer.objects.select_for_update()
            .filter(Q(pk__in=set(customer_ids)) | Q(shared_customer_id=account.pk))
            .select_related("merchant")
            .order_by("pk")
        )
        joining = [c for c in customers if c.shared_customer_id != account.pk]
        if not joining:
            return created
        taken = set(
            Customer.objects.filter(
                shared_customer_id=account.pk, merchant_id__in=[c.merchant_id for c in joining]
            ).values_list("merchant_id", flat=True)
        )
        if taken or len({c.merchant_id for c in joining}) != len(joining):
            raise Conflict(_("A store can link only one customer to a shared customer."))
        now = timezone.now()
        before = {c.pk: c.points_balance for c in joining}
        total = account.points_balance + sum(before.values())
        lifetime = account.lifetime_points + sum(c.lifetime_points for c in joining)
        shared_tiers = group.sharing.get("tiers", True)
        version = account.version + 1
        entries = _merge_into(account, customers, total, lifetime, version, shared_tiers, {}, now)
        shared_entries = _link_entries(account, joining, before)
        PointsTransaction.objects.bulk_create(entries)
        Customer.objects.bulk_update(
            customers,
            ["points_balance", "lifetime_points", "vip_tier", "lifecycle_stage", "shared_customer_id", "updated_at"],
        )
        SharedLedgerEntry.objects.bulk_create(shared_entries)
        account.points_balance, account.lifetime_points, account.version, account.changed_at = (
            total,
            lifetime,
            version,
            now,
        )
        account.save(update_fields=["points_balance", "lifetime_points", "version", "changed_at"])
        for customer in customers:
            stream_append_on_commit(
                merchant_id=customer.merchant_id,
                key=f"points:{customer.pk}",
                data={"customer_id": customer.pk, "points_balance": total, "shared_customer_id": account.pk},
            )
        for customer in joining:
            with merchant_scope(customer.merchant_id):
                audit_record(
                    merchant=customer.merchant,
                    action="multi_store_sync",
                    target=customer,
                    metadata={"event": "customer_linked", "shared_customer_id": account.pk, "points_balance": total},
                )
    return created


# The fields of a store customer that linking reads and writes (the rest is never loaded).
_LINK_FIELDS = (
    "id",
    "merchant",
    "points_balance",
    "lifetime_points",
    "vip_tier",
    "lifecycle_stage",
    "shared_customer_id",
)
_LINKED_FIELDS = [
    "points_balance",
    "lifetime_points",
    "vip_tier",
    "lifecycle_stage",
    "shared_customer_id",
    "updated_at",
]


@transaction.atomic
def _link_many(*, group, items: dict[str, list[str]], merchants: dict | None = None) -> list[str]:
    """`_link` for many emails whose customers are all unlinked, in one transaction with
    set-based writes: the same accounts, entries, balances, tiers, audit rows and streams.

    A fixed number of statements whatever the batch size: insert the accounts, lock the
    customers, read the tiers, insert the `adjust` entries, update the customers (one UPDATE …
    FROM VALUES), insert the `link` entries, update the accounts, insert the audit rows.
    Lock order as everywhere: the new accounts are created first (a concurrent link of the
    same email waits on the unique email index, or fails it and the batch is split), then the
    store customers are locked in id order. An email whose customers changed since they were
    read (one linked meanwhile, or gone) is left out and returned for the per-email `_link`.
    Mirrors are written directly, without `ledger_entries_written`, as `_link` does.
    """
    if not items:
        return []
    with scopes_disabled():
        accounts = {digest: SharedAccount(group=group, email_digest=digest) for digest in items}
        SharedAccount.objects.bulk_create(list(accounts.values()))
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update()
            .filter(pk__in={pk for ids in items.values() for pk in ids})
            .only(*_LINK_FIELDS)
            .order_by("pk")
        }
        deferred, linking = [], []
        for digest, customer_ids in items.items():
            customers = sorted((locked[pk] for pk in set(customer_ids) if pk in locked), key=lambda c: c.pk)
            if (
                len(customers) != len(set(customer_ids))
                or any(c.shared_customer_id for c in customers)
                or len({c.merchant_id for c in customers}) != len(customers)
            ):
                deferred.append(digest)
            else:
                linking.append((accounts[digest], customers))
        if deferred:
            SharedAccount.objects.filter(pk__in=[accounts[digest].pk for digest in deferred]).delete()
        store_ids = {c.merchant_id for _account, customers in linking for c in customers}
        if merchants is None or not store_ids <= merchants.keys():
            merchants = Merchant.objects.in_bulk(store_ids)
        now = timezone.now()
        shared_tiers = group.sharing.get("tiers", True)
        tiers = {store_id: [] for store_id in store_ids}  # what apply_to_customer would read per store
        if shared_tiers and store_ids:
            for tier in VipTier.objects.filter(merchant_id__in=store_ids).order_by("-min_lifetime_points"):
                tiers[tier.merchant_id].append(tier)
        entries, shared_entries, audits = [], [], []
        streams: dict[str, list] = defaultdict(list)
        touched = []
        for account, customers in linking:
            before = {c.pk: c.points_balance for c in customers}
            total = sum(before.values())
            lifetime = sum(c.lifetime_points for c in customers)
            version = account.version + 1
            shared_entries += _link_entries(account, customers, before)
            entries += _merge_into(account, customers, total, lifetime, version, shared_tiers, tiers, now)
            for customer in customers:
                streams[customer.merchant_id].append(
                    (
                        f"points:{customer.pk}",
                        {"customer_id": customer.pk, "points_balance": total, "shared_customer_id": account.pk},
                    )
                )
                audits.append(
                    audit_entry(
                        merchant=merchants[customer.merchant_id],
                        action="multi_store_sync",
                        target=customer,
                        metadata={
                            "event": "customer_linked",
                            "shared_customer_id": account.pk,
                            "points_balance": total,
                        },
                    )
                )
                touched.append(customer)
            account.points_balance, account.lifetime_points, account.version, account.changed_at = (
                total,
                lifetime,
                version,
                now,
            )
        PointsTransaction.objects.bulk_create(entries)
        rows_update(touched, _LINKED_FIELDS)
        SharedLedgerEntry.objects.bulk_create(shared_entries)
        rows_update(
            [account for account, _customers in linking], ["points_balance", "lifetime_points", "version", "changed_at"]
        )
        AuditLog.objects.bulk_create(audits)
    for merchant_id, appends in streams.items():
        stream_append_many_on_commit(merchant_id=merchant_id, entries=appends)
    return deferred


def _native_balance(customer_id: str) -> int:
    """What the store's own ledger moved for this customer (its entries minus multi-store ones)."""
    rows = PointsTransaction.objects.filter(customer_id=customer_id).values_list("points", "metadata")
    return sum(points for points, metadata in rows if not (metadata or {}).keys() & {MIRROR_KEY, LINK_KEY})


@transaction.atomic
def shared_customer_unlink(*, merchant, customer_id: str, actor=None) -> Customer:
    """Take one store's customer out of its shared customer, conserving points.

    The customer keeps what its own store's ledger earned net of what it spent (between zero
    and the shared balance); the rest stays with the other linked customers. Just after a link
    with no activity this restores every store's balance exactly.
    """
    with scopes_disabled():
        preview = Customer.objects.filter(merchant=merchant, pk=customer_id).first()
        if preview is None:
            raise NotFound(_("Customer not found."))
        if not preview.shared_customer_id:
            return preview
        account = lock_accounts([preview.shared_customer_id]).get(preview.shared_customer_id)
        customers = list(
            Customer.objects.select_for_update()
            .filter(shared_customer_id=preview.shared_customer_id)
            .select_related("merchant")
            .order_by("pk")
        )
        leaving = next(c for c in customers if c.pk == customer_id)
        others = [c for c in customers if c.pk != customer_id]
        shared = account.points_balance
        keep = min(max(_native_balance(leaving.pk), 0), shared)
        version = account.version + 1
        now = timezone.now()
        entries = []
        for customer, delta in [(leaving, keep - shared)] + [(c, -keep) for c in others]:
            balance = apply_to_customer(customer, delta, 0, {}, False)
            if delta:
                entries.append(
                    mirror_entry(
                        customer,
                        points=delta,
                        balance_after=balance,
                        key=f"multistore:unlink:{account.pk}:{version}",
                        metadata={LINK_KEY: account.pk, "unlinked": leaving.pk},
                        reason="multi-store unlink",
                    )
                )
            customer.updated_at = now
        leaving.shared_customer_id = None
        PointsTransaction.objects.bulk_create(entries)
        Customer.objects.bulk_update(customers, ["points_balance", "shared_customer_id", "updated_at"])
        account.points_balance -= keep
        account.version, account.changed_at = version, now
        account.save(update_fields=["points_balance", "version", "changed_at"])
        SharedLedgerEntry.objects.create(
            account=account,
            kind=SharedEntryKind.UNLINK,
            source_merchant_id=merchant.pk,
            source_customer=leaving,
            points=-keep,
            balance_after=account.points_balance,
        )
    with merchant_scope(merchant):
        audit_record(
            merchant=merchant,
            actor=actor,
            action="multi_store_sync",
            target=leaving,
            metadata={"event": "customer_unlinked", "shared_customer_id": account.pk, "points_balance": keep},
        )
    for customer in customers:
        stream_append_on_commit(
            merchant_id=customer.merchant_id,
            key=f"points:{customer.pk}",
            data={"customer_id": customer.pk, "points_balance": customer.points_balance},
        )
    return leaving


def link_review_resolve(*, merchant, actor, review_id: str, decision: str) -> LinkReview:
    """Merge the customers of a review into one shared customer, or keep them apart for good."""
    if decision not in (ReviewStatus.MERGED, ReviewStatus.KEPT_APART):
        raise ValidationFailed(details={"decision": [str(_("Choose merge or keep apart."))]})
    group = group_for(merchant)
    with transaction.atomic():
        review = LinkReview.objects.select_for_update().filter(group=group, pk=review_id).first()
        if review is None:
            raise NotFound(_("This review does not exist."))
        if review.status != ReviewStatus.PENDING:
            raise Conflict(_("This review was already resolved."))
        if decision == ReviewStatus.MERGED:
            with scopes_disabled():
                customer_ids = list(review.customers.values_list("pk", flat=True))
            _link(group=group, digest=review.email_digest, customer_ids=customer_ids)
        review.status, review.resolved_by, review.resolved_at = decision, actor, timezone.now()
        review.save(update_fields=["status", "resolved_by", "resolved_at"])
        _audit(merchant, actor, f"review_{decision}", target=review, group_id=group.pk)
    return review


# --- shared referral codes ------------------------------------------------------------------------


def shared_referral_resolve(*, merchant, code: str, customer=None):
    """A referral code another store of the merchant's group issued, when the group shares
    referrals (registered with the core's `referral_resolver_register`). None outside a group,
    with sharing off, or for a store outside the group. A shopper's own code from another store
    (the same shared customer) is a self-referral."""
    member = _membership(merchant)
    if member is None or not member.group.sharing.get("referrals", True):
        return None
    with scopes_disabled():
        others = [m for m in _member_ids(member.group) if m != getattr(merchant, "pk", merchant)]
        link = (
            ReferralLink.objects.filter(merchant_id__in=others, is_active=True, code__in={code, code.upper()})
            .select_related("customer")
            .order_by("-created_at")
            .first()
        )
    if link is None:
        return None
    shared_id = getattr(customer, "shared_customer_id", None)
    if shared_id and link.customer.shared_customer_id == shared_id:
        raise SelfReferralRefused()
    return link


# --- copy sync --------------------------------------------------------------------------------


@dataclass
class StoreSync:
    store_id: str
    status: str
    error: str = ""


@dataclass
class PointsSyncResult:
    status: str
    points_balance: int
    error: str | None
    stores: list[StoreSync] = field(default_factory=list)


def _copy_sync(store: Merchant, customer_ids: list[str], changed_at=None) -> tuple[str, str]:
    """Sync these customers' metafield copies in one store; ("synced"|"failed", error code)."""
    from apps.shopify.graphql import ShopifyError
    from apps.shopify.metafields import customer_metafields_sync

    try:
        with merchant_scope(store):
            report = customer_metafields_sync(merchant=store, customers=customer_ids)
    except ShopifyError as exc:
        logger.warning("multi-store copy sync failed for store %s: %s", store.pk, type(exc).__name__)
        return "failed", "shopify_unavailable"
    if report.failed:
        return "failed", "copy_refused"
    if changed_at is not None:
        group = _membership(store)
        if group is not None:
            lag = max(int((timezone.now() - changed_at).total_seconds() * 1000), 0)
            SyncLagSample.across_stores.create(group_id=group.group_id, merchant=store, lag_ms=lag)
    return "synced", ""


def points_sync(*, merchant, customer, store_ids: list[str] | None, locale: str | None, actor=None) -> PointsSyncResult:
    """Bring the listed stores' copies of a shared customer up to the shared ledger.

    `store_ids` are member merchant ids or shop domains; empty means every member store. Stores
    outside the caller's group are refused (nothing is written). Shopify is called outside any
    transaction; the audit, streams, notification and PostHog event follow in one transaction.
    """
    group = group_for(merchant)
    with scopes_disabled():
        members = {
            m.merchant.pk: m.merchant
            for m in StoreGroupMember.across_stores.filter(group=group).select_related("merchant")
        }
        by_domain = {m.shop_domain: m for m in members.values()}
        wanted = []
        for store_id in store_ids or list(members):
            store = members.get(store_id) or by_domain.get(store_id)
            if store is None:
                raise ValidationFailed(
                    details={"store_ids": [str(_("%(store)s is not a store of this group.") % {"store": store_id})]}
                )
            wanted.append(store)
        account = SharedAccount.objects.filter(group=group, pk=customer.shared_customer_id or "").first()
        if account is None:
            raise ValidationFailed(details={"customer_id": [str(_("This customer is not shared across stores yet."))]})
        linked = dict(
            Customer.objects.filter(shared_customer_id=account.pk, merchant_id__in=[s.pk for s in wanted]).values_list(
                "merchant_id", "pk"
            )
        )
    outcomes = []
    for store in dict.fromkeys(wanted):
        if store.pk not in linked:
            outcomes.append(StoreSync(store.pk, "skipped", "no_linked_customer"))
            continue
        status, error = _copy_sync(store, [linked[store.pk]], changed_at=account.changed_at)
        outcomes.append(StoreSync(store.pk, status, error))
    failed = [o for o in outcomes if o.status == "failed"]
    status = "synced" if not failed else ("partial" if len(failed) < len(outcomes) else "failed")
    error = failed[0].error if failed else None
    with transaction.atomic(), merchant_scope(merchant):
        fresh = Customer.objects.get(pk=customer.pk)
        audit_record(
            merchant=merchant,
            actor=actor,
            action="multi_store_sync",
            target=fresh,
            metadata={
                "event": "points_sync",
                "shared_customer_id": account.pk,
                "stores": [{"store_id": o.store_id, "status": o.status, "error": o.error} for o in outcomes],
                "points_balance": fresh.points_balance,
            },
        )
        stream_append_on_commit(
            merchant_id=merchant.pk,
            key=f"points:{fresh.pk}",
            data={"customer_id": fresh.pk, "points_balance": fresh.points_balance, "shared_customer_id": account.pk},
        )
        stream_append_on_commit(
            merchant_id=merchant.pk,
            key=f"tiers:{fresh.pk}",
            data={"customer_id": fresh.pk, "vip_tier_id": fresh.vip_tier_id, "shared_customer_id": account.pk},
        )
        if status != "failed":
            notify(
                merchant=merchant,
                type="points_shared",
                idempotency_key=f"points_shared:{account.pk}:{merchant.pk}",
                customer=fresh,
                locale=locale,
                context={"points_balance": fresh.points_balance, "store_count": len(members)},
            )
        track_on_commit(
            "multi_store_sync",
            merchant=merchant,
            distinct_id=fresh.pk,
            properties={"stores": len(outcomes), "status": status},
        )
    return PointsSyncResult(status=status, points_balance=fresh.points_balance, error=error, stores=outcomes)


def group_copies_sync(*, group_id: str, merchant_id: str, after: str = "", limit: int = 500) -> tuple[int, str]:
    """Sync one page of a member store's linked customers; returns (synced, last id) for the next page."""
    with scopes_disabled():
        store = Merchant.objects.get(pk=merchant_id)
        page = list(
            Customer.objects.filter(merchant=store, shared_customer_id__isnull=False, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
    if not page:
        return 0, ""
    _copy_sync(store, page)
    return len(page), page[-1]


def group_reconcile(*, group_id: str) -> dict:
    """Repair every stale copy of every member store (the metafields sweep, store by store)."""
    from apps.shopify.metafields import customer_metafields_sweep

    results = {}
    with scopes_disabled():
        stores = list(Merchant.objects.filter(store_group_membership__group_id=group_id).order_by("pk"))
    for store in stores:
        with merchant_scope(store):
            report = customer_metafields_sweep(merchant=store)
        results[store.pk] = report.as_dict()
    return results


def ledger_totals(*, group_id: str) -> dict:
    """Shared balances against the sum of their shared entries (for checks and the benchmark)."""
    rows = SharedLedgerEntry.objects.filter(account__group_id=group_id).values("account").annotate(s=Sum("points"))
    return {row["account"]: row["s"] for row in rows}
