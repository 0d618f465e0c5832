"""Texts: a practice's overrides per language, checked at start, and the consent version."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load
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
