"""Alerts in words read at a glance (handlers.alert_words, handlers.views.alert_message): the
texts as the therapist reads them, in the client's own numbers, without rule ids or SD; one
rupture in one short message; never cut mid-sentence; and each detail level keeps its promise."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alliance.detectors import detect
from alliance.history import CheckinRecord, Status
from alliance.repair import BOND, CONFRONTATION, RISK_ACTION, TASKS_GOALS, WITHDRAWAL
from alliance.safety import RiskAnswer, risk_answer_flag, risk_phrase_flag
from bot.config import load_instruments
from handlers import alert_words as words
from handlers import callbacks
from handlers import therapist_views as tviews
from handlers.views import ALERT_LIMIT, CAPTION_LIMIT, alert_message, telegram_length
from store.alerts import PendingAlert
from store.caseload import ClientRow

CLIENT = uuid.uuid4()
RULE_IDS = (
    "low_alliance",
    "alliance_drop",
    "critical_comment",
    "disengagement",
    "wellbeing_low",
    "wellbeing_drop",
    "strong_drop",
    "(warn)",
    "(high)",
    "(urgent)",
)


INSTRUMENTS = load_instruments(None, Path("."))


def alert(
    rule: str, severity: str, reason: str = "", label: str = "A.B.", **extra: Any
) -> PendingAlert:
    return PendingAlert(
        alert_id=uuid.uuid4(),
        client_id=CLIENT,
        therapist_chat_id=1,
        client_label=label,
        rule=rule,
        severity=severity,
        reason=reason,
        **extra,
    )


# Alerts as the store hands them over, with the evidence each rule records
# (alliance/detectors.py) and the triage decision (alliance/triage.py).
def drop(label: str = "A.B.") -> PendingAlert:
    return alert(
        "alliance_drop",
        "high",
        "Alliance 31/40, 5.5 SD below this client's usual 38 (last 6 check-ins; SD floor 2 "
        "used); 'goals' fell from 10 to 6",
        label,
        rupture_type="withdrawal",
        repair=(WITHDRAWAL, TASKS_GOALS),
        evidence={
            "total": 31.0,
            "max_total": 40.0,
            "baseline_mean": 37.6,
            "sd_used": 2.0,
            "baseline_n": 6,
            "z": 3.3,
            "weak_items": "goals",
        },
        why="strong_drop",
    )


def low(label: str = "A.B.") -> PendingAlert:
    return alert(
        "low_alliance",
        "warn",
        "Alliance 31/40, at or below the cutoff 36; low item 'goals' at 5",
        label,
        rupture_type="withdrawal",
        repair=(WITHDRAWAL, TASKS_GOALS),
        evidence={"total": 31.0, "max_total": 40.0, "cutoff": 36, "weak_items": "goals"},
        why="strong_drop",
    )


def tension(value: int = 1, label: str = "A.B.") -> PendingAlert:
    return alert(
        "tension",
        "warn" if value == 1 else "high",
        "Tension or misunderstanding with you in or since the last session: 'A little'",
        label,
        rupture_type="withdrawal",
        repair=(WITHDRAWAL,),
        evidence={"value": value},
        why="strong_drop",
    )


def comment(label: str = "A.B.") -> PendingAlert:
    return alert(
        "critical_comment",
        "warn",
        "The comment has confrontation markers (criticism of you or the therapy, or wanting "
        "to stop): 'waste of time'",
        label,
        rupture_type="confrontation",
        repair=(CONFRONTATION,),
        evidence={"confrontation": "waste of time", "kind": "confrontation"},
        why="criticism",
    )


def risk(label: str = "A.B.") -> PendingAlert:
    # The safety net's risk alert (alliance.safety.risk_answer_flag), raised before 2026-12-05
    # with a reason and no evidence.
    return alert("risk", "urgent", "'harm' of mood_check answered 2 (risk item)", label, why="risk")


def wellbeing(label: str = "A.B.") -> PendingAlert:
    return alert(
        "wellbeing_drop",
        "warn",
        "WHO-5 fell 24 percentage points since the last one on 2026-03-01 (64% to 40%; 10 or "
        "more is meaningful)",
        label,
        evidence={"total": 40.0, "previous_total": 64.0, "drop": 24.0},
        why="not_rupture",
        delivery="brief",
    )


def buttons(markup: Any) -> list[str]:
    return [b.text for row in markup.inline_keyboard for b in row]


# --- one sentence per alert ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "said"),
    [
        (
            drop(),
            "A.B.'s alliance answers fell well below their usual (38 to 31 of 40), most on goals.",
        ),
        (low(), "A.B.'s alliance answers are low (31 of 40), lowest on goals."),
        (
            alert(
                "low_alliance",
                "warn",
                "",
                evidence={"total": 33.0, "max_total": 40.0, "cutoff": 36},
            ),
            "A.B.'s alliance answers are low (33 of 40).",
        ),
        (
            alert(
                "low_alliance",
                "warn",
                "",
                evidence={"total": 38.0, "max_total": 40.0, "weak_items": "bond"},
            ),
            "A.B. rated feeling heard low (alliance 38 of 40).",
        ),
        (
            alert(
                "alliance_drop",
                "warn",
                "",
                evidence={
                    "total": 32.0,
                    "max_total": 40.0,
                    "previous_total": 38.0,
                    "reliable_change": 5,
                },
            ),
            "A.B.'s alliance answers fell sharply since last time (38 to 32 of 40).",
        ),
        (
            alert(
                "alliance_drop",
                "warn",
                "",
                evidence={"total": 37.0, "max_total": 40.0, "baseline_mean": 39.5, "z": 1.25},
            ),
            "A.B.'s alliance answers fell below their usual (40 to 37 of 40).",
        ),
        (tension(1), "A.B. said there was some tension between you in or since the last session."),
        (tension(2), "A.B. said there was tension between you in or since the last session."),
        (comment(), 'A.B. wrote something critical of the therapy ("waste of time").'),
        (
            alert(
                "critical_comment",
                "warn",
                "",
                evidence={"withdrawal": "whatever", "kind": "withdrawal"},
            ),
            'A.B.\'s comment sounded resigned ("whatever").',
        ),
        (
            alert("disengagement", "high", "", evidence={"in_a_row": 3}),
            "A.B. missed 3 check-ins in a row.",
        ),
        (
            alert("disengagement", "info", "", evidence={"in_a_row": 1, "answered": 2}),
            "A.B. started a check-in but did not finish it.",
        ),
        (wellbeing(), "A.B.'s wellbeing fell (WHO-5 64% to 40%)."),
        (
            alert(
                "wellbeing_low",
                "warn",
                "WHO-5 raw 10/25 (40%), at or below 12",
                evidence={"total": 40.0, "raw": 10.0, "max_raw": 25.0},
            ),
            "A.B.'s wellbeing is low (WHO-5 40%).",
        ),
        (risk(), "A.B. gave a risk answer (the 'harm' question)."),
        (
            alert(
                "risk",
                "urgent",
                "The comment contains a risk phrase ('want to die')",
            ),
            'A.B. used a risk phrase in their comment ("want to die").',
        ),
        (
            alert(
                "risk",
                "urgent",
                "'phq9' item 'q9' answered 1 (risk threshold 1)",
                evidence={"phq9.q9": 1},
            ),
            "A.B. gave a risk answer (the 'q9' question).",
        ),
    ],
)
def test_each_rule_in_one_plain_sentence_in_the_clients_numbers(
    made: PendingAlert, said: str
) -> None:
    assert words.sentence(made, "full") == said


@pytest.mark.parametrize(
    ("rule", "severity", "said"),
    [
        ("low_alliance", "warn", "A.B.'s alliance answers are low."),
        ("alliance_drop", "warn", "A.B.'s alliance answers fell below their usual."),
        ("alliance_drop", "high", "A.B.'s alliance answers fell well below their usual."),
        (
            "tension",
            "warn",
            "A.B. said there was tension between you in or since the last session.",
        ),
        ("critical_comment", "warn", "A.B.'s comment was flagged."),
        ("disengagement", "warn", "A.B. has missed check-ins."),
        ("wellbeing_low", "warn", "A.B.'s wellbeing is low."),
        ("wellbeing_drop", "warn", "A.B.'s wellbeing fell."),
        ("risk", "urgent", "A.B. gave a risk answer."),
    ],
)
def test_alerts_raised_before_the_evidence_was_kept_get_a_sentence_without_numbers(
    rule: str, severity: str, said: str
) -> None:
    assert words.sentence(alert(rule, severity, "an old reason"), "full") == said


def test_the_safety_nets_risk_flags_are_told_from_their_evidence() -> None:
    """A risk answer or phrase caught before the check-in closes carries its item or phrase
    as evidence, so the sentence does not depend on the reason's English."""
    for flag, said in (
        (
            risk_answer_flag(RiskAnswer("mood_check", "harm", 2)),
            "A.B. gave a risk answer (the 'harm' question).",
        ),
        (
            risk_phrase_flag("want to die"),
            'A.B. used a risk phrase in their comment ("want to die").',
        ),
    ):
        made = alert("risk", "urgent", "reworded", evidence=flag.evidence)
        assert words.sentence(made, "full") == said
    phrase = risk_phrase_flag("want to die")
    made = alert("risk", "urgent", phrase.reason, evidence=phrase.evidence)
    assert words.sentence(made, "scores") == "A.B. used a risk phrase in their comment."
    assert "want to die" not in words.why_text([made], "scores")


