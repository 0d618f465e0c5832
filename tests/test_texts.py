"""Texts: a practice's overrides per language, checked at start, and the consent version."""

from __future__ import annotations

from handlers.texts import DEFAULTS, Texts


def test_overrides_win_and_fall_back_to_english() -> None:
    texts = Texts({"de": {"crisis": "Notruf 112."}, "en": {"crisis": "Call 999."}}, "en")
    assert "Call 999." in texts.get("consent", "en")
    assert "Notruf 112." in texts.get("consent", "de")  # the German crisis text in the default
    assert texts.get("thanks", "de") == DEFAULTS["thanks"]
    assert texts.get("paused", "en", until="2026-12-01").endswith("start them earlier.")


def test_language_follows_telegram_when_the_practice_has_it() -> None:
    texts = Texts({"de": {"thanks": "Danke!"}}, "en")
    assert texts.language_for("de") == "de"
    assert texts.language_for("de-AT") == "de"
    assert texts.language_for("fr") == "en"
    assert texts.language_for(None) == "en"


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
    assert "['until']" in problems[1]
    assert problems[2].startswith("texts.en.thanks: placeholder 'crisis'")
    assert len(problems) == 3
