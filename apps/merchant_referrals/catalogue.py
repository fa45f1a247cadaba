"""Reward ids and their labels, the referral link URL, and localized labels for notifications."""

from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from apps.core.locales import LOCALES, django_language

from .models import ReferralStatus

REWARD_LABELS = {
    "1_month_free": _("1 month free"),
    "2_months_free": _("2 months free"),
    "welcome_credit": _("Welcome credit"),
}


def reward_label(reward_id: str):
    return REWARD_LABELS.get(reward_id, reward_id)


def advocate_reward() -> tuple[str, Decimal]:
    return settings.MERCHANT_REFERRALS_ADVOCATE_REWARD, Decimal(settings.MERCHANT_REFERRALS_ADVOCATE_REWARD_AMOUNT)


def welcome_reward() -> tuple[str, Decimal] | None:
    """The referred store's welcome reward, or None when not configured."""
    reward_id = settings.MERCHANT_REFERRALS_WELCOME_REWARD
    if not reward_id:
        return None
    return reward_id, Decimal(settings.MERCHANT_REFERRALS_WELCOME_REWARD_AMOUNT)


def referral_url(code: str) -> str:
    """The advocate's link on the app's host."""
    return f"{settings.APP_URL.rstrip('/')}/r/{code}"


def per_locale(label) -> dict:
    """A lazy label rendered in every locale: notifications pick the recipient's."""
    rendered = {}
    for locale in LOCALES:
        with translation.override(django_language(locale)):
            rendered[locale] = str(label)
    return rendered


def status_label(status: str):
    return ReferralStatus(status).label
