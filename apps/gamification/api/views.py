"""Merchant API of advanced gamification (scope `admin:gamification`) and the shoppers' API
under the app proxy (scope `customer:frontend`)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.api.idempotency import idempotent
from apps.core.models import Customer
from apps.shopify.proxy import ShopperApiView

from .. import selectors, services
from ..models import ActionType, StreakPeriod

SCOPE = "admin:gamification"
SHOPPER_SCOPE = "customer:frontend"


def _check_merchant_id(request, data) -> None:
    """The seeds' `merchant_id` input is accepted but never trusted: it must be the caller's shop."""
    given = data.pop("merchant_id", None)
    if given is not None and given != request.merchant.pk:
        raise errors.NotFound()


def _limit(request, default: int = 10) -> int:
    try:
        value = int(request.query_params.get("limit", default))
    except (TypeError, ValueError):
        value = default
    return max(1, min(value, settings.GAMIFICATION_LEADERBOARD_MAX_LIMIT))


# --- merchant ----------------------------------------------------------------------------------


class StreakRecordApi(MerchantApiView):
    """The seeds' `POST /v1/api/gamification/streak`: record a qualifying action for a customer."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        customer_id = serializers.CharField(max_length=40)
        action_type = serializers.ChoiceField(choices=ActionType.choices)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        result = services.streak_record(
            merchant=request.merchant,
            customer_id=data["customer_id"],
            action_type=data["action_type"],
            locale=request.locale,
            actor=request.staff,
        )
        return self.ok(streak_count=result["streak_count"], badge=result["badge"])


