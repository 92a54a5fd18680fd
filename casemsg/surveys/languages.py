"""Language names as people write them in XLSForm columns (`label::English`, `label::Français`,
`label::Kiswahili`), mapped to the codes casemsg uses (`en`, `fr`, `sw`).

A column may name its code itself (`label::English (en)`: the code in parentheses wins), be a code
(`label::sw`), or name the language in English or in itself, with any accents and case. A name with a
region or script in parentheses that is not a code (`Spanish (Latin America)`) is looked up without it.
The table holds the languages frontline programs field forms in; a name not in it is refused with a
sentence asking for the code in parentheses.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["code_for"]

_CODE_IN_PARENS = re.compile(r"\(\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)\s*\)\s*$")
_BARE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_PARENTHESES = re.compile(r"\s*\([^)]*\)\s*$")

# code: names (English first, then the language's own names and common spellings)
_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("English", "Anglais", "Inglés", "Inglês", "Kiingereza"),
    "fr": ("French", "Français", "Francais", "Francés", "Kifaransa"),
    "es": ("Spanish", "Español", "Espanol", "Castellano", "Espagnol"),
    "pt": ("Portuguese", "Português", "Portugues", "Portugais"),
    "sw": ("Swahili", "Kiswahili"),
    "ar": ("Arabic", "العربية", "Arabe"),
    "am": ("Amharic", "አማርኛ", "Amarigna"),
    "ha": ("Hausa",),
    "yo": ("Yoruba", "Yorùbá"),
    "ig": ("Igbo",),
    "zu": ("Zulu", "isiZulu"),
    "xh": ("Xhosa", "isiXhosa"),
    "af": ("Afrikaans",),
    "so": ("Somali", "Soomaali", "Af-Soomaali"),
    "om": ("Oromo", "Afaan Oromoo", "Oromiffa"),
    "ti": ("Tigrinya", "ትግርኛ"),
    "lg": ("Luganda", "Ganda"),
    "rw": ("Kinyarwanda",),
    "rn": ("Kirundi", "Rundi"),
    "ln": ("Lingala",),
    "ny": ("Chichewa", "Chewa", "Nyanja", "Chinyanja"),
    "bem": ("Bemba", "Icibemba"),
    "sn": ("Shona", "chiShona"),
    "nd": ("Ndebele", "North Ndebele", "isiNdebele"),
    "st": ("Sesotho", "Sotho", "Southern Sotho"),
    "tn": ("Setswana", "Tswana"),
    "ts": ("Tsonga", "Xitsonga"),
    "ss": ("Swati", "siSwati"),
    "ve": ("Venda", "Tshivenda"),
    "mg": ("Malagasy",),
    "wo": ("Wolof",),
    "ff": ("Fula", "Fulfulde", "Pulaar", "Fulani", "Peul"),
    "bm": ("Bambara", "Bamanankan"),
    "ak": ("Akan", "Twi"),
    "ee": ("Ewe", "Eʋegbe"),
    "luo": ("Luo", "Dholuo"),
    "ki": ("Kikuyu", "Gikuyu"),
    "kam": ("Kamba", "Kikamba"),
    "ach": ("Acholi",),
    "teo": ("Ateso", "Teso"),
    "nyn": ("Runyankole", "Nyankole"),
    "lua": ("Tshiluba", "Luba-Kasai", "Ciluba"),
    "kg": ("Kikongo", "Kongo"),
    "mos": ("Mooré", "Moore", "Mossi"),
    "tum": ("Tumbuka", "chiTumbuka"),
    "kri": ("Krio",),
    "ht": ("Haitian Creole", "Kreyòl", "Kreyol", "Kreyòl ayisyen", "Créole haïtien"),
    "hi": ("Hindi", "हिन्दी", "हिंदी"),
    "bn": ("Bengali", "Bangla", "বাংলা"),
    "ur": ("Urdu", "اردو"),
    "ne": ("Nepali", "नेपाली"),
    "mr": ("Marathi", "मराठी"),
    "gu": ("Gujarati", "ગુજરાતી"),
    "ta": ("Tamil", "தமிழ்"),
    "te": ("Telugu", "తెలుగు"),
    "kn": ("Kannada", "ಕನ್ನಡ"),
    "ml": ("Malayalam", "മലയാളം"),
    "pa": ("Punjabi", "Panjabi", "ਪੰਜਾਬੀ"),
    "or": ("Odia", "Oriya", "ଓଡ଼ିଆ"),
    "as": ("Assamese", "অসমীয়া"),
    "si": ("Sinhala", "Sinhalese", "සිංහල"),
    "my": ("Burmese", "Myanmar", "မြန်မာ"),
    "km": ("Khmer", "ខ្មែរ"),
    "lo": ("Lao", "ລາວ"),
    "th": ("Thai", "ไทย"),
    "vi": ("Vietnamese", "Tiếng Việt"),
    "id": ("Indonesian", "Bahasa Indonesia"),
    "ms": ("Malay", "Bahasa Melayu"),
    "tl": ("Tagalog", "Filipino"),
    "ceb": ("Cebuano", "Bisaya"),
    "zh": ("Chinese", "Mandarin", "中文", "汉语"),
    "ja": ("Japanese", "日本語"),
    "ko": ("Korean", "한국어"),
    "ru": ("Russian", "Русский"),
    "uk": ("Ukrainian", "Українська"),
    "tr": ("Turkish", "Türkçe"),
    "fa": ("Persian", "Farsi", "فارسی"),
    "prs": ("Dari", "دری"),
    "ps": ("Pashto", "پښتو"),
    "ku": ("Kurdish", "Kurdî"),
    "de": ("German", "Deutsch"),
    "it": ("Italian", "Italiano"),
    "nl": ("Dutch", "Nederlands"),
    "pl": ("Polish", "Polski"),
    "ro": ("Romanian", "Română"),
    "el": ("Greek", "Ελληνικά"),
    "he": ("Hebrew", "עברית"),
    "qu": ("Quechua", "Runasimi"),
    "ay": ("Aymara",),
    "gn": ("Guarani", "Guaraní"),
    "tet": ("Tetum", "Tetun"),
    "mn": ("Mongolian", "Монгол"),
    "uz": ("Uzbek", "Oʻzbek"),
    "kk": ("Kazakh", "Қазақ"),
    "tg": ("Tajik", "Тоҷикӣ"),
    "ky": ("Kyrgyz", "Кыргызча"),
    "az": ("Azerbaijani", "Azərbaycan"),
    "ka": ("Georgian", "ქართული"),
    "hy": ("Armenian", "Հայերեն"),
    "dz": ("Dzongkha",),
    "bo": ("Tibetan",),
}


def _key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


_BY_NAME: dict[str, str] = {_key(n): code for code, names in _NAMES.items() for n in (code, *names)}


def code_for(column_language: str) -> str | None:
    """The code of a column's language (`English (en)` → en, `Français` → fr, `sw` → sw), or None when the
    name is not known."""
    text = column_language.strip()
    if m := _CODE_IN_PARENS.search(text):
        return m[1]
    if found := _BY_NAME.get(_key(text)):
        return found
    bare = _PARENTHESES.sub("", text)
    if bare != text and (found := _BY_NAME.get(_key(bare))):
        return found
    return text if _BARE_CODE.match(text) and len(text) <= 3 else None
