"""Keeping the message catalogs in step with the code (for translators and maintainers).

    python -m handlers.catalog_tool template        # writes handlers/locales/rapport.pot
    python -m handlers.catalog_tool update          # merges it into every shipped .po
    python -m handlers.catalog_tool new fr DIR      # starts DIR/fr/LC_MESSAGES/rapport.po

The template holds every client text (its key as msgctxt, the English as msgid, a note on the
placeholders) and every therapist-facing text marked in the code with `_()`, `ngettext()` or
`N_()`. A translator works from a .po file alone: the English is in it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from handlers.i18n import DOMAIN, LOCALES, TEMPLATE
from handlers.texts import DEFAULTS, PLURALS, REQUIRED, STAFF_KEYS, allowed

HERE = Path(__file__).parent
ROOT = HERE.parent
# Therapist-facing texts live in the modules that import the catalog's markers (_(),
# ngettext(), N_()) from handlers.i18n, and in the dashboard's templates (jinja2.ext.i18n:
# {% trans %}, _(), ngettext()). Found by their import, so a new module cannot be forgotten.
MARKERS = re.compile(r"from handlers\.i18n import \(?[^)\n]*(?:\n[^)]*)?\b(?:_|N_|ngettext)\b")


def staff_sources() -> list[str]:
    found = []
    for folder in ("handlers", "web"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if MARKERS.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(ROOT)))
    return found


TEMPLATES = "web/templates"
KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None}
# The dashboard's Environment options that change what a template's messages are.
JINJA_OPTIONS = {"trim_blocks": "true", "lstrip_blocks": "true", "newstyle_gettext": "true"}
HEADER = "Rapport's texts. Client texts: msgctxt is the key a practice's config uses."
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)  # keeps the template stable between runs


def _note(key: str) -> list[str]:
    names = sorted(allowed(key))
    notes = ["therapist-facing" if key in STAFF_KEYS else "client-facing"]
    if names:
        notes.append("placeholders: " + ", ".join(f"{{{n}}}" for n in names))
    required = sorted(REQUIRED.get(key, frozenset()))
    if required:
        notes.append("must keep: " + ", ".join(f"{{{n}}}" for n in required))
    return ["; ".join(notes)]


def _staff_messages() -> Iterable[tuple[str | tuple[str, ...], str, int]]:
    for name in staff_sources():
        path = ROOT / name
        for line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords=KEYWORDS
        ):
            yield message, name, line
    for path in sorted((ROOT / TEMPLATES).glob("*.html")):
        for line, message, _comments, _context in extract_from_file(
            "jinja2.ext:babel_extract",
            str(path),
            keywords={**KEYWORDS, "gettext": None},  # what {% trans %} becomes
            options=JINJA_OPTIONS,
        ):
            yield message, f"{TEMPLATES}/{path.name}", line


def template() -> Catalog:
    catalog = Catalog(
        project="Rapport",
        domain=DOMAIN,
        header_comment=f"# {HEADER}",
        creation_date=FIXED_DATE,
        revision_date=FIXED_DATE,
        fuzzy=False,
    )
    for key, text in DEFAULTS.items():
        catalog.add(text, context=key, auto_comments=_note(key))
    for key, plural in PLURALS.items():
        catalog.add((plural.one, plural.other), context=key, auto_comments=_note(key))
    for message, where, line in _staff_messages():
        existing = catalog.get(message if isinstance(message, str) else message[0])
        if existing is None:
            catalog.add(message, locations=[(where, line)], auto_comments=["therapist-facing"])
        else:
            existing.locations.append((where, line))
    return catalog


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=False)


def update(directory: Path = LOCALES) -> list[Path]:
    """Merge the template into every .po under `directory` (new texts added empty, changed
    English marked fuzzy, removed ones kept as obsolete)."""
    fresh = template()
    done = []
    for path in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=path.parent.parent.name)
        catalog.update(fresh, update_header_comment=False)
        write(catalog, path)
        done.append(path)
    return done


def new(language: str, directory: Path) -> Path:
    catalog = Catalog(locale=language, domain=DOMAIN, fuzzy=False)
    catalog.update(template())
    path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    write(catalog, path)
    return path


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "template":
        write(template(), TEMPLATE)
        print(TEMPLATE)
    elif command == "update":
        for path in update():
            print(path)
    elif command == "new" and len(argv) == 3:
        print(new(argv[1], Path(argv[2])))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
