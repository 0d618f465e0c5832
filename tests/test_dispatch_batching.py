"""A fan-out in batches and chunks, on real databases: each check-in claimed, sent once and
recorded with its own outcome, two chunks in flight and no more, a crash mid fan-out settled
by the next process, and a claim that reads what it needs once per batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.config import load_instruments
from review import decide as review
from schedules.dispatcher import Dispatcher
from store import checkins, people
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder, SendOutcome, SendResult, TapAction, TapResult
from store.db import transaction
from store.models import CheckIn, CheckInState, Client, ClientStatus
from store.notices import PendingNotice
from store.vault import Vault
from tests.conftest import Database
from tests.factories import NOW

INSTRUMENTS = load_instruments(None, Path("."))
LEASE = timedelta(minutes=5)
WINDOW = timedelta(hours=24)
FIRST_TG = 810_000


async def _due_checkins(database: Database, vault: Vault, count: int) -> list[uuid.UUID]:
    """`count` enrolled clients (Telegram ids FIRST_TG + n), each with one check-in due NOW."""
    ttl = timedelta(days=1)
    ids = []
    async with transaction(database.sessions) as session:
        therapist, _ = await people.add_therapist(
            session, vault, name="Therapist Ada", is_admin=False, now=NOW, invite_ttl=ttl
        )
        for n in range(count):
            client, invite = await people.invite_client(
                session,
                vault,
                therapist_id=therapist.id,
                label=f"Client {n}",
                timezone="Europe/Berlin",
                schedule_template=None,
                now=NOW,
                invite_ttl=ttl,
            )
            opened = await people.open_invite(session, token=invite.token, now=NOW)
            assert opened is not None
            tg = FIRST_TG + n
            await people.redeem_invite(
                session, vault, invite=opened, telegram_user_id=tg, chat_id=tg, now=NOW
            )
            queued = await checkins.queue_now(
                session, client_id=client.id, instruments=["alliance"], now=NOW, window=WINDOW
            )
            ids.append(queued.id)
    return ids


async def _rows(database: Database) -> dict[uuid.UUID, CheckIn]:
    async with database.sessions() as session:
        return {row.id: row for row in (await session.scalars(select(CheckIn))).all()}


class ProcessDied(Exception):
    """Stands for the process being killed during a send."""


class Chunked:
    """A messenger whose sends finish only once a send of a later chunk has started (or all
    have): a dispatcher that waited for each chunk before starting the next would hang here.
    It remembers every send, and how many were in flight at most. (It counts chunks by send
    order, so the dispatcher's batch must be a multiple of its chunk.)"""

    def __init__(self, chunk: int, total: int, die_at: int | None = None) -> None:
        self.chunk, self.total, self.die_at = chunk, total, die_at
        self.sent: list[uuid.UUID] = []
        self.chats: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self.dead = False
        self._started = asyncio.Condition()

    async def send_checkin(self, outgoing: Outgoing) -> tuple[SendOutcome, int | None]:
        order = len(self.sent)
        async with self._started:
            if order == self.die_at or self.dead:
                self.dead = True  # every send of this "process" ends with it
                self._started.notify_all()
                raise ProcessDied
            self.sent.append(outgoing.checkin_id)
            self.chats.append(outgoing.chat_id)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            later = (order // self.chunk + 1) * self.chunk  # the first send of a later chunk
            self._started.notify_all()
            await self._started.wait_for(
                lambda: self.dead or len(self.sent) > later or len(self.sent) >= self.total
            )
            self.in_flight -= 1
            if self.dead:
                raise ProcessDied
        return SendOutcome.SENT, 1000 + order

    async def send_alerts(self, group: Sequence[PendingAlert]) -> int | None:
        return 1

    async def send_notice(self, notice: PendingNotice) -> bool:
        return True

    async def send_reminder(self, reminder: Reminder) -> bool:
        return True


def _dispatcher(database: Database, vault: Vault, messenger: Chunked, now: datetime) -> Dispatcher:
    return Dispatcher(
        database.sessions,
        vault,
        INSTRUMENTS,
        messenger,
        lambda: now,
        batch=3 * messenger.chunk,
        chunk=messenger.chunk,
        lease=LEASE,
    )


async def test_a_fan_out_sends_each_once_with_two_chunks_in_flight(
    database: Database, vault: Vault
) -> None:
    due = await _due_checkins(database, vault, 23)
    messenger = Chunked(chunk=4, total=23)
    dispatcher = _dispatcher(database, vault, messenger, NOW)
    report = await asyncio.wait_for(dispatcher.tick(), timeout=120)  # a hang fails, not waits
    assert report.sent == 23 and report.failed == 0  # one tick, two batches of 12
    assert sorted(messenger.sent) == sorted(due)  # each once
    assert dict(zip(messenger.sent, messenger.chats, strict=True)) == {  # to its own client
        checkin_id: FIRST_TG + n for n, checkin_id in enumerate(due)
    }
    assert messenger.most_in_flight == 8  # the next chunk goes while one is sent; no third
    rows = await _rows(database)
    assert {row.state for row in rows.values()} == {CheckInState.SENT}
    ids = {messenger.sent[order]: 1000 + order for order in range(23)}
    assert {row.id: row.message_id for row in rows.values()} == ids  # each its own message
    assert all(row.sent_at == NOW and row.lease_until is None for row in rows.values())
    assert (await dispatcher.tick()).sent == 0  # nothing is sent twice


async def test_a_crash_mid_fan_out_leaves_at_most_two_chunks_unconfirmed(
    database: Database, vault: Vault
) -> None:
    due = await _due_checkins(database, vault, 15)
    dying = Chunked(chunk=3, total=15, die_at=7)
    with pytest.raises(ProcessDied):
        await asyncio.wait_for(_dispatcher(database, vault, dying, NOW).tick(), timeout=120)
    crashed = (await _rows(database)).values()
    untried = [row.id for row in crashed if row.sending_at is None]
    attempted = {row.id for row in crashed if row.state == CheckInState.SENDING} - set(untried)
    later = NOW + LEASE + timedelta(minutes=1)  # a new process, after the lease ran out
    survivor = Chunked(chunk=3, total=len(untried))
    report = await asyncio.wait_for(_dispatcher(database, vault, survivor, later).tick(), 120)
    rows = await _rows(database)
    assert report.reaped > 0
    assert sorted(survivor.sent) == sorted(untried)  # what was never tried goes out now
    assert not set(dying.sent) & set(survivor.sent)  # nothing twice
    assert {row.state for row in rows.values()} == {CheckInState.SENT}  # nothing lost
    unconfirmed = {row.id for row in rows.values() if row.message_id is None}
    assert unconfirmed == attempted  # tried when the process died: never sent again
    assert 0 < len(unconfirmed) <= 6  # at most the two chunks that were in flight
    assert set(due) - unconfirmed <= set(dying.sent) | set(survivor.sent)


async def test_record_sends_records_each_outcome(database: Database, vault: Vault) -> None:
    ids = await _due_checkins(database, vault, 5)
    sent, unknown, retry, rejected, blocked = ids
    claim = uuid.uuid4()
    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW, limit=10, lease=LEASE, claim=claim
        )
    async with transaction(database.sessions) as session:
        held = await checkins.mark_attempting(session, [c.checkin_id for c in claimed], claim, NOW)
    assert held == set(ids)
    later, remind = NOW + timedelta(seconds=3), NOW + timedelta(hours=8)
    async with transaction(database.sessions) as session:
        await checkins.record_sends(
            session,
            vault,
            [
                SendResult(sent, SendOutcome.SENT, 501, remind),
                SendResult(unknown, SendOutcome.UNKNOWN, None, remind),
                SendResult(retry, SendOutcome.NOT_SENT),
                SendResult(rejected, SendOutcome.REJECTED),
                SendResult(blocked, SendOutcome.BLOCKED),
            ],
            later,
        )
    rows = await _rows(database)
    assert (rows[sent].state, rows[sent].sent_at, rows[sent].message_id) == (
        CheckInState.SENT,
        later,
        501,
    )
    assert rows[sent].reminder_at == remind and rows[sent].lease_until is None
    # Timed out: it may have arrived, so it counts as sent (its buttons work), without an id.
    assert (rows[unknown].state, rows[unknown].message_id) == (CheckInState.SENT, None)
    assert (rows[retry].state, rows[retry].sending_at) == (CheckInState.DUE, None)
    assert rows[retry].lease_until is None
    assert (rows[rejected].state, rows[rejected].closed_at) == (CheckInState.CANCELLED, later)
    assert rows[blocked].state == CheckInState.CANCELLED
    async with database.sessions() as session:
        owner = await session.get(Client, rows[blocked].client_id)
    assert owner is not None and owner.status == ClientStatus.UNREACHABLE
    async with transaction(database.sessions) as session:  # the retried one goes out again
        again = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=later, limit=10, lease=LEASE
        )
    assert [c.checkin_id for c in again] == [retry]


