"""Google Wallet loyalty passes: one loyalty class per merchant, one loyalty object per customer,
and the "Save to Google Wallet" link (a JWT signed RS256 with the service-account key).

Pure: no database access. Labels carry every locale as translated values; Google shows the
one matching the phone.
"""

import re
import time

import jwt

from .content import PassContent
from .credentials import GoogleIssuer
from .strings import PASS_STRINGS

SAVE_URL = "https://pay.google.com/gp/v/save/"
_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _localized(key: str, default_locale: str, *, fill: str | None = None) -> dict:
    def value(locale):
        text = PASS_STRINGS[locale][key]
        return text.replace("%@", fill) if fill is not None else text

    return {
        "defaultValue": {"language": default_locale, "value": value(default_locale)},
        "translatedValues": [
            {"language": locale, "value": value(locale)} for locale in PASS_STRINGS if locale != default_locale
        ],
    }


def class_id(issuer: GoogleIssuer, merchant_id: str) -> str:
    return f"{issuer.issuer_id}.{_ID_SAFE.sub('_', merchant_id)}"


def object_id(issuer: GoogleIssuer, serial_number: str) -> str:
    return f"{issuer.issuer_id}.{_ID_SAFE.sub('_', serial_number)}"


def loyalty_class(content: PassContent, *, issuer: GoogleIssuer, logo_url: str) -> dict:
    """The merchant's loyalty class: programme name, logo and colour."""
    return {
        "id": class_id(issuer, content.merchant_id),
        "issuerName": content.merchant_name,
        "programName": content.merchant_name,
        "programLogo": {"sourceUri": {"uri": logo_url}},
        "hexBackgroundColor": content.background_color,
        "reviewStatus": "UNDER_REVIEW",
        "localizedProgramName": _localized("PASS_DESCRIPTION", content.locale),
    }


def loyalty_object(content: PassContent, *, issuer: GoogleIssuer) -> dict:
    """The customer's loyalty object: balance, tier, member name and the referral QR code."""
    modules = [
        {
            "id": "referral",
            "header": PASS_STRINGS[content.locale]["LABEL_REFERRAL"],
            "body": content.referral_url,
            "localizedHeader": _localized("LABEL_REFERRAL", content.locale),
        }
    ]
    if content.tier_name:
        modules.insert(
            0,
            {
                "id": "tier",
                "header": PASS_STRINGS[content.locale]["LABEL_TIER"],
                "body": content.tier_name,
                "localizedHeader": _localized("LABEL_TIER", content.locale),
            },
        )
    return {
        "id": object_id(issuer, content.serial_number),
        "classId": class_id(issuer, content.merchant_id),
        "state": "ACTIVE",
        "accountId": content.serial_number,
        "accountName": content.member_name,
        "loyaltyPoints": {
            "label": PASS_STRINGS[content.locale]["LABEL_POINTS"],
            "localizedLabel": _localized("LABEL_POINTS", content.locale),
            "balance": {"int": content.points_balance},
        },
        "barcode": {"type": "QR_CODE", "value": content.referral_url, "alternateText": content.referral_code},
        "textModulesData": modules,
    }


def save_jwt(content: PassContent, *, issuer: GoogleIssuer, logo_url: str, origins: list[str], now=None) -> str:
    """The signed "Save to Google Wallet" JWT carrying the class and the object."""
    claims = {
        "iss": issuer.service_account_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now if now is not None else time.time()),
        "origins": origins,
        "payload": {
            "loyaltyClasses": [loyalty_class(content, issuer=issuer, logo_url=logo_url)],
            "loyaltyObjects": [loyalty_object(content, issuer=issuer)],
        },
    }
    return jwt.encode(claims, issuer.private_key, algorithm="RS256")


def save_url(token: str) -> str:
    return SAVE_URL + token
