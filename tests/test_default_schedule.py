"""The built-in schedule template and `start_after_days`: one check-in a week from the day
after joining, WHO-5 with it every other week; a practice's config replaces it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import load
from schedules.defaults import DEFAULT_TEMPLATE, builtin_templates
from schedules.rules import EveryNDays, RuleError, occurrences, parse_templates, rule_from_spec

JOINED = date(2026, 3, 18)  # a Wednesday; the clocks go forward in Berlin on 29 March


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_the_builtin_template_asks_once_a_week_with_who5_every_other_week(zone: str) -> None:
    tz = ZoneInfo(zone)
    rules = builtin_templates()[DEFAULT_TEMPLATE].rules_for(JOINED)
    start = datetime.combine(JOINED, time(0), tz).astimezone(UTC)
    slots = sorted(
        (slot, rule.instruments)
        for rule in rules
        for slot in occurrences(rule, tz, start, start + timedelta(weeks=8))
    )
    assert len(slots) == 8  # one a week, never two on one day
    for week, (slot, instruments) in enumerate(slots):
        local = slot.astimezone(tz)
        assert local.date() == JOINED + timedelta(days=1 + 7 * week)
        assert local.time() == time(18, 0)  # across the change of clocks too
        assert instruments == (("alliance", "who5") if week % 2 == 0 else ("alliance",))


def test_start_after_days_counts_from_the_anchor_and_only_in_templates() -> None:
    raw = {
        "t": {
            "rules": [
                {
                    "kind": "every_n_days",
                    "every": 14,
                    "start_after_days": 3,
                    "at": "09:00",
                    "instruments": ["who5"],
                }
            ]
        }
    }
    [rule] = parse_templates(raw)["t"].rules_for(JOINED)
    assert isinstance(rule, EveryNDays)
    assert rule.start == JOINED + timedelta(days=3) and rule.start_after_days == 0
    assert "start_after_days" not in rule.to_spec()  # stored rules carry the date only

    both = {"t": {"rules": [{**raw["t"]["rules"][0], "start": "2026-01-05"}]}}
    with pytest.raises(RuleError, match="give start or start_after_days, not both"):
        parse_templates(both)
    negative = {"t": {"rules": [{**raw["t"]["rules"][0], "start_after_days": -1}]}}
    with pytest.raises(RuleError, match="start_after_days: -1 is not a whole number"):
        parse_templates(negative)
    with pytest.raises(RuleError, match="only in a template"):
        rule_from_spec(
            "every_n_days",
            {"every": 7, "start_after_days": 1, "at": "09:00", "instruments": ["who5"]},
        )


def test_without_a_config_the_builtin_template_is_the_default(tmp_path: Path) -> None:
    loaded = load(None)
    assert loaded.config.checkins.default_template == DEFAULT_TEMPLATE
    assert DEFAULT_TEMPLATE in loaded.templates
    assert loaded.config.checkins.client_progress is True


def test_a_practice_replaces_the_default_or_turns_it_off(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    own.write_text(
        "[templates.standard]\n[[templates.standard.rules]]\nkind = 'weekly'\n"
        "weekdays = ['monday']\nat = '09:00'\ninstruments = ['alliance']\n"
    )
    [rule] = load(own).templates[DEFAULT_TEMPLATE].rules
    assert rule.kind == "weekly"

    off = tmp_path / "off.toml"
    off.write_text("[checkins]\ndefault_template = ''\nclient_progress = false\n")
    loaded = load(off)
    assert loaded.config.checkins.default_template is None
    assert loaded.config.checkins.client_progress is False