async def test_a_tap_before_the_record_of_its_send_keeps_its_progress(
    database: Database, vault: Vault
) -> None:
    (checkin_id,) = await _due_checkins(database, vault, 1)
    claim = uuid.uuid4()
    async with transaction(database.sessions) as session:
        await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW, limit=1, lease=LEASE, claim=claim
        )
    async with transaction(database.sessions) as session:
        await checkins.mark_attempting(session, [checkin_id], claim, NOW)
    tapped = NOW + timedelta(seconds=1)
    async with transaction(database.sessions) as session:  # the message arrived: a tap
        outcome = await review.tap(
            session,
            vault,
            known=INSTRUMENTS,
            checkin_id=checkin_id,
            action=TapAction.ANSWER,
            position=0,
            value=5,
            telegram_user_id=FIRST_TG,
            now=tapped,
        )
    assert outcome.result == TapResult.NEXT
    async with transaction(database.sessions) as session:
        await checkins.record_sends(
            session, vault, [SendResult(checkin_id, SendOutcome.SENT, 77)], NOW + timedelta(2)
        )
    row = (await _rows(database))[checkin_id]
    assert (row.state, row.position, row.sent_at) == (CheckInState.IN_PROGRESS, 1, tapped)
    assert row.message_id == 77  # only the message id was missing


