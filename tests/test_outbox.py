"""The outbox's retry rules, one place for every message the bot sends: what each outcome of
a send does to the row, for messages sent at least once (alerts, notices) and at most once
(briefs, digests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.outbox import (
    CLAIM_LEASE,
    RETRY_BACKOFF,
    Deliverable,
    Guarantee,
    SendOutcome,
    lease,
    settle,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Row(Deliverable):
    def __init__(self) -> None:
        self.next_delivery_at: datetime | None = NOW
        self.delivery_attempts = 0
        self.delivered_at: datetime | None = None
        self.message_id: int | None = None


LEAST, MOST = Guarantee.AT_LEAST_ONCE, Guarantee.AT_MOST_ONCE


@pytest.mark.parametrize(
    ("outcome", "guarantee", "done", "delivered", "retry"),
    [
        (SendOutcome.SENT, LEAST, True, True, False),
        (SendOutcome.SENT, MOST, True, True, False),
        (SendOutcome.NOT_SENT, LEAST, False, False, True),
        (SendOutcome.NOT_SENT, MOST, False, False, True),
        (SendOutcome.UNKNOWN, LEAST, False, False, True),  # may not have arrived: again
        (SendOutcome.UNKNOWN, MOST, True, True, False),  # may have arrived: never twice
        (SendOutcome.REJECTED, LEAST, False, False, True),  # an admin may get it later
        (SendOutcome.REJECTED, MOST, True, False, False),  # given up
        (SendOutcome.BLOCKED, LEAST, False, False, True),
        (SendOutcome.BLOCKED, MOST, True, False, False),
    ],
)
def test_each_outcome_by_guarantee(
    outcome: SendOutcome, guarantee: Guarantee, done: bool, delivered: bool, retry: bool
) -> None:
    row = Row()
    lease(row, NOW)
    assert row.next_delivery_at == NOW + CLAIM_LEASE  # claimed: no other sender takes it
    message_id = 7 if outcome is SendOutcome.SENT else None
    assert settle(row, outcome, message_id, NOW, guarantee) is done
    assert (row.delivered_at is not None) is delivered
    assert row.message_id == message_id
    assert row.delivery_attempts == 1
    if retry:
        assert row.next_delivery_at == NOW + RETRY_BACKOFF[0]
    else:
        assert row.next_delivery_at is None


def test_retries_back_off_and_level_out() -> None:
    row = Row()
    waits = []
    for _ in range(len(RETRY_BACKOFF) + 2):
        settle(row, SendOutcome.NOT_SENT, None, NOW, Guarantee.AT_MOST_ONCE)
        assert row.next_delivery_at is not None
        waits.append(row.next_delivery_at - NOW)
    assert waits == [*RETRY_BACKOFF, RETRY_BACKOFF[-1], RETRY_BACKOFF[-1]]
    assert waits == sorted(waits) and waits[-1] <= timedelta(minutes=5)
