"""The 22 storefront/admin locales, as the seeds spell them and as Django names them."""

# Seeds' spelling -> Django language code.
SEED_TO_DJANGO = {
    "en": "en",
    "es": "es",
    "de": "de",
    "ja": "ja",
    "fr": "fr",
    "pt": "pt",
    "ru": "ru",
    "it": "it",
    "nl": "nl",
    "pl": "pl",
    "tr": "tr",
    "fa": "fa",
    "zh-CN": "zh-hans",
    "vi": "vi",
    "id": "id",
    "cs": "cs",
    "ar": "ar",
    "ko": "ko",
    "uk": "uk",
    "hu": "hu",
    "sv": "sv",
    "he": "he",
}
DJANGO_TO_SEED = {django: seed for seed, django in SEED_TO_DJANGO.items()}
LOCALES = tuple(SEED_TO_DJANGO)  # the seeds' spelling, used in stored JSON and API payloads
RTL_LOCALES = frozenset({"ar", "he", "fa"})
DEFAULT_LOCALE = "en"
LOCALE_CHOICES = [(code, code) for code in LOCALES]

_ALIASES = {"zh": "zh-CN", "zh-cn": "zh-CN", "zh-hans": "zh-CN", "zh_cn": "zh-CN", "pt-br": "pt"}


def normalize_locale(value: str | None) -> str | None:
    """Map `de-DE`, `zh_CN`, `zh-hans`… to one of LOCALES; None when unsupported."""
    if not value:
        return None
    raw = str(value).strip()
    if raw in SEED_TO_DJANGO:
        return raw
    lowered = raw.lower().replace("_", "-")
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for code in LOCALES:
        if code.lower() == lowered:
            return code
    base = lowered.split("-")[0]
    if base == "zh":
        return "zh-CN"
    return base if base in SEED_TO_DJANGO else None


def django_language(locale: str) -> str:
    return SEED_TO_DJANGO.get(locale, "en")


def is_rtl(locale: str) -> bool:
    return locale in RTL_LOCALES
