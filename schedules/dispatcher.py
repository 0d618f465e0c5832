"""The dispatcher tick: plan, claim what is due, hand it to the messenger, record what happened.

The database decides what is due; the clock that calls `tick` (APScheduler, via PTB's job
queue) only decides when to look, so nothing is lost when a tick is late or skipped. Several
processes may tick against one PostgreSQL database: every claim uses SKIP LOCKED and a lease.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alliance.instruments import Instrument
from review import decide as review
from review.decide import Detection
from schedules.planner import Planner
from schedules.rules import QuietHours, reminder_at
from store import alerts, checkins, clients, notices
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder, SendOutcome
from store.db import transaction
from store.notices import PendingNotice
from store.vault import Vault

log = logging.getLogger(__name__)

Sent = tuple[SendOutcome, int | None]  # what the messenger answers for one check-in


class Messenger(Protocol):
    """What the dispatcher needs from Telegram (handlers.delivery.Messenger provides it)."""

    async def send_checkin(self, outgoing: Outgoing) -> tuple[SendOutcome, int | None]: ...

    async def send_alerts(self, group: Sequence[PendingAlert]) -> int | None: ...

    async def send_notice(self, notice: PendingNotice) -> bool: ...

    async def send_reminder(self, reminder: Reminder) -> bool: ...


@dataclass
class TickReport:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    closed: int = 0
    reaped: int = 0
    reminders: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    notices_sent: int = 0


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        instruments: Mapping[str, Instrument],
        messenger: Messenger,
        clock: Callable[[], datetime],
        *,
        planner: Planner | None = None,
        reminder_delay: timedelta | None = None,
        consent_version: Callable[[str], str] | None = None,
        detection: Detection | None = None,
        batch: int = 1000,
        chunk: int = 20,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        """Due check-ins are claimed `batch` at a time. `chunk` sends are recorded as
        attempted together and run concurrently (Telegram's rate limit is applied by the
        bot's rate limiter); two chunks are in flight at once, so after a crash at most
        2 x `chunk` check-ins can be left unconfirmed. Each chunk costs one transaction."""
        self._sessions = sessions
        self._vault = vault
        self._instruments = instruments
        self._messenger = messenger
        self._clock = clock
        self._consent_version = consent_version
        self._detection = detection or Detection()
        self._planner = planner
        self._reminder_delay = reminder_delay
        self._batch = batch
        self._chunk = chunk
        self._lease = lease
        self._lock = asyncio.Lock()

    async def tick(self) -> TickReport:
        """One pass; ticks never overlap within a process."""
        async with self._lock:
            report = TickReport()
            async with transaction(self._sessions) as session:
                now = self._clock()
                retried, unconfirmed = await checkins.reap(session, now)
                report.reaped = retried + unconfirmed
                report.closed = await review.close_expired(
                    session, self._vault, now, self._instruments, self._detection
                )
                await clients.wake_paused(session, self._vault, now)
            if self._planner is not None:
                async with transaction(self._sessions) as session:
                    report.planned = await self._planner.plan(session, self._clock())
            await self._checkins(report)
            await self._reminders(report)
            await self._alerts(report)
            await self._notices(report)
            if report.sent or report.failed or report.alerts_sent or report.reaped:
                log.info("dispatch: %s", report)
            return report

    async def _checkins(self, report: TickReport) -> None:
        """Claim due check-ins `batch` at a time and send them `chunk` at a time, with two
        chunks in flight, until none is due.

        Each chunk is recorded as attempted (committed) before its sends start. While one
        chunk is being sent the next is already started, and the next batch is claimed while
        the last chunk of the previous one is still being sent, so the rate limiter never
        runs dry during a fan-out. What Telegram answered for a chunk is recorded in the
        transaction that marks the chunk after next, so a crash leaves at most two chunks
        unconfirmed (see `checkins.reap`).
        """
        waiting: deque[tuple[uuid.UUID, list[Outgoing]]] = deque()  # claimed, not yet marked
        flying: deque[tuple[list[Outgoing], asyncio.Task[list[Sent]]]] = deque()
        answered: list[tuple[Outgoing, Sent]] = []
        claiming = True
        try:
            while True:
                if not waiting and claiming:
                    claim, claimed = await self._claim()
                    claiming = bool(claimed)  # until a claim finds nothing more
                    for start in range(0, len(claimed), self._chunk):
                        waiting.append((claim, claimed[start : start + self._chunk]))
                claim, chunk = waiting.popleft() if waiting else (uuid.uuid4(), [])
                if not (chunk or answered or flying):
                    return
                if chunk or answered:
                    chunk = await self._record_and_mark(answered, chunk, claim, report)
                    answered = []
                if chunk:
                    flying.append((chunk, asyncio.create_task(self._send(chunk))))
                if flying and (len(flying) == 2 or not (waiting or claiming)):
                    sending, task = flying.popleft()
                    answered = list(zip(sending, await task, strict=True))
        finally:
            for _, task in flying:  # only after an error; the reaper settles these
                task.cancel()
            await asyncio.gather(*(task for _, task in flying), return_exceptions=True)

    async def _claim(self) -> tuple[uuid.UUID, list[Outgoing]]:
        claim = uuid.uuid4()
        async with transaction(self._sessions) as session:
            claimed = await checkins.claim_due(
                session,
                self._vault,
                known=self._instruments,
                now=self._clock(),
                limit=self._batch,
                lease=self._lease,
                claim=claim,
                consent_version=self._consent_version,
            )
        return claim, claimed

    async def _record_and_mark(
        self,
        answered: list[tuple[Outgoing, Sent]],
        chunk: list[Outgoing],
        claim: uuid.UUID,
        report: TickReport,
    ) -> list[Outgoing]:
        """One transaction: record the sends Telegram answered, and mark the next chunk as
        attempted. Returns the part of `chunk` that this claim still holds."""
        async with transaction(self._sessions) as session:
            now = self._clock()
            if answered:
                results = [
                    checkins.SendResult(o.checkin_id, outcome, sent_id, self._reminder_at(o, now))
                    for o, (outcome, sent_id) in answered
                ]
                await checkins.record_sends(session, self._vault, results, now)
            held = set()
            if chunk:
                ids = [o.checkin_id for o in chunk]
                held = await checkins.mark_attempting(session, ids, claim, now)
        for _, (outcome, _id) in answered:
            if outcome == SendOutcome.SENT:
                report.sent += 1
            else:
                report.failed += 1
        return [o for o in chunk if o.checkin_id in held]

    async def _send(self, chunk: list[Outgoing]) -> list[Sent]:
        return await asyncio.gather(*(self._messenger.send_checkin(o) for o in chunk))

    def _reminder_at(self, outgoing: Outgoing, sent: datetime) -> datetime | None:
        if self._reminder_delay is None or outgoing.expires_at is None:
            return None
        quiet = self._planner.quiet if self._planner else None
        if outgoing.quiet_hours:
            quiet = QuietHours.parse(outgoing.quiet_hours)
        return reminder_at(
            sent, outgoing.expires_at, outgoing.timezone, quiet, self._reminder_delay
        )

    async def _reminders(self, report: TickReport) -> None:
        async with transaction(self._sessions) as session:
            due = await checkins.due_reminders(session, self._vault, self._clock())
        for reminder in due:
            report.reminders += await self._messenger.send_reminder(reminder)

    async def _alerts(self, report: TickReport) -> None:
        async with transaction(self._sessions) as session:
            pending = await alerts.due_for_delivery(
                session,
                self._vault,
                self._clock(),
                known=self._instruments,
                settings=self._detection.settings,
            )
        groups: dict[tuple[uuid.UUID, int], list[PendingAlert]] = {}
        for alert in pending:  # one message per client and recipient: fewer, fuller alerts
            groups.setdefault((alert.client_id, alert.therapist_chat_id), []).append(alert)
        for group in groups.values():
            message_id = await self._messenger.send_alerts(group)
            async with transaction(self._sessions) as session:
                for alert in group:
                    await alerts.record_delivery(session, alert.alert_id, message_id, self._clock())
            if message_id is None:
                report.alerts_failed += len(group)
            else:
                report.alerts_sent += len(group)

    async def _notices(self, report: TickReport) -> None:
        async with transaction(self._sessions) as session:
            pending = await notices.due_for_delivery(session, self._vault, self._clock())
        for notice in pending:
            delivered = await self._messenger.send_notice(notice)
            async with transaction(self._sessions) as session:
                await notices.record_delivery(session, notice.notice_id, delivered, self._clock())
            report.notices_sent += delivered
