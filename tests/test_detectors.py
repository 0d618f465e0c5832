"""Rupture detectors: each rule at and just past its thresholds, with the shipped instruments."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.detectors import (
    DEFAULTS,
    RULES,
    DetectorSettings,
    Flag,
    RuptureType,
    SettingsError,
    Severity,
    detect,
    parse_settings,
)
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument, parse_instrument

SHIPPED = Path(__file__).resolve().parent.parent / "alliance" / "instruments"
ITEMS = ("bond", "goals", "approach", "overall")
T0 = datetime(2024, 3, 4, 18, 0, tzinfo=UTC)


def _load() -> dict[str, Instrument]:
    found = {}
    for path in sorted(SHIPPED.glob("*.toml")):
        inst = parse_instrument(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        found[inst.id] = inst
    return found


INSTRUMENTS = _load()
PHQ = parse_instrument(
    {
        "id": "phq9",
        "title": "PHQ-9 (two items for the test)",
        "items": [
            {"id": "item1", "prompt": "Little interest", "min": 0, "max": 3},
            {"id": "item9", "prompt": "Thoughts", "min": 0, "max": 3, "risk_threshold": 1},
        ],
    },
    "test",
)
WITH_PHQ = {**INSTRUMENTS, "phq9": PHQ}


def rec(
    week: int,
    alliance: Sequence[int] | None = None,
    *,
    tension: int | None = 0,
    status: Status = Status.COMPLETED,
    comment: str | None = None,
    who5: int | Sequence[int] | None = None,
    extra: Mapping[tuple[str, str], int] | None = None,
) -> CheckinRecord:
    """A check-in; `alliance` as four item values, `who5` as a raw total or five values."""
    answers: dict[tuple[str, str], int] = {}
    if alliance is not None:
        answers.update({("alliance", i): v for i, v in zip(ITEMS, alliance, strict=False)})
        if tension is not None and len(alliance) == 4:
            answers[("alliance", "tension")] = tension
    if who5 is not None:
        values = who5 if not isinstance(who5, int) else _spread(who5)
        answers.update({("who5", f"who5_{n + 1}"): v for n, v in enumerate(values)})
    answers.update(extra or {})
    return CheckinRecord(f"k{week}", T0 + timedelta(weeks=week), status, answers, comment)


def _spread(raw: int) -> list[int]:
    return [raw // 5 + (1 if n < raw % 5 else 0) for n in range(5)]


def total(t: int) -> list[int]:
    """Four item values summing to t, as even as possible."""
    return [t // 4 + (1 if n < t % 4 else 0) for n in range(4)]


def missed(week: int) -> CheckinRecord:
    return rec(week, status=Status.MISSED, tension=None)


def history(*totals: int | None) -> list[CheckinRecord]:
    """Completed check-ins with these alliance totals (None: a missed one)."""
    return [missed(w) if t is None else rec(w, total(t)) for w, t in enumerate(totals)]


def run(records: Sequence[CheckinRecord], **changes: Any) -> dict[str, Flag]:
    flags = detect(records, WITH_PHQ, dataclasses.replace(DEFAULTS, **changes))
    assert len({f.rule for f in flags}) == len(flags)
    return {f.rule: f for f in flags}


# --- low_alliance ---------------------------------------------------------------------------


def test_low_alliance_at_the_cutoff_fires_and_one_point_above_does_not() -> None:
    at = run([rec(0, [9, 9, 9, 9])])
    assert at["low_alliance"].severity == Severity.WARN
    assert "36/40" in at["low_alliance"].reason and "every item at 9" in at["low_alliance"].reason
    assert "low_alliance" not in run([rec(0, [10, 9, 9, 9])])


def test_low_alliance_names_the_low_item() -> None:
    flag = run([rec(0, [8, 4, 9, 9])])["low_alliance"]
    assert "30/40" in flag.reason and "'goals' at 4" in flag.reason


def test_low_item_threshold_edge_without_the_total_rule() -> None:
    # The cutoff moved out of the way: only the item rule (midpoint, 5 of 0-10) can fire.
    assert (
        "'overall' at 5"
        in run([rec(0, [10, 10, 10, 5])], low_alliance_cutoff=20)["low_alliance"].reason
    )
    assert "low_alliance" not in run([rec(0, [10, 10, 10, 6])], low_alliance_cutoff=20)
    assert "low_alliance" not in run(
        [rec(0, [10, 10, 10, 5])], low_alliance_cutoff=20, low_alliance_item_fraction=None
    )


def test_low_alliance_stays_quiet_while_recently_low_then_alerts_again() -> None:
    records = history(35, 34, 35, 38, 38, 38, 35)
    fired = [i for i in range(len(records)) if "low_alliance" in run(records[: i + 1])]
    assert fired == [0, 6]  # 34 and 35 follow a low score; three scores above 36 re-arm it
    every = [
        i
        for i in range(len(records))
        if "low_alliance" in run(records[: i + 1], low_alliance_quiet=0)
    ]
    assert every == [0, 1, 2, 6]


def test_low_alliance_reads_an_abandoned_check_in_with_a_low_item() -> None:
    flag = run([rec(0, [3, 9], status=Status.ABANDONED)])["low_alliance"]
    assert "not finished" in flag.reason and "'bond' at 3" in flag.reason


# --- alliance_drop --------------------------------------------------------------------------


def test_ceiling_client_drop_uses_the_sd_floor() -> None:
    flags = run(history(40, 40, 40, 40, 40, 37))
    drop = flags["alliance_drop"]
    assert drop.severity == Severity.WARN
    assert "37/40, 1.5 SD below this client's usual 40 (last 5 check-ins" in drop.reason
    assert "SD floor 2" in drop.reason
    assert "low_alliance" not in flags  # 37 is above the SRS-style cutoff


@pytest.mark.parametrize(
    ("latest", "severity"),
    [(39, None), (38, Severity.WARN), (37, Severity.WARN), (36, Severity.HIGH)],
)
def test_drop_edges_at_one_and_two_sd(latest: int, severity: Severity | None) -> None:
    # Baseline 40 with SD 0: the floor (2 points) is the SD; 38 is exactly 1 SD, 36 exactly 2.
    flag = run(history(40, 40, 40, latest)).get("alliance_drop")
    assert (flag.severity if flag else None) == severity


def test_too_few_earlier_check_ins_give_no_drop_flag() -> None:
    assert "alliance_drop" not in run(history(40, 40, 37))  # 2 earlier; 3 needed
    assert "alliance_drop" in run(history(40, 40, 40, 37))
    assert "alliance_drop" not in run(history(40, 40, 40, 37), drop_min_baseline=4)


def test_missed_check_ins_do_not_count_towards_the_baseline() -> None:
    assert "alliance_drop" not in run(history(40, None, 40, None, 37))


def test_the_clients_own_sd_applies_when_larger_than_the_floor() -> None:
    # Mean 34, SD 3.16: 3 below is under 1 SD; 4 below is 1.26 SD.
    assert "alliance_drop" not in run(history(30, 38, 34, 36, 32, 31))
    flag = run(history(30, 38, 34, 36, 32, 30))["alliance_drop"]
    assert "1.3 SD below this client's usual 34" in flag.reason
    assert "floor" not in flag.reason


@pytest.mark.parametrize(("latest", "fires"), [(31, False), (30, True)])
def test_reliable_change_edge_from_the_previous_check_in(latest: int, fires: bool) -> None:
    flags = run(history(35, latest))  # no baseline yet: only the reliable change (5) applies
    assert ("alliance_drop" in flags) is fires
    if fires:
        assert "down 5 from 35 last time (reliable change is 5)" in flags["alliance_drop"].reason


def test_drop_reason_names_the_items_that_fell() -> None:
    records = [rec(w, [10, 9, 9, 10]) for w in range(6)] + [rec(6, [9, 4, 8, 8])]
    reason = run(records)["alliance_drop"].reason
    assert "'goals' fell from 9 to 4" in reason and "last 6 check-ins" in reason


# --- tension --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "severity", "label"),
    [(0, None, None), (1, Severity.WARN, "A little"), (2, Severity.HIGH, "Yes")],
)
def test_tension_levels(value: int, severity: Severity | None, label: str | None) -> None:
    flag = run([rec(0, [10, 10, 10, 10], tension=value)]).get("tension")
    assert (flag.severity if flag else None) == severity
    if flag is not None:
        assert f"'{label}'" in flag.reason


# --- critical_comment -----------------------------------------------------------------------


def test_confrontation_comment_names_the_phrase_not_the_text() -> None:
    comment = "Honestly zebrafish, it felt like a waste of time."
    flag = run([rec(0, [10, 10, 10, 10], comment=comment)])["critical_comment"]
    assert flag.evidence["kind"] == "confrontation"
    assert "'waste of time'" in flag.reason and "zebrafish" not in flag.reason
    assert flag.rupture_type == RuptureType.CONFRONTATION


def test_curly_apostrophes_and_case_still_match() -> None:
    flag = run([rec(0, [10, 10, 10, 10], comment="YOU DON’T LISTEN")])["critical_comment"]
    assert "you don't listen" in flag.reason


def test_negated_marker_is_not_a_marker() -> None:
    assert "critical_comment" not in run([rec(0, [10] * 4, comment="I don't want to quit.")])
    # A negation in an earlier clause does not hide the marker.
    assert "critical_comment" in run([rec(0, [10] * 4, comment="No, you don't listen")])


def test_brief_withdrawal_comment_flags_and_a_long_one_needs_company() -> None:
    flag = run([rec(0, [10] * 4, comment="whatever")])["critical_comment"]
    assert flag.evidence["kind"] == "withdrawal"
    assert flag.rupture_type == RuptureType.WITHDRAWAL
    long = "Honestly it doesn't matter anymore, work is busy and the kids are loud."
    assert "critical_comment" not in run([rec(0, [10] * 4, comment=long)])
    assert "critical_comment" in run([rec(0, [10] * 4, tension=1, comment=long)])
    # A marker word in another sense is no marker, with or without company.
    other_sense = "Whatever happens with the job next month, I feel more ready now."
    assert "critical_comment" not in run([rec(0, [10] * 4, tension=1, comment=other_sense)])


def test_phrase_lists_per_language() -> None:
    german = DetectorSettings(confrontation_phrases={"de": ("zeitverschwendung",)})
    records = [rec(0, [10] * 4, comment="Das war Zeitverschwendung.")]
    flags = detect(records, INSTRUMENTS, german, language="de")
    assert [f.rule for f in flags] == ["critical_comment"]
    # German has default phrases now; a language without any is read as English.
    assert [f.rule for f in detect(records, INSTRUMENTS, DEFAULTS, language="de")] == [
        "critical_comment"
    ]
    assert detect(records, INSTRUMENTS, DEFAULTS, language="fr") == []


# --- disengagement --------------------------------------------------------------------------


def test_missed_in_a_row_alerts_at_two_then_at_four() -> None:
    records = history(38, None, None, None, None)
    seen = [run(records[: i + 1]).get("disengagement") for i in range(len(records))]
    assert [f.severity if f else None for f in seen] == [
        None,
        None,
        Severity.WARN,
        None,
        Severity.HIGH,
    ]
    assert "2 check-ins in a row not completed" in str(seen[2] and seen[2].reason)


def test_a_completed_check_in_breaks_the_run() -> None:
    assert "disengagement" not in run(history(38, None, 38, None))


def test_abandoned_check_in_is_info() -> None:
    flag = run([rec(0, [10] * 4), rec(1, [9, 8], status=Status.ABANDONED)])["disengagement"]
    assert flag.severity == Severity.INFO and "started but not finished" in flag.reason
    assert "disengagement" not in run(
        [rec(0, [10] * 4), rec(1, [9, 8], status=Status.ABANDONED)], abandoned=False
    )


def test_going_quiet_after_a_drop_is_withdrawal() -> None:
    flag = run(history(38, 38, 38, 33, None, None))["disengagement"]
    assert flag.rupture_type == RuptureType.WITHDRAWAL
    assert run(history(38, 38, 38, 38, None, None))["disengagement"].rupture_type is None


# --- wellbeing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "fires"), [(12, True), (13, False)])
def test_wellbeing_low_below_13(raw: int, fires: bool) -> None:
    flags = run([rec(0, [10] * 4, who5=raw)])
    assert ("wellbeing_low" in flags) is fires
    if fires:
        assert "WHO-5 raw 12/25 (48%)" in flags["wellbeing_low"].reason


def test_wellbeing_low_alerts_on_entering_the_low_range_only() -> None:
    records = [rec(0, [10] * 4, who5=10), rec(1, [10] * 4, who5=9)]
    assert "wellbeing_low" not in run(records)
    assert "wellbeing_low" in run(records, wellbeing_low_quiet=0)


@pytest.mark.parametrize(("now", "fires"), [(13, False), (12, True)])
def test_wellbeing_drop_of_ten_points(now: int, fires: bool) -> None:
    # raw 15 -> 13 is 8 percentage points; 15 -> 12 is 12.
    flags = run([rec(0, [10] * 4, who5=15), rec(1, [10] * 4, who5=now)])
    assert ("wellbeing_drop" in flags) is fires


def test_wellbeing_drop_exactly_at_a_configured_threshold() -> None:
    records = [rec(0, [10] * 4, who5=15), rec(1, [10] * 4, who5=12)]
    assert "wellbeing_drop" in run(records, wellbeing_drop_points=12)
    assert "wellbeing_drop" not in run(records, wellbeing_drop_points=12.5)


# --- risk -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fires"), [(0, False), (1, True), (3, True)])
def test_risk_item_at_its_threshold_is_urgent(value: int, fires: bool) -> None:
    flags = run([rec(0, extra={("phq9", "item1"): 2, ("phq9", "item9"): value})])
    assert ("risk" in flags) is fires
    if fires:
        assert flags["risk"].severity == Severity.URGENT
        assert flags["risk"].repair and "safety" in flags["risk"].repair[0]


def test_risk_item_counts_in_an_abandoned_check_in() -> None:
    record = rec(0, status=Status.ABANDONED, extra={("phq9", "item9"): 2})
    assert run([record])["risk"].severity == Severity.URGENT


def test_risk_phrase_is_urgent_even_when_negated() -> None:
    assert run([rec(0, [10] * 4, comment="Some days I want to die")])["risk"].severity == (
        Severity.URGENT
    )
    assert "risk" in run([rec(0, [10] * 4, comment="I'm not suicidal, just tired")])
    assert "risk" not in run([rec(0, [10] * 4, comment="I want to die")], risk=False)


# --- rupture type and repair ----------------------------------------------------------------


def test_low_scores_with_tension_are_confrontation_with_repair() -> None:
    flags = run([*history(38, 38, 38), rec(3, [6, 5, 7, 6], tension=2)])
    assert {f.rupture_type for f in flags.values()} == {RuptureType.CONFRONTATION}
    repair = flags["alliance_drop"].repair
    assert 1 <= len(repair) <= 2 and "acknowledge your part" in repair[0]


def test_drop_after_a_missed_check_in_is_withdrawal() -> None:
    flags = run(history(38, 38, 38, None, 32))
    assert flags["alliance_drop"].rupture_type == RuptureType.WITHDRAWAL


def test_wellbeing_and_risk_flags_carry_no_rupture_type() -> None:
    flags = run([rec(0, [9] * 4, who5=8, comment="I want to die")])
    assert flags["risk"].rupture_type is None and flags["wellbeing_low"].rupture_type is None


# --- settings -------------------------------------------------------------------------------


def test_settings_from_a_toml_table() -> None:
    table = tomllib.loads(
        """
        missed_in_a_row = 3
        drop_sd_floor = 0.0625
        alliance_instruments = ["alliance", "srs"]
        [withdrawal_phrases]
        de = ["egal"]
        """
    )
    parsed = parse_settings(table, "practice.toml")
    assert parsed.missed_in_a_row == 3 and parsed.drop_sd_floor == 0.0625
    assert parsed.alliance_instruments == ("alliance", "srs")
    assert parsed.withdrawal_phrases["de"] == ("egal",)
    assert parsed.withdrawal_phrases["en"] == DEFAULTS.withdrawal_phrases["en"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"missed_in_a_roww": 3}, "detectors.missed_in_a_roww: unknown setting"),
        ({"tension": "yes"}, "detectors.tension: must be true or false"),
        ({"missed_in_a_row": 2.5}, "detectors.missed_in_a_row: must be a whole number"),
        ({"drop_warn_sd": 3}, "drop_warn_sd (3) must be above 0 and at most drop_high_sd (2)"),
        ({"risk_phrases": ["x"]}, "detectors.risk_phrases: must be a table of languages"),
        ({"missed_in_a_row": 0}, "missed_in_a_row must be at least 1"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(table, "practice.toml")
    assert "practice.toml" in str(caught.value) and message in str(caught.value)


# --- properties -----------------------------------------------------------------------------

PHRASES = ["waste of time", "whatever", "want to die", "you don't listen", "fine", "thanks"]


@st.composite
def records(draw: st.DrawFn) -> list[CheckinRecord]:
    count = draw(st.integers(min_value=1, max_value=14))
    out = []
    for week in range(count):
        status = draw(st.sampled_from(list(Status)))
        answers: dict[tuple[str, str], int] = {}
        comment = None
        if status is not Status.MISSED:
            for inst in (INSTRUMENTS["alliance"], INSTRUMENTS["who5"], PHQ):
                if draw(st.booleans()):
                    for item in inst.items:
                        if status is Status.COMPLETED or draw(st.booleans()):
                            answers[(inst.id, item.id)] = draw(
                                st.integers(min_value=item.min, max_value=item.max)
                            )
            if draw(st.booleans()):
                words = draw(st.lists(st.sampled_from(PHRASES), max_size=3))
                comment = " ".join([*words, "zqxjv"])
        out.append(CheckinRecord(f"k{week}", T0 + timedelta(weeks=week), status, answers, comment))
    return out


@st.composite
def any_settings(draw: st.DrawFn) -> DetectorSettings:
    warn = draw(st.floats(min_value=0.1, max_value=3))
    base = draw(st.integers(min_value=1, max_value=6))
    return dataclasses.replace(
        DEFAULTS,
        drop_warn_sd=warn,
        drop_high_sd=warn + draw(st.floats(min_value=0, max_value=2)),
        drop_min_baseline=base,
        drop_baseline_window=base + draw(st.integers(min_value=0, max_value=6)),
        drop_sd_floor=draw(st.floats(min_value=0.001, max_value=0.5)),
        missed_in_a_row=draw(st.integers(min_value=1, max_value=4)),
        low_alliance_quiet=draw(st.integers(min_value=0, max_value=4)),
        low_alliance_item_fraction=draw(st.none() | st.floats(min_value=0, max_value=0.9)),
    )


@settings(max_examples=300, deadline=None)
@given(records(), any_settings())
def test_detect_never_crashes_and_is_deterministic(
    history: list[CheckinRecord], chosen: DetectorSettings
) -> None:
    first = detect(history, WITH_PHQ, chosen)
    again = detect(list(history), WITH_PHQ, chosen)
    assert first == again
    assert len({f.rule for f in first}) == len(first)
    for flag in first:
        assert flag.rule in RULES and flag.severity in Severity
        assert flag.reason and "zqxjv" not in flag.reason  # never the client's own words
        assert len(flag.repair) <= 2
        assert (flag.rule == "risk") == (flag.severity == Severity.URGENT)


@settings(max_examples=100, deadline=None)
@given(records())
def test_each_prefix_is_judged_by_its_latest_check_in(history: list[CheckinRecord]) -> None:
    # What the store does: detect after each check-in closes, in order. Each time, the risk
    # flag follows the latest check-in alone, and disengagement counts the check-ins not
    # completed at the end, exactly at missed_in_a_row and twice that.
    n = DEFAULTS.missed_in_a_row
    for end in range(1, len(history) + 1):
        prefix = history[:end]
        latest = prefix[-1]
        flags = {flag.rule: flag for flag in detect(prefix, WITH_PHQ)}
        risky = latest.answers.get(("phq9", "item9"), 0) >= 1 or (
            "want to die" in (latest.comment or "")
        )
        assert ("risk" in flags) is risky, prefix
        run = 0
        for record in reversed(prefix):
            if record.status is Status.COMPLETED:
                break
            run += 1
        disengaged = flags.get("disengagement")
        if run in (n, 2 * n):
            assert disengaged is not None and disengaged.evidence["in_a_row"] == run
            assert disengaged.severity == (Severity.HIGH if run == 2 * n else Severity.WARN)
        elif run == 0 or not latest.status.unfinished:
            assert disengaged is None, prefix


def test_a_drop_to_the_same_answer_everywhere_is_withdrawal() -> None:
    flags = run([*history(38, 38, 38), rec(3, [6, 6, 6, 6])])
    assert flags["alliance_drop"].rupture_type == RuptureType.WITHDRAWAL
    # Always flat at the ceiling, then flat lower: no change in style, no type from it.
    flags = run([*history(40, 40, 40), rec(3, [7, 7, 7, 7])])
    assert flags["alliance_drop"].rupture_type is None


def test_false_switches_an_optional_threshold_off() -> None:
    parsed = parse_settings({"low_alliance_item_fraction": False}, "practice.toml")
    assert parsed.low_alliance_item_fraction is None
    with pytest.raises(SettingsError, match="must be a whole number"):
        parse_settings({"wellbeing_low_item": 1.5}, "practice.toml")
    assert parse_settings({"wellbeing_low_item": 1}, "p.toml").wellbeing_low_item == 1


def test_two_alliance_instruments_give_one_flag_per_rule() -> None:
    srs = dataclasses.replace(INSTRUMENTS["alliance"], id="srs")
    both = {**INSTRUMENTS, "srs": srs}
    answers = {("srs", i): v for i, v in zip(ITEMS, [7, 7, 7, 7], strict=True)}
    record = rec(0, [8, 4, 9, 9], extra=answers)
    chosen = dataclasses.replace(DEFAULTS, alliance_instruments=("alliance", "srs"))
    flags = detect([record], both, chosen)
    assert [f.rule for f in flags] == ["low_alliance"]
    assert "Alliance 30/40" in flags[0].reason and "srs 28/40" in flags[0].reason
