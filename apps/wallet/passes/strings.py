"""The pass's own texts in the 22 locales (Apple `pass.strings`, Google translated values).

These live on the pass, not in the gettext catalogues: Wallet shows them in the language of the
phone. Keys are what pass.json names as labels; `%@` is Apple's placeholder for the new value.
"""

from apps.core.locales import LOCALES

# Apple's .lproj folder per LoyalNest locale (Apple spells Simplified Chinese `zh-Hans`).
LPROJ = {locale: ("zh-Hans" if locale == "zh-CN" else locale) for locale in LOCALES}
RTL_LOCALES = frozenset({"ar", "he", "fa"})

KEYS = ("PASS_DESCRIPTION", "LABEL_POINTS", "LABEL_MEMBER", "LABEL_TIER", "LABEL_REFERRAL", "CHANGE_POINTS", "ABOUT")

_ROWS = {
    "en": ("Loyalty card", "Points", "Member", "Tier", "Refer a friend", "You now have %@ points",
           "Share your referral link with friends."),
    "es": ("Tarjeta de fidelidad", "Puntos", "Miembro", "Nivel", "Recomienda a un amigo", "Ahora tienes %@ puntos",
           "Comparte tu enlace de recomendación con tus amigos."),
    "de": ("Treuekarte", "Punkte", "Mitglied", "Stufe", "Freunde werben", "Du hast jetzt %@ Punkte",
           "Teile deinen Empfehlungslink mit Freunden."),
    "ja": ("ポイントカード", "ポイント", "会員", "ランク", "友達を紹介", "現在のポイントは%@ポイントです",
           "紹介リンクを友達と共有しましょう。"),
    "fr": ("Carte de fidélité", "Points", "Membre", "Niveau", "Parrainer un ami", "Vous avez maintenant %@ points",
           "Partagez votre lien de parrainage avec vos amis."),
    "pt": ("Cartão fidelidade", "Pontos", "Membro", "Nível", "Indique um amigo", "Agora você tem %@ pontos",
           "Compartilhe seu link de indicação com seus amigos."),
    "ru": ("Карта лояльности", "Баллы", "Участник", "Уровень", "Пригласить друга", "Теперь у вас %@ баллов",
           "Поделитесь реферальной ссылкой с друзьями."),
    "it": ("Carta fedeltà", "Punti", "Membro", "Livello", "Invita un amico", "Ora hai %@ punti",
           "Condividi il tuo link di invito con gli amici."),
    "nl": ("Klantenkaart", "Punten", "Lid", "Niveau", "Vriend uitnodigen", "Je hebt nu %@ punten",
           "Deel je verwijzingslink met vrienden."),
    "pl": ("Karta lojalnościowa", "Punkty", "Członek", "Poziom", "Poleć znajomemu", "Masz teraz %@ pkt",
           "Udostępnij znajomym swój link polecający."),
    "tr": ("Sadakat kartı", "Puan", "Üye", "Seviye", "Arkadaşını davet et", "Artık %@ puanın var",
           "Davet bağlantını arkadaşlarınla paylaş."),
    "fa": ("کارت وفاداری", "امتیاز", "عضو", "سطح", "دعوت از دوستان", "اکنون %@ امتیاز دارید",
           "پیوند معرفی خود را با دوستانتان به اشتراک بگذارید."),
    "zh-CN": ("会员卡", "积分", "会员", "等级", "推荐好友", "您现在有 %@ 积分", "与好友分享您的推荐链接。"),
    "vi": ("Thẻ khách hàng thân thiết", "Điểm", "Thành viên", "Hạng", "Giới thiệu bạn bè", "Bạn hiện có %@ điểm",
           "Chia sẻ liên kết giới thiệu với bạn bè."),
    "id": ("Kartu loyalitas", "Poin", "Anggota", "Tingkat", "Ajak teman", "Sekarang Anda memiliki %@ poin",
           "Bagikan tautan referensi Anda kepada teman."),
    "cs": ("Věrnostní karta", "Body", "Člen", "Úroveň", "Doporučit přítele", "Nyní máte %@ bodů",
           "Sdílejte svůj doporučující odkaz s přáteli."),
    "ar": ("بطاقة الولاء", "النقاط", "العضو", "المستوى", "ادعُ صديقًا", "لديك الآن %@ نقطة",
           "شارك رابط الإحالة الخاص بك مع أصدقائك."),
    "ko": ("멤버십 카드", "포인트", "회원", "등급", "친구 추천", "현재 %@포인트가 있습니다",
           "추천 링크를 친구와 공유하세요."),
    "uk": ("Картка лояльності", "Бали", "Учасник", "Рівень", "Запросити друга", "Тепер у вас %@ балів",
           "Поділіться реферальним посиланням із друзями."),
    "hu": ("Hűségkártya", "Pontok", "Tag", "Szint", "Ajánld egy barátodnak", "Most %@ pontod van",
           "Oszd meg az ajánlói linkedet a barátaiddal."),
    "sv": ("Lojalitetskort", "Poäng", "Medlem", "Nivå", "Värva en vän", "Du har nu %@ poäng",
           "Dela din värvningslänk med dina vänner."),
    "he": ("כרטיס מועדון", "נקודות", "חבר מועדון", "דרגה", "הזמנת חבר", "יש לך עכשיו %@ נקודות",
           "שתפו את קישור ההפניה שלכם עם חברים."),
}  # fmt: skip

PASS_STRINGS: dict[str, dict[str, str]] = {locale: dict(zip(KEYS, row, strict=True)) for locale, row in _ROWS.items()}


def text(locale: str, key: str) -> str:
    """One pass text in a locale, English when the locale is unknown."""
    return PASS_STRINGS.get(locale, PASS_STRINGS["en"])[key]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def pass_strings_file(locale: str) -> bytes:
    """`<lproj>/pass.strings` for a locale: `"KEY" = "value";` lines, UTF-16 with a byte-order mark
    (the encoding Apple documents for .strings files)."""
    lines = [f'"{key}" = "{_escape(value)}";' for key, value in PASS_STRINGS[locale].items()]
    return ("\n".join(lines) + "\n").encode("utf-16")
