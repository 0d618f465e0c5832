"""When a non-urgent alert goes out: after quiet hours, or at the daily digest time."""

from __future__ import annotations

from datetime import UTC, datetime, time

from bot.app import non_urgent_delivery
from schedules.rules import QuietHours

QUIET = QuietHours(time(21), time(8))


def test_alerts_wait_for_the_end_of_quiet_hours() -> None:
    when = non_urgent_delivery("Europe/Berlin", QUIET, None)
    late = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Berlin (CEST)
    assert when(late) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 08:00 CEST
    day = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert when(day) == day


def test_a_daily_digest_gathers_alerts_at_its_time() -> None:
    when = non_urgent_delivery("Europe/Berlin", QUIET, time(8, 30))
    assert when(datetime(2026, 6, 1, 10, 0, tzinfo=UTC)) == datetime(2026, 6, 2, 6, 30, tzinfo=UTC)
    assert when(datetime(2026, 6, 1, 5, 0, tzinfo=UTC)) == datetime(2026, 6, 1, 6, 30, tzinfo=UTC)
