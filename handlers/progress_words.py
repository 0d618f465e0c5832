"""A client's own trend in plain words: steady, lower lately or higher lately.

The same words answer /progress and follow the scores a practice shows after a check-in
(`[checkins] show_scores`). They compare the latest answer with the client's own earlier ones,
never with a cutoff: a client is told how they have been answering, not how they rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from alliance.instruments import Instrument
from handlers.texts import Say
from store.history import Trend

EARLIER = 5  # the earlier answers the latest is compared with, at most
MIN_EARLIER = 2  # fewer than this: too few to say
SHARE = 0.1  # without a reliable change: a tenth of the scale is a change


def direction(values: Sequence[float], spread: float, usual: float | None = None) -> str | None:
    """'lower', 'higher' or 'steady': the latest of `values` against `usual` (by default the
    mean of up to EARLIER before it), more than `spread` away; None with too few answers."""
    if not values:
        return None
    if usual is None:
        earlier = list(values[:-1])[-EARLIER:]
        if len(earlier) < MIN_EARLIER:
            return None
        usual = fmean(earlier)
    latest = values[-1]
    if latest < usual - spread:
        return "lower"
    if latest > usual + spread:
        return "higher"
    return "steady"


def _spread(instrument: Instrument) -> float:
    return instrument.reliable_change or instrument.max_total * SHARE


def readings(
    say: Say, trend: Trend, alliance: Instrument | None, wellbeing: Instrument | None
) -> dict[str, str]:
    """A sentence per instrument with enough answers to read, keyed by instrument id."""
    found: dict[str, str] = {}
    if alliance is not None:
        totals = [p.alliance for p in trend.points if p.alliance is not None]
        if trend.baseline is not None and trend.band is not None:  # the chart's usual range
            way = direction(totals, trend.band, trend.baseline)
        else:
            way = direction(totals, _spread(alliance))
        if way is not None:
            found[alliance.id] = say(f"progress_alliance_{way}")
    if wellbeing is not None:
        totals = [p.wellbeing for p in trend.points if p.wellbeing is not None]
        way = direction(totals, _spread(wellbeing))
        if way is not None:
            found[wellbeing.id] = say(f"progress_wellbeing_{way}")
    return found


def help_text(say: Say, progress: bool) -> str:
    """/help, without the /progress line where the practice turned it off."""
    text = say("help")
    if progress:
        return text
    return "\n".join(line for line in text.split("\n") if not line.startswith("/progress"))
