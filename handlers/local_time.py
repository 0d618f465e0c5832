"""Moments as a client reads them: a day and a time in their own time zone, never UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

WEEK = 7


def day_time(instant: datetime, zone: str, now: datetime | None = None) -> str:
    """'Tue 18:00' when the moment falls within the coming week (so the weekday names one
    day), else 'Tue 8 Dec 18:00'; in `zone`, the client's."""
    tz = ZoneInfo(zone)
    local = instant.astimezone(tz)
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    if 0 <= (local.date() - today).days < WEEK:
        return f"{local:%a %H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"
