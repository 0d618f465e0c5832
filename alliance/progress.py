"""Which way a client's own answers have gone lately: lower, higher or steady.

Read for the client (/progress, and after a check-in where the practice shows scores). The
latest answer is compared with the client's own earlier ones, never with a cutoff: a client is
told how they have been answering, not how they rank.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from statistics import fmean

from alliance.instruments import Instrument

EARLIER = 5  # the earlier answers the latest is compared with, at most
MIN_EARLIER = 2  # fewer than this: too few to say
SHARE = 0.1  # without a reliable change: a tenth of the scale is a change


class Direction(enum.StrEnum):
    LOWER = "lower"
    HIGHER = "higher"
    STEADY = "steady"


def direction(
    values: Sequence[float], spread: float, usual: float | None = None
) -> Direction | None:
    """The latest of `values` against `usual` (by default the mean of up to EARLIER before
    it), more than `spread` away or not; None with too few answers."""
    if not values:
        return None
    if usual is None:
        earlier = list(values[:-1])[-EARLIER:]
        if len(earlier) < MIN_EARLIER:
            return None
        usual = fmean(earlier)
    latest = values[-1]
    if latest < usual - spread:
        return Direction.LOWER
    if latest > usual + spread:
        return Direction.HIGHER
    return Direction.STEADY


def spread(instrument: Instrument) -> float:
    """How far from the usual a total must be to count as a change: the instrument's reliable
    change, or a tenth of its scale."""
    return instrument.reliable_change or instrument.max_total * SHARE