def test_wellbeing_sentences_come_from_the_detectors_evidence() -> None:
    """The instrument's name and its unit travel as evidence: the therapist's sentence does not
    depend on the reason's English, and the "Why?" numbers list numbers only."""
    who5 = INSTRUMENTS["who5"]
    history = [
        CheckinRecord(
            "c",
            datetime(2026, 3, week + 1, tzinfo=UTC),
            Status.COMPLETED,
            {("who5", item.id): value for item in who5.scored_items},
        )
        for week, value in enumerate((3, 2))
    ]
    [flag] = [f for f in detect(history, INSTRUMENTS) if f.rule == "wellbeing_drop"]
    made = alert("wellbeing_drop", "warn", "reworded", evidence=flag.evidence)
    assert words.sentence(made, "full") == "A.B.'s wellbeing fell (WHO-5 60% to 40%)."
    why = words.why_text([made], "full")
    assert "Numbers: total 40, previous_total 60, drop 20" in why
    assert "instrument" not in why and "unit" not in why


def test_scores_never_quotes_a_comment_cue_and_minimal_says_nothing() -> None:
    assert words.sentence(comment(), "scores") == "A.B. wrote something critical of the therapy."
    phrase = alert("risk", "urgent", "The comment contains a risk phrase ('want to die')")
    assert words.sentence(phrase, "scores") == "A.B. used a risk phrase in their comment."
    for made in (drop(), comment(), risk(), wellbeing()):
        assert words.sentence(made, "minimal") is None
        assert words.sentence(made, "anything else") is None  # unknown: the safe side


