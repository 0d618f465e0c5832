"""What a therapist types: session times, digest settings and client labels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.planning import parse_digest
from handlers.therapist_views import split_message
from schedules.manage import check_session_time, parse_when
from store.caseload import match_label
from store.digests import DigestTime
from store.models import Client

NOW = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)  # Thursday 09:00 in Berlin
BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", NOW),
        ("14:00", datetime(2026, 3, 26, 13, 0, tzinfo=UTC)),
        ("yesterday 15:30", datetime(2026, 3, 25, 14, 30, tzinfo=UTC)),
        ("Tomorrow 9.15", datetime(2026, 3, 27, 8, 15, tzinfo=UTC)),
        ("today", datetime(2026, 3, 26, 11, 0, tzinfo=UTC)),
        ("2026-03-30 10:00", datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),  # after the DST change
        ("2026-03-30", datetime(2026, 3, 30, 10, 0, tzinfo=UTC)),
        ("2026-03-30T10:00+00:00", datetime(2026, 3, 30, 10, 0, tzinfo=UTC)),
    ],
)
def test_session_times_in_the_clients_zone(text: str, expected: datetime) -> None:
    assert parse_when(text, BERLIN, NOW) == expected


@pytest.mark.parametrize(
    "text", ["someday", "25:00", "yesterday at 3", "14:00 15:00", "2026-13-01"]
)
def test_unclear_session_times_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="give the time as 14:00"):
        parse_when(text, BERLIN, NOW)


def test_a_session_a_year_off_is_refused() -> None:
    with pytest.raises(ValueError, match="days from today"):
        check_session_time(datetime(2027, 3, 26, tzinfo=UTC), NOW)


@given(st.text(max_size=40))
def test_no_session_text_crashes_the_parser(text: str) -> None:
    try:
        at = parse_when(text, BERLIN, NOW)
    except ValueError:
        return
    assert at.tzinfo is not None


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["off"], None),
        (["on"], DigestTime(0, time(8, 0))),
        (["on", "fri"], DigestTime(4, time(8, 0))),
        (["ON", "Sunday", "18:30"], DigestTime(6, time(18, 30))),
        (["on", "7:45"], DigestTime(0, time(7, 45))),
    ],
)
def test_digest_settings(words: list[str], expected: DigestTime | None) -> None:
    assert parse_digest(words) == expected


@pytest.mark.parametrize("words", [[], ["maybe"], ["on", "mo"], ["on", "8pm"]])
def test_unclear_digest_settings_are_refused(words: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_digest(words)


def _clients(*labels: str) -> list[tuple[Client, str]]:
    return [(Client(id=uuid.uuid4()), label) for label in labels]


def test_labels_match_whole_ignoring_case_or_by_a_unique_start() -> None:
    kim, kimberly, lee = candidates = _clients("Kim", "Kimberly  Jones", "Lee")
    assert match_label(candidates, "kim") is kim[0]
    assert match_label(candidates, "KIMBERLY jones") is kimberly[0]
    assert match_label(candidates, "kimb") is kimberly[0]
    assert match_label(candidates, "le") is lee[0]
    assert match_label(candidates, "ki") is None  # two fit: neither is guessed
    assert match_label(candidates, "") is None
    assert match_label(candidates, "Sam") is None
    assert match_label(_clients("Kim", "kim"), "Kim") is None  # indistinguishable


@given(st.lists(st.text(alphabet="ab \n", max_size=30), max_size=40), st.integers(5, 50))
def test_long_messages_are_split_between_lines_and_lose_nothing(
    lines: list[str], limit: int
) -> None:
    text = "\n".join(lines)
    pieces = split_message(text, limit)
    assert all(len(piece) <= limit for piece in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    if all(len(line) <= limit for line in text.split("\n")):
        assert "\n".join(pieces) == text
