"""Validated forms for the few core fields LoyalNest staff may edit."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from apps.core.models import ProgramSettings, Reward, StaffRole, VipTier
from apps.core.rbac import ADMIN_SCOPES


def clean_json_object(value):
    """A JSON config must be an object; an empty box means an empty object."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError(_("Enter a JSON object, for example {}."), code="invalid")
    return value


class ChangeOnlyForm(forms.ModelForm):
    """A change form compares with the instance: no hidden "initial" inputs for callable
    defaults (JSON fields), so `changed_data`, and with it the audit row, is accurate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = False


class ProgramSettingsForm(ChangeOnlyForm):
    class Meta:
        model = ProgramSettings
        fields = [
            "points_per_currency_unit",
            "signup_points",
            "referral_advocate_points",
            "referral_friend_points",
            "multi_store_config",
            "theme_extension_config",
            "role_scopes",
        ]
        help_texts = {
            "role_scopes": lazy(
                lambda: (
                    _(
                        'Each role mapped to a list of scopes, e.g. {"support": ["admin:points"]}. '
                        "Allowed scopes: %(scopes)s. Roles left out keep their defaults; "
                        "the owner always holds every scope."
                    )
                    % {"scopes": ", ".join(ADMIN_SCOPES)}
                ),
                str,
            )(),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An empty object means "every role keeps its default scopes".
        self.fields["role_scopes"].required = False

    def clean_multi_store_config(self):
        return clean_json_object(self.cleaned_data.get("multi_store_config"))

    def clean_theme_extension_config(self):
        return clean_json_object(self.cleaned_data.get("theme_extension_config"))

    def clean_role_scopes(self):
        value = self.cleaned_data.get("role_scopes")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_("Enter a JSON object that maps each role to a list of scopes."), code="invalid")
        errors = []
        cleaned = {}
        for role, scopes in value.items():
            if role not in StaffRole.values:
                errors.append(
                    ValidationError(
                        _("Unknown role: %(role)s. Roles: %(roles)s."),
                        code="unknown_role",
                        params={"role": role, "roles": ", ".join(StaffRole.values)},
                    )
                )
                continue
            if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
                errors.append(
                    ValidationError(
                        _("The scopes of the %(role)s role must be a list of scope names."),
                        code="invalid",
                        params={"role": role},
                    )
                )
                continue
            unknown = sorted(set(scopes) - set(ADMIN_SCOPES))
            if unknown:
                errors.append(
                    ValidationError(
                        _("Unknown scope for the %(role)s role: %(scopes)s."),
                        code="unknown_scope",
                        params={"role": role, "scopes": ", ".join(unknown)},
                    )
                )
                continue
            if role == StaffRole.OWNER and set(scopes) != set(ADMIN_SCOPES):
                errors.append(
                    ValidationError(
                        _("The owner always holds every scope: %(scopes)s."),
                        code="owner_scopes",
                        params={"scopes": ", ".join(ADMIN_SCOPES)},
                    )
                )
                continue
            # Stored in the canonical order, without duplicates.
            cleaned[role] = [scope for scope in ADMIN_SCOPES if scope in scopes]
        if errors:
            raise ValidationError(errors)
        return cleaned


class VipTierForm(ChangeOnlyForm):
    class Meta:
        model = VipTier
        fields = ["name", "perks"]

    def clean_perks(self):
        return clean_json_object(self.cleaned_data.get("perks"))


class RewardForm(ChangeOnlyForm):
    class Meta:
        model = Reward
        fields = ["name", "is_active"]
