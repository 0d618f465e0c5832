"""A client's own trend in plain words: steady, lower lately or higher lately.

The same words answer /progress and follow the scores a practice shows after a check-in
(`[checkins] show_scores`); which way the answers went is alliance.progress's reading.
"""

from __future__ import annotations

from alliance.instruments import Instrument
from alliance.progress import direction, spread
from handlers.texts import Say
from store.history import Trend


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
            way = direction(totals, spread(alliance))
        if way is not None:
            found[alliance.id] = say(f"progress_alliance_{way}")
    if wellbeing is not None:
        totals = [p.wellbeing for p in trend.points if p.wellbeing is not None]
        way = direction(totals, spread(wellbeing))
        if way is not None:
            found[wellbeing.id] = say(f"progress_wellbeing_{way}")
    return found


def help_text(say: Say, progress: bool) -> str:
    """/help, without the /progress line where the practice turned it off."""
    text = say("help")
    if progress:
        return text
    return "\n".join(line for line in text.split("\n") if not line.startswith("/progress"))