def test_opening_questions_by_rupture_type() -> None:
    assert words.opening_question("withdrawal") == (
        "Last week's answers were quieter than usual. How has our work felt to you lately?"
    )
    assert words.opening_question("confrontation") == (
        "It sounded like something in our work did not sit right with you. "
        "Can we look at it together?"
    )
    general = words.opening_question(None)
    assert general.endswith("?") and general not in (
        words.opening_question("withdrawal"),
        words.opening_question("confrontation"),
    )


# --- the alert message -----------------------------------------------------------------------


def test_one_rupture_is_one_short_message_read_at_a_glance() -> None:
    text, markup = alert_message([low(), drop(), tension()], "full")
    assert text == (
        "❗ Possible rupture with A.B.\n"
        "\n"
        "• A.B.'s alliance answers fell well below their usual (38 to 31 of 40), most on goals.\n"
        "• A.B. said there was some tension between you in or since the last session.\n"
        "\n"
        "It may be withdrawal: pulling back, going quiet.\n"
        "You could ask: \"Last week's answers were quieter than usual. How has our work felt "
        'to you lately?"'
    )
    assert len(text) < 600
    assert buttons(markup) == ["Acknowledge", "Snooze 1 day", "History", "Why?"]
    why = markup.inline_keyboard[1][1].callback_data
    assert isinstance(why, str) and len(why.encode()) <= 64
    tap = callbacks.decode(why)
    assert tap is not None and tap.action == callbacks.WHY and tap.ref == CLIENT


