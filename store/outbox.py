"""Shared timing for messages the bot must deliver at least once (alerts, notices)."""

from __future__ import annotations

from datetime import datetime, timedelta

CLAIM_LEASE = timedelta(minutes=2)
RETRY_BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5))


def retry_at(attempts: int, now: datetime) -> datetime:
    """When to try again after `attempts` failed tries (capped back-off)."""
    return now + RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF) - 1)]
