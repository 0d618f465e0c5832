"""alliance.progress: which way a client's own answers went, told to the client by /progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from alliance.progress import Direction, direction, spread
from bot.config import load_instruments

INSTRUMENTS = load_instruments(None, Path("."))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([36.0, 30.0], None),  # one earlier answer is too few to say
        ([36.0, 36.0, 30.0], Direction.LOWER),
        ([30.0, 30.0, 36.0], Direction.HIGHER),
        ([34.0, 36.0, 33.0], Direction.STEADY),  # 2 below the mean of 35: within a spread of 3
        ([10.0, 10.0, 10.0, 10.0, 10.0, 36.0, 36.0, 36.0, 36.0, 36.0, 33.0], Direction.STEADY),
    ],
)
def test_the_latest_answer_against_the_client_s_own_earlier_ones(
    values: list[float], expected: Direction | None
) -> None:
    """Only the last five earlier answers count: an old low stretch does not make today's
    answer 'higher'."""
    assert direction(values, 3.0) == expected


def test_a_given_usual_level_replaces_the_earlier_mean() -> None:
    assert direction([40.0], 2.0, usual=35.0) == Direction.HIGHER
    assert direction([36.0], 2.0, usual=35.0) == Direction.STEADY


def test_the_spread_is_the_reliable_change_or_a_tenth_of_the_scale() -> None:
    alliance = INSTRUMENTS["alliance"]
    assert spread(alliance) == (alliance.reliable_change or alliance.max_total / 10)
    assert spread(alliance) > 0
