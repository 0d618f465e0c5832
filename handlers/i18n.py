"""Message catalogs: gettext .po files read with Babel, plural forms from each catalog's header,
and dates written for the reader's locale.

Rapport ships `handlers/locales/<lang>/LC_MESSAGES/rapport.po` (German and Spanish; English
is the message ids themselves) and `handlers/locales/rapport.pot`, the template a translator
starts from. The .po files are read when Rapport starts and compiled in memory, so there is no
build step: `pip install`, an editable install and the Docker image all work from the .po
files. A practice adds or improves a language with its own .po files in the folder named by
`[practice] locales` (docs/instruments.md).

Client texts have a stable key (handlers/texts.py) as `msgctxt` and their English text as
`msgid`; therapist-facing texts are marked in the code with `_()` / `ngettext()` / `N_()`
(English `msgid`, no context) and read in the practice's language (`staff`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

DOMAIN = "rapport"
LOCALES = Path(__file__).with_name("locales")
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
ENGLISH = "en"
# English dates are written the way Rapport always wrote them: day before month, 24 hours.
_DATE_LOCALE = {"en": "en_GB"}


class CatalogError(ValueError):
    """A .po file that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class Language:
    """One language's catalog: the compiled translations and which client keys it has."""

    code: str
    translations: NullTranslations
    keys: frozenset[str] = frozenset()  # msgctxt of every translated (not fuzzy) message
    texts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # msgctxt: msgstr(s)
    source: str = ""


def _compile(catalog: Catalog) -> Translations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def read_language(path: Path, code: str) -> Language:
    """A .po file as a Language; raises CatalogError naming the file."""
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=code, domain=DOMAIN, abort_invalid=True)
    except (OSError, PoFileError, ValueError, UnknownLocaleError) as exc:
        raise CatalogError(f"{path}: cannot be read as a .po file ({exc}); fix it") from None
    keys: set[str] = set()
    texts: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not message.context:
            continue
        raw = message.string if isinstance(message.string, tuple) else (message.string,)
        strings = tuple(text for text in raw if isinstance(text, str) and text)
        if strings and len(strings) == len(raw):
            keys.add(message.context)
            texts[message.context] = strings
    # Fuzzy messages are left out of the compiled catalog (write_mo's default).
    return Language(code, _compile(catalog), frozenset(keys), texts, str(path))


def _po_files(directory: Path) -> Iterable[tuple[str, Path]]:
    """`<lang>/LC_MESSAGES/rapport.po` and `<lang>.po` files in a folder, by language."""
    for path in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        yield path.parent.parent.name, path
    for path in sorted(directory.glob("*.po")):
        yield path.stem, path


def read_languages(directory: Path) -> dict[str, Language]:
    found: dict[str, Language] = {}
    for code, path in _po_files(directory):
        found[_code(code)] = read_language(path, code.replace("-", "_"))
    return found


def _code(code: str) -> str:
    """'pt_BR' or 'pt-BR' as Rapport's language code: 'pt-br'."""
    return code.replace("_", "-").lower()


SHIPPED: dict[str, Language] = {}


def shipped() -> dict[str, Language]:
    """The catalogs that come with Rapport (read once)."""
    if not SHIPPED:
        SHIPPED.update(read_languages(LOCALES))
        SHIPPED.setdefault(ENGLISH, Language(ENGLISH, NullTranslations()))
    return SHIPPED


class Catalogs:
    """The shipped catalogs and a practice's own (which win, message by message)."""

    def __init__(self, added: Mapping[str, Language] | None = None) -> None:
        self._languages: dict[str, Language] = {}
        base = shipped()
        for code in {*base, *(added or {})}:
            own, ours = (added or {}).get(code), base.get(code)
            if own is not None and ours is not None:
                own.translations.add_fallback(ours.translations)
                own = Language(
                    code,
                    own.translations,
                    own.keys | ours.keys,
                    {**ours.texts, **own.texts},
                    own.source,
                )
            chosen = own or ours
            assert chosen is not None
            self._languages[code] = chosen

    @property
    def codes(self) -> set[str]:
        return set(self._languages)

    def get(self, code: str | None) -> Language | None:
        return self._languages.get(code or "")

    def translations(self, code: str | None) -> NullTranslations:
        language = self.get(code) or self.get((code or "").split("-")[0])
        return language.translations if language is not None else NullTranslations()


# --- therapist-facing texts --------------------------------------------------------------


class Staff:
    """Therapist-facing words, in the practice's language ([practice] language); English
    where its catalog has no translation."""

    def __init__(self) -> None:
        self.language = ENGLISH
        self.translations: NullTranslations = NullTranslations()

    def use(self, catalogs: Catalogs, language: str) -> None:
        self.language = language
        self.translations = catalogs.translations(language)


staff = Staff()


def _(message: str, **values: object) -> str:
    """A therapist-facing text in the practice's language, its {placeholders} filled."""
    text = staff.translations.gettext(message)
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    """A therapist-facing text with a count: the plural form the practice's language wants
    for `n` ({n} in the text is the count)."""
    return staff.translations.ngettext(singular, plural, n).format(n=n, **values)


def N_(message: str) -> str:
    """Marks a text for the catalog where it is defined; `_()` translates it where it is used."""
    return message


def gettext(message: str) -> str:
    """`_()` without placeholders, for the dashboard's templates (jinja2.ext.i18n)."""
    return staff.translations.gettext(message)


def ngettext_plain(singular: str, plural: str, n: int) -> str:
    """`ngettext()` without filling placeholders, for the dashboard's templates."""
    return staff.translations.ngettext(singular, plural, n)


def staff_when(moment: datetime, english: str, skeletons: tuple[str, ...], join: str = " ") -> str:
    """A date in a therapist-facing text, through Babel in the practice's language. English
    reads as Rapport always wrote it: `english` is a CLDR pattern ('EEE dd MMM' is 'Tue 08
    Dec'); another language gets its own order and words from each CLDR skeleton, joined
    ('MMMEd', 'Hm' is 'Di., 8. Dez. 18:00')."""
    if staff.language.split("-")[0] == ENGLISH:
        return format_datetime(moment, english, locale=ENGLISH)
    where = locale(staff.language)
    return join.join(format_skeleton(skeleton, moment, locale=where) for skeleton in skeletons)


# --- dates and times ------------------------------------------------------------------------


def locale(code: str | None) -> Locale:
    code = _DATE_LOCALE.get(code or ENGLISH, code or ENGLISH)
    for candidate in (code.replace("-", "_"), code.split("-")[0]):
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(_DATE_LOCALE[ENGLISH])


def weekday_time(moment: datetime, code: str | None) -> str:
    """'Tue 18:00', 'Di., 18:00', 'mar, 18:00'."""
    return format_skeleton("EHm", moment, locale=locale(code))


def day_month_time(moment: datetime, code: str | None) -> str:
    """'Tue 8 Dec 18:00', 'Di., 8. Dez. 18:00', 'mar, 8 dic 18:00'."""
    where = locale(code)
    day = format_skeleton("MMMEd", moment, locale=where)
    return f"{day} {format_skeleton('Hm', moment, locale=where)}"


def day_month_year(moment: datetime, code: str | None) -> str:
    """'8 Dec 2026', '08.12.2026', '8 dic 2026'."""
    return format_skeleton("yMMMd", moment, locale=locale(code))


def display_name(code: str, capitalise: bool = True) -> str:
    """A language's name in itself: 'English', 'Deutsch', 'Español' (for a button), or as
    inside a sentence ('español')."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return code
    name = name or code
    return name[:1].upper() + name[1:] if capitalise else name