def test_no_rule_ids_no_sd_and_no_statistics_in_any_message() -> None:
    everything = [risk(), drop(), low(), tension(2), comment(), wellbeing()]
    for detail in ("full", "scores", "minimal"):
        for group in ([drop()], [low(), drop(), tension()], everything):
            text, _ = alert_message(group, detail)
            for rule in RULE_IDS:
                assert rule not in text, (detail, rule)
            assert not re.search(r"\bSD\b", text) and "baseline" not in text


def test_risk_rupture_and_wellbeing_are_never_cut_mid_sentence() -> None:
    everything = [wellbeing(), tension(2), comment(), low(), drop(), risk()]
    for detail in ("full", "scores"):
        text, markup = alert_message(everything, detail)
        assert text.startswith("🚨 Urgent: A.B. may be at risk\n")
        assert telegram_length(text) <= ALERT_LIMIT < CAPTION_LIMIT
        assert RISK_ACTION[0] in text  # the safety instruction, whole
        assert "This alert stays open until you acknowledge it." in text
        bullets = [line for line in text.splitlines() if line.startswith("• ")]
        assert bullets[0] == "• A.B. gave a risk answer (the 'harm' question)."
        assert all(line.endswith(".") for line in bullets)
        assert "wellbeing fell (WHO-5 64% to 40%)" in text
        assert "…" not in text.replace("…and", "")
        assert buttons(markup) == ["Acknowledge", "Snooze 1 day", "History", "Why?"]


def test_when_too_long_whole_sentences_give_way_and_are_counted() -> None:
    label = "Client with a rather long label for the test"
    group = [risk(label), drop(label), tension(2, label), comment(label), wellbeing(label)]
    text, _ = alert_message(group, "full")
    assert telegram_length(text) <= ALERT_LIMIT
    assert RISK_ACTION[0] in text
    found = re.search(r"…and (\d) more in History\.", text)
    assert found is not None
    bullets = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(bullets) + int(found.group(1)) == 5
    assert bullets[0] == f"• {label} gave a risk answer (the 'harm' question)."
    for line in bullets:  # every sentence shown is whole
        assert line[2:] in words.sentences(group, "full")


def test_a_very_long_text_keeps_the_safety_instruction_whole() -> None:
    label = "L" * 400
    text, _ = alert_message([risk(label), drop(label), wellbeing(label)], "full")
    assert RISK_ACTION[0] in text and "…and 2 more in History." in text
    assert telegram_length(text) > CAPTION_LIMIT  # delivery sends it apart from the chart


def test_scores_shows_scores_but_no_comment_text_or_cue() -> None:
    text, markup = alert_message([comment(), drop()], "scores")
    assert "waste of time" not in text
    assert "A.B. wrote something critical of the therapy." in text
    assert "38 to 31 of 40" in text
    assert "History" in buttons(markup) and "Why?" in buttons(markup)


