"""The comment marker reader (alliance/comments.py, wired in through alliance/detectors.py).

Precision and recall per kind on the labelled corpora (tests/data/comments_dev.csv, tuned on;
tests/data/comments_heldout.csv, written by someone else), printed as a table (see it with
`pytest -rA`) and in the assertion messages; and the behaviour the reader promises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from alliance import comments
from alliance.detectors import (
    DEFAULTS,
    DetectorSettings,
    detect,
    read_comment,
    risk_phrase,
)
from bench.comment_markers import CORPORA, Score, evaluate, load, table
from tests.test_detectors import INSTRUMENTS, rec

# Floors: confrontation as the issue asks; withdrawal and risk a little below what the reader
# reaches (docs/detectors.md), to catch a regression.
FLOORS: dict[str, tuple[float, float]] = {  # kind: (precision, recall)
    "confrontation": (0.90, 0.80),
    "withdrawal": (0.90, 0.90),
    "risk": (0.95, 0.90),
}


@pytest.mark.parametrize("corpus", ["dev", "held-out"])
def test_precision_and_recall(corpus: str, record_property: Callable[[str, object], None]) -> None:
    rows = load(CORPORA[corpus])
    scores, _ = evaluate(rows)
    report = table(corpus, rows, scores)
    print("\n" + report)
    for kind, score in scores.items():
        record_property(f"{corpus}.{kind}.precision", round(score.precision, 3))
        record_property(f"{corpus}.{kind}.recall", round(score.recall, 3))
    low = [_below(score) for score in scores.values() if _below(score)]
    assert not low, "; ".join(low) + "\n" + report


def _below(score: Score) -> str:
    precision, recall = FLOORS[score.kind]
    problems = []
    if score.precision < precision:
        problems.append(f"precision {score.precision:.2f} < {precision}")
    if score.recall < recall:
        problems.append(f"recall {score.recall:.2f} < {recall}")
    return f"{score.kind}: " + ", ".join(problems) if problems else ""


# --- what the issue asks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "comment",
    [
        "you never really listen",
        "I don't think you really listen to me",
        "You don't really listen to me",
        "I feel you never really listen",
        "I feel like I'm wasting my time here",
        "not sure this is helping",
        "maybe I should stop coming",
        "YOU DON’T LISTEN",  # case and a curly apostrophe
        "you dont lisen to me",  # a missing apostrophe and a typo
        "theraphy isnt helping",
        "Im not convinced this is helping me",  # doubt
    ],
)
def test_confrontation_counts(comment: str) -> None:
    assert read_comment(comment).confrontation is not None


@pytest.mark.parametrize(
    "comment",
    [
        "my boss doesn't listen to me",  # someone else
        "I don't want to quit my job",  # another object, and negated
        "I think it's helping now",  # no complaint
        "I quit smoking",  # a marker word in another sense
        "It was not a waste of time at all",  # negated
        "You never judge me and that really helps",  # "never" negates a complaint here
        "I felt judged by my family at dinner",  # someone else
        "My sister says therapy is a waste of money, I disagree",  # someone else's view
        "I didn't expect it to help, but it did",  # taken back
    ],
)
def test_confrontation_does_not_count(comment: str) -> None:
    reading = read_comment(comment)
    assert reading.confrontation is None, reading


def test_marker_words_in_other_senses_are_no_markers() -> None:
    for comment in ("I quit smoking", "This commute is killing me", "I gave up sugar for lent"):
        assert read_comment(comment).kinds == frozenset(), comment


def test_withdrawal_and_its_limits() -> None:
    assert read_comment("whatever").withdrawal == "whatever"
    assert read_comment("You know best").withdrawal is not None
    assert read_comment("I don't really want to talk about it").withdrawal is not None
    assert read_comment("I do care about getting better").withdrawal is None
    assert read_comment("I'm not giving up").withdrawal is None
    # A minimal answer is withdrawal; a short one with content is not.
    assert read_comment("I'm fine").withdrawal is not None
    assert read_comment("I'm ok, a bit tired").withdrawal is None


def test_risk_ignores_negation_on_purpose() -> None:
    assert read_comment("I'm not suicidal, just tired").risk is not None
    assert risk_phrase("I'm not suicidal, just tired") is not None
    # risk_phrase takes the raw comment as the store passes it (case, apostrophes).
    assert risk_phrase("I DON’T want to be here anymore") is not None
    assert risk_phrase("I want to live a fuller life") is None


def test_the_cue_is_a_label_never_the_clients_text() -> None:
    reading = read_comment("Honestly zebrafish, you never listen to a word I say")
    assert reading.confrontation == "you don't listen"
    for cue in (reading.confrontation, reading.withdrawal, reading.risk):
        assert cue is None or "zebrafish" not in cue


# --- practice lists ---------------------------------------------------------------------------


GERMAN = DetectorSettings(
    confrontation_phrases={"de": ("zeitverschwendung", "sie hören nicht zu")},
    withdrawal_phrases={"de": ("ist doch egal",)},
    negations={"de": ("nicht", "kein", "keine", "nie")},
    risk_phrases={"de": ("nicht mehr leben",)},
)


def test_a_practice_german_list_still_matches_as_exact_phrases() -> None:
    reading = read_comment("Ehrlich gesagt: Zeitverschwendung.", GERMAN, "de")
    assert reading.confrontation == "zeitverschwendung"
    assert read_comment("Ist doch egal", GERMAN, "de").withdrawal == "ist doch egal"
    # The list's negation guard: "keine Zeitverschwendung" is no complaint.
    assert read_comment("Das war keine Zeitverschwendung", GERMAN, "de").confrontation is None
    # German risk phrases, and English risk is always read too.
    assert risk_phrase("Ich will nicht mehr leben", GERMAN, "de") == "nicht mehr leben"
    assert risk_phrase("I want to kill myself", GERMAN, "de") is not None
    # A German comment is not read with the English patterns for rupture markers.
    assert read_comment("you never listen", GERMAN, "de").confrontation is None


def test_german_list_through_detect() -> None:
    records = [rec(0, [10] * 4, comment="Das war Zeitverschwendung.")]
    flags = detect(records, INSTRUMENTS, GERMAN, language="de")
    assert [f.rule for f in flags] == ["critical_comment"]
    assert "'zeitverschwendung'" in flags[0].reason


def test_a_language_without_a_list_is_read_as_english() -> None:
    assert read_comment("you never listen", GERMAN, "fr").confrontation == "you don't listen"


def test_a_practice_english_list_adds_exact_cues_to_the_patterns() -> None:
    settings = DetectorSettings(confrontation_phrases={"en": ("zebra talk",)})
    assert read_comment("So much zebra talk again", settings).confrontation == "zebra talk"
    assert read_comment("you never listen", settings).confrontation == "you don't listen"
    # The list's phrases keep the negation guard and the target rule.
    assert read_comment("There was no zebra talk", settings).confrontation is None
    assert read_comment("My boss and his zebra talk", settings).confrontation is None


def test_reading_is_cached_and_pure() -> None:
    text = "not sure this is helping"
    assert comments.read(text) == comments.read(text)
    assert comments.read(text).kinds == frozenset({"confrontation"})


# --- the default German and Spanish lists ---------------------------------------------------


def test_a_german_risk_phrase_raises_risk_for_a_german_speaking_client() -> None:
    assert risk_phrase("Ich will mich umbringen.", DEFAULTS, "de") == "mich umbringen"
    assert risk_phrase("Manchmal will ich nicht mehr leben", DEFAULTS, "de-AT") is not None
    records = [rec(0, [10] * 4, comment="Ich habe Suizidgedanken.")]
    flags = detect(records, INSTRUMENTS, DEFAULTS, language="de")
    assert [f.rule for f in flags] == ["risk"] and "'suizidgedanken'" in flags[0].reason
    assert risk_phrase("Die Sitzung war gut.", DEFAULTS, "de") is None


def test_a_negated_german_confrontation_phrase_does_not_count() -> None:
    assert read_comment("Ehrlich: Zeitverschwendung.", DEFAULTS, "de").confrontation == (
        "zeitverschwendung"
    )
    assert read_comment("Das war keine Zeitverschwendung.", DEFAULTS, "de").confrontation is None
    assert read_comment("Es war nie sinnlos", DEFAULTS, "de").confrontation is None
    assert read_comment("Ist doch egal", DEFAULTS, "de").withdrawal == "ist doch egal"


def test_a_spanish_risk_phrase_raises_risk_for_a_spanish_speaking_client() -> None:
    assert risk_phrase("A veces quiero morir", DEFAULTS, "es") == "quiero morir"
    assert risk_phrase("Voy a cortarme el pelo", DEFAULTS, "es") is None
    records = [rec(0, [10] * 4, comment="No quiero vivir así.")]
    assert [f.rule for f in detect(records, INSTRUMENTS, DEFAULTS, language="es")] == ["risk"]


def test_a_negated_spanish_confrontation_phrase_does_not_count() -> None:
    assert read_comment("Fue una pérdida de tiempo", DEFAULTS, "es").confrontation == (
        "pérdida de tiempo"
    )
    assert read_comment("No fue una pérdida de tiempo", DEFAULTS, "es").confrontation is None
    assert read_comment("No tengo ni idea", DEFAULTS, "es").withdrawal == "no tengo ni idea"


def test_the_practices_brief_comment_length_reaches_the_reader() -> None:
    """'Same as always' is resignation in a brief comment only; what counts as brief is the
    practice's `withdrawal_brief_words`."""
    text = "Work was long this week, same as always"  # 8 words
    assert read_comment(text, DEFAULTS).withdrawal is not None
    shorter = dataclasses.replace(DEFAULTS, withdrawal_brief_words=5)
    assert read_comment(text, shorter).withdrawal is None
