"""Moments as a client reads them: a day and a time in their own time zone, never UTC, written
the way their language writes dates (Babel's locale data)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from handlers.i18n import day_month_time, day_month_year, weekday_time

WEEK = 7


def day_time(
    instant: datetime, zone: str, now: datetime | None = None, language: str | None = None
) -> str:
    """'Tue 18:00' when the moment falls within the coming week (so the weekday names one
    day), else 'Tue 8 Dec 18:00'; in `zone`, the client's, and in their `language` ('Di.,
    18:00', 'mar, 18:00'; English as 'en_GB': day before month, 24 hours)."""
    tz = ZoneInfo(zone)
    local = instant.astimezone(tz)
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    if 0 <= (local.date() - today).days < WEEK:
        return weekday_time(local, language)
    return day_month_time(local, language)


def day(instant: datetime, zone: str, language: str | None = None) -> str:
    """A date alone, in the reader's zone and language: '8 Dec 2026', '08.12.2026'."""
    return day_month_year(instant.astimezone(ZoneInfo(zone)), language)