def test_minimal_is_a_pointer_with_no_numbers_and_no_history() -> None:
    text, markup = alert_message([drop(), low(), tension(), comment(), wellbeing()], "minimal")
    assert text == (
        "🔔 Check-in news for A.B.\n\n"
        "Your practice keeps check-in details out of Telegram: see them in the practice's "
        "records (ask your practice admin)."
    )
    assert not re.search(r"\d", text)
    assert buttons(markup) == ["Acknowledge", "Snooze 1 day"]

    urgent, markup = alert_message([risk(), drop()], "minimal")
    assert urgent.startswith("🚨 Urgent check-in news for A.B.")
    assert "This alert stays open until you acknowledge it." in urgent
    assert not re.search(r"\d", urgent) and "harm" not in urgent and "risk" not in urgent
    assert buttons(markup) == ["Acknowledge", "Snooze 1 day"]


def test_headlines_say_what_kind_of_news_it_is() -> None:
    quiet = alert("disengagement", "warn", "", evidence={"in_a_row": 2})
    assert alert_message([quiet], "full")[0].startswith("⚠️ A.B. has gone quiet\n")
    assert alert_message([wellbeing()], "full")[0].startswith("⚠️ A.B.'s wellbeing needs a look\n")
    fallback = PendingAlert(
        uuid.uuid4(), CLIENT, 1, "Kim", "tension", "high", "", to_admin=True, evidence={"value": 2}
    )
    assert alert_message([fallback], "full")[0].startswith(
        "❗ Possible rupture with Kim (their therapist could not be reached)\n"
    )


# --- Why? ------------------------------------------------------------------------------------


def test_why_gives_the_rules_numbers_thresholds_and_the_decision() -> None:
    text = words.why_text([wellbeing(), tension(), drop(), comment()], "full")
    assert text.startswith("Why Rapport flagged A.B.\n")
    assert "• alliance_drop (high): Alliance 31/40, 5.5 SD below this client's usual 38" in text
    assert "Numbers: total 31, max_total 40, baseline_mean 37.6, sd_used 2" in text
    assert "Sent now: alliance_drop, tension: a fall far below the client's usual level" in text
    assert "Kept for the brief before the next session: wellbeing_drop: wellbeing" in text
    assert "'waste of time'" in text  # full: the matched cue
    assert WITHDRAWAL in text and TASKS_GOALS in text and BOND not in text


def test_why_under_scores_has_no_comment_cue_and_under_minimal_no_number() -> None:
    phrase = alert(
        "risk", "urgent", "The comment contains a risk phrase ('want to die')", why="risk"
    )
    text = words.why_text([comment(), phrase, drop()], "scores")
    assert "waste of time" not in text and "want to die" not in text
    assert "critical_comment (warn): The comment has confrontation markers" in text
    assert "risk (urgent): A risk phrase in the comment" in text
    assert "5.5 SD" in text and "Comments stay out of Telegram" in text

    hidden = words.why_text([comment(), phrase, drop()], "minimal")
    assert hidden == f"Why Rapport flagged A.B.: {words.ELSEWHERE}"
    assert not re.search(r"\d", hidden)


# --- the other therapist views that carry scores --------------------------------------------


def test_client_list_and_digest_carry_no_scores_under_minimal() -> None:
    row = ClientRow(
        CLIENT, "Kim", "active", datetime(2026, 3, 2, tzinfo=UTC), 29, 40, 40, 44, 1, 3, 4
    )
    since = datetime(2026, 3, 1, tzinfo=UTC)
    listing, _ = tviews.caseload([row], "Europe/Berlin")
    assert "alliance 29/40 (↓ from 40) · wellbeing 44%" in listing
    bare, _ = tviews.caseload([row], "Europe/Berlin", show_scores=False)
    assert "alliance" not in bare and "wellbeing" not in bare and "44" not in bare
    assert "75% done (3/4)" in bare

    week = tviews.digest([row], 1, since, "Europe/Berlin")
    assert "• Kim: 3/4 answered · alliance 29/40 (↓ from 40) · wellbeing 44%" in week
    week = tviews.digest([row], 1, since, "Europe/Berlin", show_scores=False)
    assert "• Kim: 3/4 answered · ⚠️ 1 open" in week and "29" not in week

    assert "practice's records" in tviews.history_withheld("Kim")