async def test_claim_cancels_what_cannot_be_sent_and_asks_consent_once_per_language(
    database: Database, vault: Vault
) -> None:
    current, stale, gone = await _due_checkins(database, vault, 3)
    rows = await _rows(database)
    async with transaction(database.sessions) as session:
        await session.execute(update(Client).values(consent_version="v2"))
        await session.execute(  # the consent text changed since this client agreed
            update(Client).where(Client.id == rows[stale].client_id).values(consent_version="v1")
        )
        await session.execute(  # a client who cannot receive it (its check-in still due)
            update(Client).where(Client.id == rows[gone].client_id).values(chat_enc=None)
        )
    asked: list[str] = []

    def consent_version(language: str) -> str:
        asked.append(language)
        return "v2"

    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session,
            vault,
            known=INSTRUMENTS,
            now=NOW,
            limit=10,
            lease=LEASE,
            consent_version=consent_version,
        )
    by_id = {c.checkin_id: c for c in claimed}
    assert set(by_id) == {current, stale}
    assert not by_id[current].renew_consent and by_id[stale].renew_consent
    assert (by_id[current].chat_id, by_id[stale].chat_id) == (FIRST_TG, FIRST_TG + 1)
    assert by_id[current].step.item.id == "bond" and by_id[current].step.position == 0
    assert asked == ["en"]  # once for the batch, not once per check-in
    after = await _rows(database)
    assert after[gone].state == CheckInState.CANCELLED and after[gone].closed_at == NOW
    assert {after[i].state for i in (current, stale)} == {CheckInState.SENDING}
    assert all(after[i].lease_until == NOW + LEASE for i in (current, stale))
