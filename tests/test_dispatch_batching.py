"""A fan-out in batches and chunks, on real databases: each check-in claimed, sent once and
recorded with its own outcome, two chunks in flight and no more, a crash mid fan-out settled
by the next process, and a claim that reads what it needs once per batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.config import load_instruments
from schedules.dispatcher import Attempting, Dispatcher
from store import checkins, people
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder, SendResult, TapResult
from store.db import transaction
from store.models import CheckIn, CheckInState, Client, ClientStatus
from store.notices import PendingNotice
from store.outbox import SendOutcome
from store.vault import Vault
from tests.conftest import Database
from tests.factories import NOW, tap

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


class Limited:
    """A messenger behind a stand-in rate limiter. Sends wait in it until it admits them,
    `wire` at a time; only an admitted send is recorded as attempted (as the bot's limiter
    does), so sends still waiting are not. An admitted send finishes only once the dispatcher
    has handed over `window` sends beyond it (or all `total`): a dispatcher that let the
    limiter run dry (waiting between sends, or between batches) would hang here. It can die
    at its `die_at`-th admitted send, and remembers what it sent and reminded."""

    def __init__(self, window: int, total: int, wire: int = 2, die_at: int | None = None):
        self.window, self.total, self.die_at = window, total, die_at
        self.handed = self.outstanding = self.most_outstanding = 0
        self.attempted: list[uuid.UUID] = []
        self.sent: list[uuid.UUID] = []
        self.chats: list[int] = []
        self.ids: dict[uuid.UUID, int] = {}
        self.reminders: list[Reminder] = []
        self.dead = False
        self._gate = asyncio.Semaphore(wire)
        self._changed = asyncio.Condition()

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting
    ) -> tuple[SendOutcome, int | None]:
        async with self._changed:
            self.handed += 1
            handed = self.handed
            self.outstanding += 1
            self.most_outstanding = max(self.most_outstanding, self.outstanding)
            self._changed.notify_all()
        try:
            async with self._gate:  # admitted by the limiter
                if self.dead:
                    raise ProcessDied
                if not await attempting():
                    return SendOutcome.NOT_SENT, None
                self.attempted.append(outgoing.checkin_id)
                async with self._changed:
                    if len(self.attempted) == self.die_at:
                        self.dead = True  # every send of this "process" ends with it
                        self._changed.notify_all()
                        raise ProcessDied
                    enough = min(handed + self.window - 1, self.total)
                    await self._changed.wait_for(lambda: self.dead or self.handed >= enough)
                    if self.dead:
                        raise ProcessDied
                self.sent.append(outgoing.checkin_id)
                self.chats.append(outgoing.chat_id)
                self.ids[outgoing.checkin_id] = 1000 + len(self.sent)
                return SendOutcome.SENT, self.ids[outgoing.checkin_id]
        finally:
            self.outstanding -= 1

    async def send_alerts(self, group: Sequence[PendingAlert]) -> tuple[SendOutcome, int | None]:
        return SendOutcome.SENT, 1

    async def send_notice(self, notice: PendingNotice) -> tuple[SendOutcome, int | None]:
        return SendOutcome.SENT, 1

    async def send_reminder(self, reminder: Reminder, attempting: Attempting) -> SendOutcome:
        if not await attempting():
            return SendOutcome.NOT_SENT
        self.reminders.append(reminder)
        return SendOutcome.SENT


def _dispatcher(
    database: Database, vault: Vault, messenger: Limited, now: datetime, batch: int = 12
) -> Dispatcher:
    return Dispatcher(
        database.sessions,
        vault,
        INSTRUMENTS,
        messenger,
        lambda: now,
        batch=batch,
        window=messenger.window,
        lease=LEASE,
        reminder_delay=timedelta(hours=4),
    )


async def test_a_fan_out_sends_each_once_and_keeps_the_limiter_fed(
    database: Database, vault: Vault
) -> None:
    due = await _due_checkins(database, vault, 23)
    messenger = Limited(window=8, total=23)
    dispatcher = _dispatcher(database, vault, messenger, NOW)
    report = await asyncio.wait_for(dispatcher.tick(), timeout=120)  # a hang fails, not waits
    assert report.sent == 23 and report.failed == 0  # one tick, two batches of 12
    assert sorted(messenger.sent) == sorted(due)  # each once
    assert dict(zip(messenger.sent, messenger.chats, strict=True)) == {  # to its own client
        checkin_id: FIRST_TG + n for n, checkin_id in enumerate(due)
    }
    assert messenger.most_outstanding == 8  # the window is kept full, and no more
    rows = await _rows(database)
    assert {row.state for row in rows.values()} == {CheckInState.SENT}
    assert {row.id: row.message_id for row in rows.values()} == messenger.ids  # each its own
    assert all(row.sent_at == NOW and row.lease_until is None for row in rows.values())
    assert (await dispatcher.tick()).sent == 0  # nothing is sent twice


async def test_a_crash_leaves_only_the_sends_on_the_wire_in_doubt_and_reminds_them(
    database: Database, vault: Vault
) -> None:
    due = await _due_checkins(database, vault, 15)
    dying = Limited(window=6, total=15, wire=2, die_at=7)
    with pytest.raises(ProcessDied):
        await asyncio.wait_for(_dispatcher(database, vault, dying, NOW).tick(), timeout=120)
    crashed = (await _rows(database)).values()
    in_doubt = {row.id for row in crashed if row.sending_at is not None and not row.message_id}
    # Only what the limiter had admitted was recorded as attempted: not the sends that
    # were still waiting in it, and not the rest of the claim.
    assert in_doubt == set(dying.attempted) - set(dying.sent)
    assert 0 < len(in_doubt) <= 2  # the requests in flight (`wire`) when it died
    later = NOW + LEASE + timedelta(minutes=1)  # a new process, after the lease ran out
    survivor = Limited(window=6, total=15 - len(dying.sent) - len(in_doubt))
    report = await asyncio.wait_for(_dispatcher(database, vault, survivor, later).tick(), 120)
    rows = await _rows(database)
    assert report.reaped > 0
    assert set(survivor.sent) == set(due) - set(dying.sent) - in_doubt  # the rest goes now
    assert not set(dying.sent) & set(survivor.sent)  # nothing twice
    assert {row.state for row in rows.values()} == {CheckInState.SENT}  # nothing lost
    assert {row.id for row in rows.values() if row.message_id is None} == in_doubt
    # Each check-in in doubt is never sent again as such: its reminder carries it, at once.
    assert sorted(r.checkin_id for r in survivor.reminders) == sorted(in_doubt)
    assert all(r.carries is not None and r.carries.position == 0 for r in survivor.reminders)
    assert all(rows[i].reminded_at == later for i in in_doubt)
    again = Limited(window=6, total=0)
    assert (await _dispatcher(database, vault, again, later + timedelta(hours=1)).tick()).sent == 0
    assert again.reminders == []  # each reminded once


class TakenOver(Limited):
    """At its first admitted send, the lease of this claim 'runs out' and another process
    takes over every check-in of it not yet attempted."""

    def __init__(self, database: Database, window: int, total: int) -> None:
        super().__init__(window, total, wire=1)
        self.database = database
        self.other = uuid.uuid4()
        self.taken = False

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting
    ) -> tuple[SendOutcome, int | None]:
        async def first_admitted_is_taken_over() -> bool:
            if not self.taken:
                self.taken = True
                async with transaction(self.database.sessions) as session:
                    await session.execute(
                        update(CheckIn)
                        .where(
                            CheckIn.state == CheckInState.SENDING,
                            CheckIn.id != outgoing.checkin_id,
                        )
                        .values(claim=self.other)
                    )
            return await attempting()

        return await super().send_checkin(outgoing, first_admitted_is_taken_over)


async def test_a_send_whose_claim_was_taken_over_is_not_made_from_here(
    database: Database, vault: Vault
) -> None:
    due = await _due_checkins(database, vault, 5)
    messenger = TakenOver(database, window=5, total=1)
    report = await asyncio.wait_for(_dispatcher(database, vault, messenger, NOW).tick(), 120)
    assert len(messenger.sent) == 1 and report.sent == 1  # only the one it still held
    rows = await _rows(database)
    others = [rows[i] for i in due if i not in messenger.sent]
    assert len(others) == 4
    # The other process's claim is left as it is: still sending, not attempted from here.
    assert all(row.state == CheckInState.SENDING for row in others)
    assert all(row.claim == messenger.other and row.sending_at is None for row in others)


async def test_a_reminder_goes_once(database: Database, vault: Vault) -> None:
    (checkin_id,) = await _due_checkins(database, vault, 1)
    messenger = Limited(window=2, total=1)
    await _dispatcher(database, vault, messenger, NOW).tick()
    assert messenger.sent == [checkin_id] and messenger.reminders == []
    remind = NOW + timedelta(hours=4, minutes=1)
    for _ in range(3):  # three ticks, or three processes, at the reminder's time
        await _dispatcher(database, vault, messenger, remind).tick()
    assert [r.checkin_id for r in messenger.reminders] == [checkin_id]
    assert messenger.reminders[0].carries is None  # it arrived: an ordinary reminder
    assert (await _rows(database))[checkin_id].reminded_at == remind


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
    # The message arrived: a tap.
    outcome = await tap(database.sessions, vault, checkin_id, 0, 5, user=FIRST_TG, now=tapped)
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


async def test_the_usual_write_records_answers_and_attempts_held_by_their_claims(
    database: Database, vault: Vault
) -> None:
    """checkins.record_and_attempt (one statement in autocommit on PostgreSQL) records what
    record_sends and mark_attempting would: sent and unconfirmed, a tapped check-in's
    progress kept, and attempts only where their claim still holds the check-in."""
    sent, unknown, tapped, ours, taken_over, again = await _due_checkins(database, vault, 6)
    claim, other = uuid.uuid4(), uuid.uuid4()
    async with transaction(database.sessions) as session:
        await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW, limit=10, lease=LEASE, claim=claim
        )
        held = await checkins.mark_attempting(session, [sent, unknown, tapped, again], claim, NOW)
    assert held == {sent, unknown, tapped, again}
    async with transaction(database.sessions) as session:  # its lease ran out meanwhile
        await session.execute(update(CheckIn).where(CheckIn.id == taken_over).values(claim=other))
    tap_at = NOW + timedelta(seconds=1)
    outcome = await tap(database.sessions, vault, tapped, 0, 5, user=FIRST_TG + 2, now=tap_at)
    assert outcome.result == TapResult.NEXT
    later, remind = NOW + timedelta(seconds=2), NOW + timedelta(hours=8)
    async with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with contextlib.AsyncExitStack() as stack:
            if connection.dialect.name != "postgresql":
                await stack.enter_async_context(connection.begin())
            attempted = await checkins.record_and_attempt(
                connection,
                [
                    SendResult(sent, SendOutcome.SENT, 501, remind),
                    SendResult(unknown, SendOutcome.UNKNOWN, None, remind),
                    SendResult(tapped, SendOutcome.SENT, 77, remind),
                ],
                [(ours, claim), (taken_over, claim), (again, claim)],
                later,
            )
    assert attempted == {ours}  # another claim holds one; the other was attempted already
    rows = await _rows(database)
    assert (rows[sent].state, rows[sent].sent_at, rows[sent].message_id) == (
        CheckInState.SENT,
        later,
        501,
    )
    assert rows[sent].reminder_at == remind and rows[sent].lease_until is None
    assert (rows[unknown].state, rows[unknown].message_id) == (CheckInState.SENT, None)
    assert (rows[tapped].state, rows[tapped].position, rows[tapped].sent_at) == (
        CheckInState.IN_PROGRESS,
        1,
        tap_at,
    )
    assert rows[tapped].message_id == 77 and rows[tapped].reminder_at is None
    assert (rows[ours].state, rows[ours].sending_at) == (CheckInState.SENDING, later)
    assert rows[taken_over].sending_at is None and rows[taken_over].claim == other
    assert rows[again].sending_at == NOW
