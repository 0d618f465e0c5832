"""One shape for every message the bot sends: claimed with a lease, the outcome recorded, the
retry rules in one place.

Alerts, notices, pre-session briefs and weekly digests are rows with the `Deliverable`
columns: due when `next_delivery_at` has come; a sender claims a row by moving it a lease
ahead (`lease`), so a crash means the row comes back when the lease ends; what Telegram
answered is recorded with `settle`. Check-ins and their reminders keep their own richer state
(checkin.state, the claim and its lease, the attempt recorded right before the request), but
speak the same `SendOutcome`.

Telegram has no idempotency key, so a send that timed out may or may not have arrived. Each
kind of message says which mistake it would rather make (`Guarantee`): an alert or a notice to
a therapist is sent again (at least once); a check-in, a brief or a digest is not (at most once
from an unclear answer; a send that surely did not leave is always tried again).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

CLAIM_LEASE = timedelta(minutes=2)
RETRY_BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5))


class SendOutcome(enum.StrEnum):
    """What one send learned from Telegram; decides what the database records."""

    SENT = "sent"
    BLOCKED = "blocked"  # the recipient blocked the bot
    REJECTED = "rejected"  # refused for good (bad request)
    NOT_SENT = "not_sent"  # surely never reached Telegram: try again
    UNKNOWN = "unknown"  # timed out: may have arrived


class Guarantee(enum.Enum):
    AT_LEAST_ONCE = "at least once"  # alerts, notices: better twice than never
    AT_MOST_ONCE = "at most once"  # check-ins, briefs, digests: never twice blindly


class Deliverable:
    """The outbox columns of a message row (a mixin for store.models)."""

    next_delivery_at: Mapped[datetime | None] = mapped_column(index=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)


def retry_at(attempts: int, now: datetime) -> datetime:
    """When to try again after `attempts` failed tries (capped back-off)."""
    return now + RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF) - 1)]


def lease(row: Deliverable, now: datetime) -> None:
    """Claim the row for one send: no other sender takes it until the lease ends."""
    row.next_delivery_at = now + CLAIM_LEASE


async def claim_new(session: AsyncSession, row: Deliverable, now: datetime) -> bool:
    """Add a new message row, claimed: its unique key (a client's session, a therapist's day)
    is the claim. False when another sender added it first (between its read and this
    insert)."""
    lease(row, now)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def settle(
    row: Deliverable,
    outcome: SendOutcome,
    message_id: int | None,
    now: datetime,
    guarantee: Guarantee,
) -> bool:
    """Record what one send did, by the retry rules; True when the row is done with
    (delivered, or given up), False when it will be tried again."""
    row.delivery_attempts += 1
    maybe = outcome is SendOutcome.UNKNOWN and guarantee is Guarantee.AT_MOST_ONCE
    if outcome is SendOutcome.SENT or maybe:
        row.delivered_at, row.message_id, row.next_delivery_at = now, message_id, None
        return True
    if outcome is SendOutcome.NOT_SENT or guarantee is Guarantee.AT_LEAST_ONCE:
        row.next_delivery_at = retry_at(row.delivery_attempts - 1, now)
        return False
    row.next_delivery_at = None  # refused or blocked, and not to be repeated
    return True
