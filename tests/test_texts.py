"""Texts: a practice's overrides per language, checked at start, and the consent version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.config import ConfigError, load
from handlers.catalog_tool import new, template, write
from handlers.i18n import LOCALES, TEMPLATE, shipped
from handlers.local_time import day_time
from handlers.texts import CLIENT_KEYS, DEFAULTS, PLURALS, Texts, check_catalog


def test_overrides_win_over_the_catalogs_which_fall_back_to_english() -> None:
    texts = Texts({"de": {"crisis": "Notruf 112."}, "en": {"crisis": "Call 999."}}, "en")
    assert "Call 999." in texts.get("consent", "en")
    consent = texts.get("consent", "de")
    assert consent.startswith("Willkommen bei Rapport") and "Notruf 112." in consent
    assert texts.get("thanks", "de").startswith("Danke!")  # the shipped German catalog
    assert texts.get("thanks", "fr") == DEFAULTS["thanks"]  # no French: the practice's (en)
    assert texts.get("paused", "en", days=3, until="Tue").endswith("start them earlier.")
    assert Texts({"de": {"thanks": "Vielen Dank."}}).get("thanks", "de") == "Vielen Dank."


def test_language_follows_telegram_then_the_practice() -> None:
    texts = Texts({"fr": {"thanks": "Merci !"}}, "en")
    assert texts.languages == ["de", "en", "es", "fr"]
    assert texts.language_for("de") == "de"
    assert texts.language_for("de-AT") == "de"
    assert texts.language_for("es-MX") == "es"
    assert texts.language_for("fr") == "fr"
    assert texts.language_for("it") == "en"
    assert texts.language_for(None) == "en"
    assert Texts(default_language="de").language_for("it") == "de"


@pytest.mark.parametrize(
    ("language", "one", "seven"),
    [
        ("en", "paused for 1 day, until", "paused for 7 days, until"),
        ("de", "für 1 Tag pausiert", "für 7 Tage pausiert"),
        ("es", "durante 1 día, hasta", "durante 7 días, hasta"),
    ],
)
def test_plural_forms_come_from_each_catalog(language: str, one: str, seven: str) -> None:
    texts = Texts()
    assert one in texts.get("paused", language, days=1, until="x")
    assert seven in texts.get("paused", language, days=7, until="x")
    assert seven.replace("7", "21") in texts.get("paused", language, days=21, until="x")


def test_every_client_text_is_translated_in_every_shipped_catalog() -> None:
    for code, language in shipped().items():
        if code == "en":
            continue
        assert check_catalog(language) == [], code
        assert [key for key in CLIENT_KEYS if key not in language.keys] == [], code
        for key in PLURALS:
            if key in language.keys:
                assert len(language.texts[key]) == 2, (code, key)


def test_the_shipped_template_is_current() -> None:
    """handlers/locales/rapport.pot is what `python -m handlers.catalog_tool template`
    writes: every client text and every marked therapist text, with its English."""
    with TEMPLATE.open("rb") as handle:
        written = read_po(handle)
    fresh = template()
    assert {(m.context, str(m.id)) for m in written if m.id} == {
        (m.context, str(m.id)) for m in fresh if m.id
    }
    shipped_ids = {}
    for code in ("de", "es"):
        path = LOCALES / code / "LC_MESSAGES" / "rapport.po"
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=code)
        shipped_ids[code] = {(m.context, str(m.id)) for m in catalog if m.id and m.context}
        # Every translation is of today's English (an outdated msgid would be stale words).
        assert shipped_ids[code] == {(m.context, str(m.id)) for m in fresh if m.context}, code


def test_a_practice_text_with_a_count_takes_plural_forms() -> None:
    forms = {"one": "Pause: {days} Tag, bis {until}.", "other": "Pause: {days} Tage, bis {until}."}
    texts = Texts({"de": {"paused": forms}})
    assert texts.get("paused", "de", days=1, until="Mo.") == "Pause: 1 Tag, bis Mo.."
    assert texts.get("paused", "de", days=2, until="Mo.") == "Pause: 2 Tage, bis Mo.."
    assert Texts.validate({"de": {"paused": forms}}) == []
    problems = Texts.validate(
        {
            "de": {
                "paused": {"one": "x {days}"},
                "thanks": {"one": "Danke", "other": "Danke"},
                "comment_cut": {"one": "{limit}", "other": "{when}", "several": "x"},
            }
        }
    )
    assert problems[0].startswith("texts.de.paused: must be a text, or a table of plural forms")
    assert problems[1].startswith("texts.de.thanks: must be one text in quotes")
    assert problems[2].startswith("texts.de.comment_cut.other: placeholder 'when'")
    assert problems[3].startswith("texts.de.comment_cut.several: must be a text under one of")
    assert len(problems) == 4


def test_dates_are_written_for_the_readers_language() -> None:
    monday = datetime(2026, 3, 23, 12, 0, tzinfo=UTC)
    assert day_time(monday + timedelta(days=1), "Europe/Berlin", monday, "de") == "Di., 13:00"
    assert day_time(monday + timedelta(days=1), "Europe/Berlin", monday, "es") == "mar, 13:00"
    later = monday + timedelta(days=14)
    assert day_time(later, "Europe/Berlin", monday, "de") == "Mo., 6. Apr. 14:00"
    assert day_time(later, "Europe/Berlin", monday, "es") == "lun, 6 abr 14:00"
    assert day_time(later, "Europe/Berlin", monday, "en") == "Mon 6 Apr 14:00"


def test_a_practice_adds_a_language_with_a_po_file(tmp_path: Path) -> None:
    """A .po file in [practice] locales: a new language for clients (French here) and
    better words for a shipped one; a broken placeholder is a config problem."""
    (tmp_path / "locales").mkdir()
    new("fr", tmp_path / "locales")
    path = tmp_path / "locales" / "fr" / "LC_MESSAGES" / "rapport.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    for message in catalog:
        if message.context == "thanks":
            message.string = "Merci ! {crisis}"
        elif message.context == "paused":
            # French has three forms in Babel's header (one, many, other)
            message.string = ("Pause de {days} jour.", "Pause de {days} de jours.", "{days} jours.")
    write(catalog, path)
    (tmp_path / "locales" / "de.po").write_bytes(
        b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        b'msgctxt "saved"\nmsgid "Saved"\nmsgstr "Ist gespeichert"\n'
    )
    config = tmp_path / "rapport.toml"
    config.write_text('[practice]\nlocales = "locales"\n')
    with pytest.raises(ConfigError) as info:
        load(config)
    assert f"{path}: msgctxt 'thanks': placeholder 'crisis' is not available" in str(info.value)
    for message in catalog:
        if message.context == "thanks":
            message.string = "Merci !"
    write(catalog, path)
    texts = load(config).config.make_texts()
    assert texts.language_for("fr-CA") == "fr"
    assert texts.get("thanks", "fr") == "Merci !"
    assert texts.get("paused", "fr", days=1, until="x") == "Pause de 1 jour."
    assert texts.get("paused", "fr", days=0, until="x") == "Pause de 0 jour."  # French: 0 is one
    assert texts.get("paused", "fr", days=2, until="x") == "2 jours."
    assert texts.get("paused", "fr", days=1000000, until="x") == "Pause de 1000000 de jours."
    assert texts.get("help", "fr") == texts.get("help", "en")  # untranslated: English
    assert texts.get("saved", "de") == "Ist gespeichert"  # the practice's word wins
    assert texts.get("thanks", "de").startswith("Danke!")  # the rest of the shipped catalog


def test_consent_version_changes_with_the_text_and_its_crisis_part() -> None:
    base = Texts().consent_version("en")
    assert Texts({"en": {"thanks": "x"}}).consent_version("en") == base
    assert Texts({"en": {"crisis": "Call 999."}}).consent_version("en") != base
    assert Texts({"en": {"consent": "New words. {crisis}"}}).consent_version("en") != base


def test_validation_names_each_problem() -> None:
    problems = Texts.validate(
        {"en": {"consnt": "x", "paused": "until {when}", "thanks": "fine {crisis}", "saved": "ok"}}
    )
    assert problems[0].startswith("texts.en.consnt: unknown text")
    assert problems[1].startswith("texts.en.paused: placeholder 'when' is not available")
    assert "['days', 'until']" in problems[1]
    assert problems[2].startswith("texts.en.thanks: placeholder 'crisis'")
    assert len(problems) == 3


def test_helplines_fill_every_crisis_part_and_contact_says_how_to_reach() -> None:
    texts = Texts(helplines=[("Emergency", "112"), ("Crisis line", "0800 111")], contact="x.")
    listed = "• Emergency: 112\n• Crisis line: 0800 111"
    for key in ("help", "risk_resources", "free_text_not_kept", "progress_footer"):
        assert texts.get(key, "en").endswith(listed), key
    assert "911" not in texts.get("help", "en")
    assert Texts(helplines=[("E", "1")]).consent_version("en") != Texts().consent_version("en")
    assert texts.reach("en") == "To reach your therapist or the practice: x."
    assert Texts().reach("en") == DEFAULTS["practice_contact_unknown"]


def test_a_crisis_text_that_helplines_replace_is_a_config_problem(tmp_path: Path) -> None:
    config = tmp_path / "rapport.toml"
    config.write_text(
        '[crisis]\nhelplines = [{ name = "E", contact = "112" }]\n[texts.de]\ncrisis = "112"\n'
    )
    with pytest.raises(ConfigError) as info:
        load(config)
    assert f"{config}: texts.de.crisis: not used while [crisis] helplines are set" in str(
        info.value
    )


def test_the_consent_screen_is_short_and_its_version_covers_the_full_text() -> None:
    words = DEFAULTS["consent"].replace("{crisis}", "").split()
    assert len(words) <= 60
    base = Texts().consent_version("en")
    assert Texts({"en": {"consent_full": "All of it. {crisis}"}}).consent_version("en") != base
    assert Texts(retention_days=90).consent_version("en") != base
    assert "for 90 days" in Texts(retention_days=90).get("consent_full", "en")
    kept = Texts().get("consent_full", "en")
    assert DEFAULTS["retention_kept"] in kept and "{" not in kept