class TeamLeaderboardApi(MerchantApiView):
    """The seeds' `POST /v1/api/team-leaderboards` (set a team's cycle score) and the ranking."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        merchant_id = serializers.CharField(max_length=40, required=False)
        team_id = serializers.CharField(max_length=40)
        score = serializers.IntegerField(min_value=0, max_value=2_000_000_000)
        cycle = serializers.CharField(max_length=16)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        cycle = request.query_params.get("cycle") or selectors.current_cycle(merchant=request.merchant)
        services.cycle_clean(cycle)
        ranking = selectors.team_ranking(
            merchant=request.merchant, cycle=cycle, limit=_limit(request), locale=request.locale
        )
        return self.ok(cycle=cycle, ranking=ranking, chart=selectors.team_ranking_chart(ranking))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        _check_merchant_id(request, data)
        row = services.team_leaderboard_update(
            merchant=request.merchant,
            actor=request.staff,
            team_id=data["team_id"],
            score=data["score"],
            cycle=data["cycle"],
            locale=request.locale,
        )
        return self.ok(leaderboard_id=row.pk)


class BadgeInput(StrictSerializer):
    name = serializers.JSONField()
    icon = serializers.CharField(max_length=64, required=False, default="star")
    rule = serializers.JSONField()
    is_active = serializers.BooleanField(required=False, default=True)
    locale = LocaleField()


class BadgeListApi(MerchantApiView):
    """List the shop's badges, or define one."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(badges=selectors.badge_list(merchant=request.merchant, locale=request.locale))

    @extend_schema(request=BadgeInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(BadgeInput, request.data)
        badge = services.badge_create(
            merchant=request.merchant,
            actor=request.staff,
            name=data["name"],
            icon=data["icon"],
            rule=data["rule"],
            is_active=data["is_active"],
        )
        return self.ok(status=201, badge=selectors.badge_display(badge, request.locale))


class BadgeDetailApi(MerchantApiView):
    """Edit a badge (live badges too: earned ones stay), or archive it."""

    required_scope = SCOPE

    @extend_schema(request=BadgeInput, responses=OpenApiTypes.OBJECT)
    def put(self, request, badge_id: str):
        data = self.validated(BadgeInput, request.data)
        badge = services.badge_update(
            merchant=request.merchant,
            actor=request.staff,
            badge_id=badge_id,
            name=data["name"],
            icon=data["icon"],
            rule=data["rule"],
            is_active=data["is_active"],
        )
        return self.ok(badge=selectors.badge_display(badge, request.locale))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def delete(self, request, badge_id: str):
        badge = services.badge_archive(merchant=request.merchant, actor=request.staff, badge_id=badge_id)
        return self.ok(badge=selectors.badge_display(badge, request.locale))


class SettingsApi(MerchantApiView):
    """Streak settings: the period (week or month) and the actions that count."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        streak_period = serializers.ChoiceField(choices=StreakPeriod.choices)
        streak_actions = serializers.ListField(
            child=serializers.ChoiceField(choices=ActionType.choices), min_length=1, max_length=len(ActionType.values)
        )
        streak_notify_min = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=2)
        locale = LocaleField()

    @staticmethod
    def _out(row) -> dict:
        return {
            "streak_period": row.streak_period,
            "streak_actions": row.streak_actions,
            "streak_notify_min": row.streak_notify_min,
        }

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(settings=self._out(selectors.gamification_settings_get(request.merchant)))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        data.pop("locale", None)
        row = services.gamification_settings_update(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(settings=self._out(row))


class TeamListApi(MerchantApiView):
    """List teams (of a cycle), or define one."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        name = serializers.JSONField()
        cycle = serializers.CharField(max_length=16)
        is_open = serializers.BooleanField(required=False, default=True)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        cycle = request.query_params.get("cycle")
        return self.ok(teams=selectors.team_list(merchant=request.merchant, cycle=cycle, locale=request.locale))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        team = services.team_create(
            merchant=request.merchant,
            actor=request.staff,
            name=data["name"],
            cycle=data["cycle"],
            is_open=data["is_open"],
        )
        return self.ok(status=201, team_id=team.pk, cycle=team.cycle)


class TeamMembersApi(MerchantApiView):
    """Assign customers to a team."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        customer_ids = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=1000)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, team_id: str):
        data = self.validated(self.InputSerializer, request.data)
        count = services.team_members_assign(
            merchant=request.merchant, actor=request.staff, team_id=team_id, customer_ids=data["customer_ids"]
        )
        return self.ok(assigned=count)


class CustomerGamificationApi(MerchantApiView):
    """One customer's badges, streak and team (support desks, the merchant page)."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, customer_id: str):
        customer = Customer.objects.filter(merchant=request.merchant, pk=customer_id).first()
        if customer is None:
            raise errors.NotFound()
        cycle = selectors.current_cycle(merchant=request.merchant)
        return self.ok(
            badges=selectors.customer_badge_list(merchant=request.merchant, customer=customer, locale=request.locale),
            streak=selectors.streak_get(merchant=request.merchant, customer=customer),
            team=selectors.team_rank_for_customer(
                merchant=request.merchant, customer=customer, cycle=cycle, locale=request.locale
            ),
        )


# --- shoppers (app proxy) -----------------------------------------------------------------------


class ShopperBadgesApi(ShopperApiView):
    """The logged-in shopper's badges, named in the widget's locale."""

    required_scope = SHOPPER_SCOPE
    rate_limit_group = "gamification"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(
            badges=selectors.customer_badge_list(
                merchant=request.merchant, customer=request.customer, locale=request.locale
            )
        )


class ShopperStreakApi(ShopperApiView):
    required_scope = SHOPPER_SCOPE
    rate_limit_group = "gamification"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(streak=selectors.streak_get(merchant=request.merchant, customer=request.customer))


class ShopperTeamRankApi(ShopperApiView):
    """The top teams of the current cycle and the shopper's team rank (Chart.js bar data)."""

    required_scope = SHOPPER_SCOPE
    rate_limit_group = "gamification"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        cycle = selectors.current_cycle(merchant=request.merchant)
        if not selectors.teams_on_storefront(request.merchant):  # the `team_leaderboards` beta flag
            return self.ok(cycle=cycle, ranking=[], team=None, teams=[], chart=selectors.team_ranking_chart([]))
        ranking = selectors.team_ranking(
            merchant=request.merchant, cycle=cycle, limit=_limit(request), locale=request.locale
        )
        return self.ok(
            cycle=cycle,
            ranking=ranking,
            team=selectors.team_rank_for_customer(
                merchant=request.merchant, customer=request.customer, cycle=cycle, locale=request.locale
            ),
            teams=[
                team
                for team in selectors.team_list(merchant=request.merchant, cycle=cycle, locale=request.locale)
                if team["is_open"]
            ],
            chart=selectors.team_ranking_chart(ranking),
        )


class ShopperTeamJoinApi(ShopperApiView):
    """Join an open team of the current cycle from the storefront widget."""

    required_scope = SHOPPER_SCOPE
    rate_limit_group = "gamification"

    class InputSerializer(StrictSerializer):
        team_id = serializers.CharField(max_length=40)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        membership = services.team_join(merchant=request.merchant, customer=request.customer, team_id=data["team_id"])
        return self.ok(team_id=membership.team_id, cycle=membership.cycle)
