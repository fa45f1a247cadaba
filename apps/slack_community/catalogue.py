"""The beta features of LoyalNest Collective: which flag gates which feature.

Each key is read by the feature's own code through `selectors.beta_feature_enabled`, so a flag
switched on really changes what that merchant gets (and nobody else). Keys are the seeds'
spelling (`rfm_advanced`, `streaks`) so they match the `slack_beta_features` shop metafield.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class BetaFeature:
    key: str
    label: object  # lazy: shown on the merchant page and in the Slack announcement
    description: object
    gated_in: str  # the app whose code reads the flag
    gates: str = ""  # what exactly the flag switches on (for developers; docs/SLACK_COMMUNITY.md)


BETA_FEATURES = {
    feature.key: feature
    for feature in (
        BetaFeature(
            key="rfm_advanced",
            label=_("Neural-network churn model"),
            description=_(
                "Automatic churn model selection also trains a neural network and keeps it when it predicts better."
            ),
            gated_in="rfm",
            gates="the neural network in the churn model's automatic choice (apps/rfm/churn.py)",
        ),
        BetaFeature(
            key="streaks",
            label=_("Purchase streaks"),
            description=_("Reward customers who keep buying, cycle after cycle."),
            gated_in="gamification",
            gates="switching the streak period to weekly (gamification_settings_update); monthly is for everyone",
        ),
        BetaFeature(
            key="team_leaderboards",
            label=_("Team leaderboards"),
            description=_("Customers compete in teams on a monthly leaderboard."),
            gated_in="gamification",
            gates="shopper-facing teams: storefront team join, team ranks in the widget and team-rank endpoint",
        ),
        BetaFeature(
            key="google_wallet",
            label=_("Google Wallet passes"),
            description=_("Customers save their points card to Google Wallet as well as Apple Wallet."),
            gated_in="wallet",
            gates="Google Wallet pass exports (wallet_pass_export); Apple Wallet is for everyone",
        ),
    )
}
