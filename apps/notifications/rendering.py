"""Render a notification in its recipient's locale, falling back to the merchant's primary
locale and then English when a translation is missing (the fallback is recorded on the row).

Right-to-left locales (ar, he, fa) get `dir="rtl"` in the email HTML, and every substituted
value is isolated (U+2068 … U+2069 in text, `<bdi>` in HTML) so that a Latin shop name, a
number or a URL inside Arabic or Hebrew text keeps its own direction and does not reorder the
sentence around it.
"""

import re
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import formats, translation
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from apps.core.locales import django_language, is_rtl

from .catalogue import TYPES, NotificationType

FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str
    direction: str
    fallback: str  # "" when rendered in the requested locale, else e.g. "ja→en (no translation)"


def placeholders(notification_type: NotificationType) -> set[str]:
    return set(PLACEHOLDER.findall(notification_type.subject + notification_type.body))


def _is_translated(notification_type: NotificationType, locale: str) -> bool:
    if locale == "en":
        return True  # the message ids are the English text
    with translation.override(django_language(locale)):
        return gettext(notification_type.subject) != notification_type.subject and (
            gettext(notification_type.body) != notification_type.body
        )


def _value(value, locale: str) -> str:
    """A context value as text: merchant-entered {locale: text} picks the locale (then English)."""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("en") or "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return formats.number_format(value, use_l10n=True, force_grouping=True)
    return str(value)


def render(*, type_key: str, context: dict, locale: str, merchant_locale: str) -> Rendered:
    """Subject, plain text and HTML of one notification. Raises KeyError for an unknown type."""
    notification_type = TYPES[type_key]
    chain = list(dict.fromkeys([locale, merchant_locale or "en", "en"]))
    chosen = next(candidate for candidate in chain if _is_translated(notification_type, candidate))
    fallback = "" if chosen == locale else f"{locale}→{chosen} (no translation)"
    rtl = is_rtl(chosen)
    with translation.override(django_language(chosen)):
        subject_template = gettext(notification_type.subject)
        body_template = gettext(notification_type.body)
        values = {name: _value(context.get(name, ""), chosen) for name in placeholders(notification_type)}
    if rtl:
        text_values = {
            name: f"{FIRST_STRONG_ISOLATE}{value}{POP_DIRECTIONAL_ISOLATE}" for name, value in values.items()
        }
    else:
        text_values = values
    html_values = {name: format_html("<bdi>{}</bdi>", value) for name, value in values.items()}
    subject = subject_template % text_values
    html = render_to_string(
        "notifications/email.html",
        {
            "lang": chosen,
            "direction": "rtl" if rtl else "ltr",
            "subject": subject,
            "body": mark_safe(escape(body_template) % html_values),  # noqa: S308  # nosec B703  # the template is escaped and every value is format_html-escaped
        },
    )
    return Rendered(
        subject=subject,
        text=body_template % text_values,
        html=html,
        locale=chosen,
        direction="rtl" if rtl else "ltr",
        fallback=fallback,
    )
