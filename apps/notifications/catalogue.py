"""Every notification the seven features send: who gets it, through which channels, and its text.

Subjects and bodies are gettext message ids (`%(name)s` placeholders only), translated into the
recipient's locale when the notification is sent (apps.notifications.rendering). Type keys
follow the seeds' event names where one exists, so a reader can grep from the spec to here.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from .models import Channel

CUSTOMER = "customer"  # a shopper: email (Klaviyo) and SMS (Postscript), marketing consent needed
STAFF = "staff"  # a merchant's staff member: email through LoyalNest's Klaviyo
MERCHANT = "merchant"  # the merchant's Slack (webhook or LoyalNest Collective channel)


@dataclass(frozen=True)
class NotificationType:
    key: str
    label: object  # lazy, shown to merchants in the dashboard and the preferences API
    audience: str
    channels: tuple[str, ...]
    subject: str
    body: str


TYPES = {
    t.key: t
    for t in (
        NotificationType(
            key="points_shared",
            label=_("Points shared across stores"),
            audience=CUSTOMER,
            channels=(Channel.EMAIL, Channel.SMS),
            subject=gettext_noop("Your %(shop_name)s points now work in every store"),
            body=gettext_noop(
                "Good news: your %(points_balance)s points can now be used in all %(store_count)s stores of "
                "%(shop_name)s."
            ),
        ),
        NotificationType(
            key="streak_earned",
            label=_("Purchase streak earned"),
            audience=CUSTOMER,
            channels=(Channel.EMAIL, Channel.SMS),
            subject=gettext_noop("You are on a %(streak_count)s-purchase streak!"),
            body=gettext_noop(
                "Thank you for shopping with %(shop_name)s: you have made %(streak_count)s purchases in a row. "
                "Keep the streak going to earn more rewards."
            ),
        ),
        NotificationType(
            key="badge_earned",
            label=_("Badge earned"),
            audience=CUSTOMER,
            channels=(Channel.EMAIL, Channel.SMS),
            subject=gettext_noop("You earned the %(badge)s badge"),
            body=gettext_noop("Congratulations! You earned the %(badge)s badge at %(shop_name)s."),
        ),
        NotificationType(
            key="wallet_exported",
            label=_("Wallet pass ready"),
            audience=CUSTOMER,
            channels=(Channel.EMAIL, Channel.SMS),
            subject=gettext_noop("Your %(shop_name)s wallet pass is ready"),
            body=gettext_noop(
                "Your loyalty card with %(points_balance)s points is ready. Add it to your wallet: %(pass_url)s"
            ),
        ),
        NotificationType(
            key="churn_risk_nudge",
            label=_("We miss you (churn risk)"),
            audience=CUSTOMER,
            channels=(Channel.EMAIL, Channel.SMS),
            subject=gettext_noop("We miss you at %(shop_name)s"),
            body=gettext_noop(
                "It has been a while! You still have %(points_balance)s points waiting for you at %(shop_name)s."
            ),
        ),
        NotificationType(
            key="merchant_referral_status",
            label=_("Merchant referral status"),
            audience=STAFF,
            channels=(Channel.EMAIL,),
            subject=gettext_noop("Your referral of %(referred_shop)s: %(status)s"),
            body=gettext_noop(
                "The store %(referred_shop)s you referred to LoyalNest is now: %(status)s. Reward: %(reward)s."
            ),
        ),
        NotificationType(
            key="referral_completed",
            label=_("Referral completed"),
            audience=MERCHANT,
            channels=(Channel.SLACK,),
            subject=gettext_noop("Referral completed"),
            body=gettext_noop("%(referred_shop)s joined LoyalNest through your referral. Your reward: %(reward)s."),
        ),
        NotificationType(
            key="beta_feature_released",
            label=_("Beta feature released"),
            audience=MERCHANT,
            channels=(Channel.SLACK,),
            subject=gettext_noop("New beta feature: %(feature)s"),
            body=gettext_noop("%(feature)s is now available to your store as a beta feature in LoyalNest."),
        ),
        NotificationType(
            key="slack_joined",
            label=_("Welcome to LoyalNest Collective"),
            audience=MERCHANT,
            channels=(Channel.SLACK,),
            subject=gettext_noop("Welcome to LoyalNest Collective"),
            body=gettext_noop(
                "%(shop_name)s joined LoyalNest Collective: share tips with other merchants and try beta features "
                "first."
            ),
        ),
    )
}
