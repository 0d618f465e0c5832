"""The two tiers: which flags of a check-in are pushed now and which wait for the brief.

Each case runs the real detectors on a small hand-made history and triages their flags; the
drift cohort generator is checked for determinism and for what it is meant to contain.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alliance.detectors import detect
from alliance.history import CheckinRecord, Status
from alliance.triage import PUSH_DEFAULTS, Decision, Delivery, Why, triage
from bench import cohort_drift
from bench.detector_quality import shipped_instruments
from bench.synthetic import to_csv

ITEMS = ("bond", "goals", "approach", "overall")
T0 = datetime(2024, 3, 4, 18, 0, tzinfo=UTC)
INSTRUMENTS = shipped_instruments()


def rec(
    week: int,
    alliance_total: int | None = 40,
    *,
    tension: int = 0,
    comment: str | None = None,
    who5: int | None = None,
    status: Status = Status.COMPLETED,
) -> CheckinRecord:
    """A check-in with an alliance total spread over the four items (None: missed)."""
    if alliance_total is None:
        return CheckinRecord(f"k{week}", T0 + timedelta(weeks=week), Status.MISSED)
    values = [alliance_total // 4 + (1 if n < alliance_total % 4 else 0) for n in range(4)]
    answers = {("alliance", item): v for item, v in zip(ITEMS, values, strict=True)}
    answers[("alliance", "tension")] = tension
    if who5 is not None:
        answers.update({("who5", f"who5_{n + 1}"): who5 // 5 + (n < who5 % 5) for n in range(5)})
    if status is Status.ABANDONED:
        answers = {("alliance", "bond"): values[0], ("alliance", "goals"): values[1]}
    return CheckinRecord(f"k{week}", T0 + timedelta(weeks=week), status, answers, comment)


def steady(weeks: int = 4, total: int = 40) -> list[CheckinRecord]:
    return [rec(w, total) for w in range(weeks)]


def decide(history: Sequence[CheckinRecord], **changes: object) -> dict[str, Decision]:
    """Detect on the whole history and on it without its last check-in, then triage."""
    settings = dataclasses.replace(PUSH_DEFAULTS, **changes)  # type: ignore[arg-type]
    previous = detect(history[:-1], INSTRUMENTS) if len(history) > 1 else []
    flags = detect(history, INSTRUMENTS)
    decisions = triage(flags, previous, settings)
    assert [d.flag for d in decisions] == flags
    return {d.flag.rule: d for d in decisions}


def test_risk_is_always_pushed_even_alone() -> None:
    decided = decide([*steady(), rec(4, comment="Some nights I want to die.")])
    assert set(decided) == {"risk"}
    assert decided["risk"].delivery is Delivery.PUSH and decided["risk"].why is Why.RISK


def test_a_little_tension_alone_waits_for_the_brief() -> None:
    decided = decide([*steady(), rec(4, tension=1)])
    assert set(decided) == {"tension"}
    assert decided["tension"].delivery is Delivery.BRIEF
    assert decided["tension"].why is Why.SINGLE_SIGN


def test_yes_tension_is_pushed() -> None:
    decided = decide([*steady(), rec(4, tension=2)])
    assert decided["tension"].delivery is Delivery.PUSH and decided["tension"].why is Why.TENSION


def test_a_drop_of_two_sd_is_pushed_with_the_other_rupture_flags() -> None:
    decided = decide([*steady(), rec(4, 36)])  # usual 40, SD floor 2: 36 is 2 SD below
    assert decided["alliance_drop"].delivery is Delivery.PUSH
    assert decided["alliance_drop"].why is Why.STRONG_DROP
    assert decided["low_alliance"].delivery is Delivery.PUSH  # travels with it


def test_a_one_sd_drop_alone_waits_for_the_brief() -> None:
    decided = decide([*steady(), rec(4, 38)])
    assert set(decided) == {"alliance_drop"}
    assert decided["alliance_drop"].delivery is Delivery.BRIEF


def test_a_reliable_fall_since_the_last_check_in_is_pushed() -> None:
    decided = decide([rec(0, 35), rec(1, 30)])  # no baseline yet; down 5, the reliable change
    assert decided["alliance_drop"].delivery is Delivery.PUSH
    assert decided["alliance_drop"].why is Why.STRONG_DROP


def test_two_signs_on_one_check_in_are_pushed() -> None:
    decided = decide([*steady(), rec(4, 37, tension=1)])  # 1.5 SD below, and "a little"
    assert {d.delivery for d in decided.values()} == {Delivery.PUSH}
    assert decided["tension"].why is Why.CONVERGING


def test_a_low_score_with_a_little_tension_is_not_convergence() -> None:
    # A first check-in at 34: low by the cutoff, but no fall below the client's own level.
    decided = decide([rec(0, 34, tension=1)])
    assert set(decided) == {"low_alliance", "tension"}
    assert {d.delivery for d in decided.values()} == {Delivery.BRIEF}


def test_a_fall_repeated_on_the_next_check_in_is_pushed() -> None:
    history = [*steady(5), rec(5, 37), rec(6, 37)]
    first = decide(history[:-1])
    assert first["alliance_drop"].delivery is Delivery.BRIEF
    again = decide(history)
    assert again["alliance_drop"].delivery is Delivery.PUSH
    assert again["alliance_drop"].why is Why.REPEATED


def test_a_dip_at_a_steady_client_goes_to_the_brief_and_again_next_time_is_pushed() -> None:
    # Always 40: a one-point dip is under the SD floor, but from this client it is news.
    history = [*steady(5), rec(5, 39), rec(6, 39)]
    first = decide(history[:-1])
    assert set(first) == {"alliance_drop"}
    assert first["alliance_drop"].delivery is Delivery.BRIEF
    assert first["alliance_drop"].flag.evidence["steady"] == 5
    again = decide(history)
    assert again["alliance_drop"].delivery is Delivery.PUSH
    assert again["alliance_drop"].why is Why.REPEATED
    # A client who varies gets no such flag for a one-point dip.
    assert "alliance_drop" not in decide(
        [rec(0, 38), rec(1, 40), rec(2, 39), rec(3, 40), rec(4, 39)]
    )


def test_a_little_tension_with_a_critical_comment_is_pushed_without_a_fall() -> None:
    decided = decide([*steady(), rec(4, 40, tension=1, comment="I felt a bit dismissed today.")])
    assert set(decided) == {"tension", "critical_comment"}
    assert {d.delivery for d in decided.values()} == {Delivery.PUSH}
    assert decided["critical_comment"].why is Why.CONVERGING
    assert (
        decide(
            [*steady(), rec(4, 40, tension=1, comment="I felt a bit dismissed today.")],
            converging=0,
        )["tension"].delivery
        is Delivery.BRIEF
    )


def test_a_comment_marker_on_two_check_ins_in_a_row_is_pushed() -> None:
    history = [*steady(), rec(4, 40, comment="whatever"), rec(5, 40, comment="doesn't matter")]
    first = decide(history[:-1])
    assert first["critical_comment"].delivery is Delivery.BRIEF
    again = decide(history)
    assert again["critical_comment"].delivery is Delivery.PUSH
    assert again["critical_comment"].why is Why.REPEATED
    assert decide(history, repeated=False)["critical_comment"].delivery is Delivery.BRIEF


def test_a_reliable_fall_back_to_the_usual_level_waits_for_the_brief() -> None:
    # Usual about 30 (SD 2.6): a good week at 35, then 30 again is a fall of the reliable
    # change, but no V below the client's own level.
    history = [rec(0, 28), rec(1, 31), rec(2, 27), rec(3, 33), rec(4, 35), rec(5, 30)]
    decided = decide(history)
    assert decided["alliance_drop"].flag.evidence["reliable_change"] == 5
    assert decided["alliance_drop"].delivery is Delivery.BRIEF
    assert decided["alliance_drop"].why is Why.SINGLE_SIGN


def test_wellbeing_flags_wait_for_the_brief() -> None:
    decided = decide([rec(0, 40, who5=20), rec(1, 40, who5=8)])
    assert {"wellbeing_low", "wellbeing_drop"} <= set(decided)
    for rule in ("wellbeing_low", "wellbeing_drop"):
        assert decided[rule].delivery is Delivery.BRIEF and decided[rule].why is Why.NOT_RUPTURE


def test_an_abandoned_check_in_alone_waits_for_the_brief() -> None:
    decided = decide([*steady(), rec(4, status=Status.ABANDONED)])
    assert set(decided) == {"disengagement"}
    assert decided["disengagement"].delivery is Delivery.BRIEF
    assert decided["disengagement"].why is Why.TOO_LITTLE


def test_criticism_and_long_silence_are_pushed_only_when_switched_on() -> None:
    critical = [*steady(), rec(4, comment="Honestly this is a waste of time.")]
    assert decide(critical)["critical_comment"].delivery is Delivery.BRIEF
    assert decide(critical, criticism=True)["critical_comment"].why is Why.CRITICISM
    silent = [*steady(), *(rec(w, None) for w in range(4, 8))]
    assert decide(silent)["disengagement"].delivery is Delivery.BRIEF
    assert decide(silent, missed_in_a_row=4)["disengagement"].why is Why.LONG_SILENCE


# --- the drift cohort generator -------------------------------------------------------------


def test_drift_cohort_is_deterministic_for_a_seed() -> None:
    one = cohort_drift.generate(40, seed=3)
    assert to_csv(one) == to_csv(cohort_drift.generate(40, seed=3))
    assert one.episodes == cohort_drift.generate(40, seed=3).episodes
    assert to_csv(one) != to_csv(cohort_drift.generate(40, seed=4))


def test_drift_cohort_has_every_episode_kind_and_response_style() -> None:
    cohort, styles = cohort_drift.generate_styled(300, seed=5)
    assert set(Counter(e.kind for e in cohort.episodes)) == set(cohort_drift.KINDS)
    assert set(styles.values()) == set(cohort_drift.STYLES)
    assert any(c.ceiling for c in cohort.clients) and not all(c.ceiling for c in cohort.clients)
    statuses = Counter(r.status for c in cohort.clients for r in c.records)
    assert statuses[Status.MISSED] and statuses[Status.ABANDONED] and statuses[Status.COMPLETED]
    for client in cohort.clients:
        for index, record in enumerate(client.records):
            for (inst, item), value in record.answers.items():
                top = 5 if inst == "who5" else 2 if item == "tension" else 10
                assert 0 <= value <= top
                assert inst != "who5" or index % 2 == 0  # WHO-5 every other week
    always = [c for c in cohort.clients if styles[c.id] == "always10"]
    assert sum(c.ceiling for c in always) >= 0.8 * len(always)
    middle = [c for c in cohort.clients if styles[c.id] == "midpoint"]
    assert not any(c.ceiling for c in middle)
