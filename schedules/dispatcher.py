"""The dispatcher tick: plan, claim what is due, hand it to the messenger, record what happened.

The database decides what is due; the clock that calls `tick` (APScheduler, via PTB's job
queue) only decides when to look, so nothing is lost when a tick is late or skipped. Several
processes may tick against one PostgreSQL database: every claim uses SKIP LOCKED and a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from alliance.instruments import Instrument
from review import decide as review
from review.decide import Detection
from schedules.planner import Planner
from schedules.rules import QuietHours, reminder_at
from store import alerts, checkins, clients, notices
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder
from store.db import interactive, transaction
from store.notices import PendingNotice
from store.outbox import SendOutcome
from store.vault import Vault

log = logging.getLogger(__name__)

Sent = tuple[SendOutcome, int | None]  # what the messenger answers for one check-in
Attempting = Callable[[], Awaitable[bool]]  # records a send as attempted; False: do not send


class Messenger(Protocol):
    """What the dispatcher needs from Telegram (handlers.delivery.Messenger provides it)."""

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting
    ) -> tuple[SendOutcome, int | None]:
        """Send one check-in. `attempting` must be awaited right before the request goes on
        the wire (after the rate limiter admitted it); when it answers False the send must
        not be made (the answer is then NOT_SENT)."""
        ...

    async def send_alerts(self, group: Sequence[PendingAlert]) -> tuple[SendOutcome, int | None]:
        """One client's alerts in one message; the outcome and the message's id."""
        ...

    async def send_notice(self, notice: PendingNotice) -> tuple[SendOutcome, int | None]: ...

    async def send_reminder(self, reminder: Reminder, attempting: Attempting) -> SendOutcome:
        """Send one reminder; `attempting` as for `send_checkin`."""
        ...


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


class _Ledger:
    """The send path's writes, a few transactions for many sends: each send's attempt,
    recorded right before its request goes on the wire (the send waits for that commit),
    and what Telegram answered. Attempts and answers that arrive while a commit runs go
    into the next one together. The usual write (attempts, and sends answered sent or
    unconfirmed) goes through one connection held for the fan-out: on PostgreSQL it is one
    statement in autocommit, one round trip (`checkins.record_and_attempt`).

    While the database cannot be written, attempts are refused (those sends are not made
    and are answered NOT_SENT) and answers are kept and written once it can be again; after
    `give_up` of failures the ledger stops and the reaper settles what is left."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        clock: Callable[[], datetime],
        writing: asyncio.Lock,
        give_up: timedelta,
        remind: Callable[[Outgoing, SendOutcome, datetime], datetime | None],
    ) -> None:
        self._sessions, self._vault, self._clock = sessions, vault, clock
        engine = sessions.kw.get("bind")
        assert isinstance(engine, AsyncEngine), "Rapport's sessions are bound to an engine"
        self._engine = engine
        self._connection: AsyncConnection | None = None  # held for the usual writes
        self._remind = remind  # when to remind, from the time the send is recorded
        self._writing = writing  # one writer at a time on the send path (SQLite)
        self._give_up = give_up.total_seconds()
        self._marks: dict[uuid.UUID, list[tuple[uuid.UUID, asyncio.Future[bool]]]] = {}
        self._answers: list[tuple[Outgoing, Sent, uuid.UUID]] = []
        self._wake = asyncio.Event()
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._closing = False

    async def attempting(self, claim: uuid.UUID, checkin_id: uuid.UUID) -> bool:
        """Commit that this send is about to go on the wire. False: do not send it (another
        claim holds it now, or the database cannot be written)."""
        if not self._healthy.is_set():
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.setdefault(claim, []).append((checkin_id, future))
        self._wake.set()
        return await future

    def answer(self, outgoing: Outgoing, sent: Sent, claim: uuid.UUID) -> None:
        self._answers.append((outgoing, sent, claim))
        self._wake.set()

    async def healthy(self, writer: asyncio.Task[None]) -> None:
        """Return once the database can be written; raise if the ledger gave up."""
        if not self._healthy.is_set():
            waiting = asyncio.ensure_future(self._healthy.wait())
            await asyncio.wait({waiting, writer}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        if writer.done():
            writer.result()  # raises what stopped it
            raise RuntimeError("the send ledger stopped")

    async def close(self, writer: asyncio.Task[None]) -> None:
        """Write what is left, then stop."""
        self._closing = True
        self._wake.set()
        await writer

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        pause = 0.2
        try:
            while True:
                if not self._closing:
                    await self._wake.wait()
                    # One turn of the loop before collecting: the sends that the last commit
                    # let go answer, and those handed over in their place reach their
                    # attempts, so both go into one commit rather than two.
                    await asyncio.sleep(0)
                self._wake.clear()
                marks, self._marks = self._marks, {}
                answers, self._answers = self._answers, []
                if not (marks or answers or failing_since is not None):
                    if self._closing:
                        return
                    continue
                try:
                    held = await self._write(marks, answers)
                except Exception as exc:  # the database is unreachable, or refused this
                    self._answers[:0] = answers
                    for pending in marks.values():
                        for _, future in pending:
                            future.set_result(False)
                    failing_since = failing_since or loop.time()
                    self._healthy.clear()
                    log.warning("send records failed (%s); retrying", type(exc).__name__)
                    if loop.time() - failing_since > self._give_up:
                        raise
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
                    self._wake.set()
                    continue
                if failing_since is not None:
                    log.info("send records written again")
                failing_since, pause = None, 0.2
                self._healthy.set()
                for pending in marks.values():
                    for checkin_id, future in pending:
                        future.set_result(checkin_id in held)
        finally:
            for pending in self._marks.values():
                for _, future in pending:
                    if not future.done():
                        future.set_result(False)
            if self._connection is not None:
                connection, self._connection = self._connection, None
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _write(
        self,
        marks: Mapping[uuid.UUID, list[tuple[uuid.UUID, asyncio.Future[bool]]]],
        answers: list[tuple[Outgoing, Sent, uuid.UUID]],
    ) -> set[uuid.UUID]:
        async with self._writing:
            now = self._clock()
            results = [
                checkins.SendResult(
                    o.checkin_id, outcome, sent_id, self._remind(o, outcome, now), claim
                )
                for o, (outcome, sent_id), claim in answers
            ]
            attempts = [(checkin_id, claim) for claim, m in marks.items() for checkin_id, _ in m]
            if (results or attempts) and self._usual(results, attempts):
                return await self._write_usual(results, attempts, now)
            held: set[uuid.UUID] = set()
            async with transaction(self._sessions) as session:
                if results:
                    await checkins.record_sends(session, self._vault, results, now)
                for claim, pending in marks.items():
                    ids = [checkin_id for checkin_id, _ in pending]
                    held |= await checkins.mark_attempting(session, ids, claim, now)
                if not (marks or answers):
                    await session.execute(select(literal(1)))  # is the database back?
            return held

    @staticmethod
    def _usual(
        results: Sequence[checkins.SendResult], attempts: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> bool:
        """Only sends answered sent or unconfirmed, and attempts, each check-in named once:
        what `checkins.record_and_attempt` records."""
        if any(r.outcome not in (SendOutcome.SENT, SendOutcome.UNKNOWN) for r in results):
            return False
        named = {r.checkin_id for r in results} | {checkin_id for checkin_id, _ in attempts}
        return len(named) == len(results) + len(attempts)

    async def _write_usual(
        self,
        results: Sequence[checkins.SendResult],
        attempts: Sequence[tuple[uuid.UUID, uuid.UUID]],
        now: datetime,
    ) -> set[uuid.UUID]:
        """The usual write on a connection held for the fan-out (no checkout and ping per
        write): on PostgreSQL one statement in autocommit; on SQLite a transaction of a few
        short statements, run on the event loop's thread (`store.db.interactive`: a trip to
        the connection's thread costs more than such a statement). A connection that failed
        is dropped, and the next write takes a new one."""
        if self._connection is None:
            connection = await self._engine.connect()
            if connection.dialect.name == "postgresql":
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        connection = self._connection
        try:
            if connection.dialect.name == "postgresql":
                return await checkins.record_and_attempt(connection, results, attempts, now)
            with interactive():  # short statements: on the event loop's thread (store.db)
                async with connection.begin():
                    return await checkins.record_and_attempt(connection, results, attempts, now)
        except BaseException:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
            raise


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
        window: int = 8,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        """Due check-ins are claimed `batch` at a time; `window` sends at once are handed to
        the messenger, where they wait for the bot's rate limiter. The window bounds what a
        crash can leave in doubt (the limiter lets a burst out at the start of a fan-out);
        8 requests at about 0.1 s each still carry well over Telegram's 30 messages/s. Each
        send is recorded as attempted only once the limiter admits it, right before its
        request goes on the wire, so after a crash only the requests in flight are in doubt."""
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
        self._window = window
        self._lease = lease
        self._lock = asyncio.Lock()
        self._writing = asyncio.Lock()
        self.ticks = 0  # ticks finished (tests wait on this to know one more has run)

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
            self.ticks += 1
            return report

    async def _checkins(self, report: TickReport) -> None:
        """Claim due check-ins `batch` at a time and send them, `window` at a time, until
        none is due.

        Each send waits in the rate limiter unrecorded; once admitted, it is recorded as
        attempted (committed, together with the other sends admitted meanwhile), and only
        then does its request leave. What Telegram answered is recorded as it comes. The
        next batch is claimed while the last sends of the previous one still wait, so the
        limiter never runs dry during a fan-out. A crash leaves in doubt only the sends
        recorded as attempted and not yet answered: the requests in flight (see
        `checkins.reap`). If the database cannot be written, sends not yet attempted are
        not made and go back to due once it can. A send that raises (rather than answering
        an outcome) does not stop the others; the first such error is raised once all are
        done (the reaper settles its check-in).
        """
        ledger = _Ledger(
            self._sessions, self._vault, self._clock, self._writing, self._lease / 2, self._remind
        )
        writer = asyncio.create_task(ledger.run())
        room = asyncio.Semaphore(self._window)
        sending: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []  # raised by a send: raised here once all are done

        def finished(task: asyncio.Task[None]) -> None:
            sending.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failed.append(error)

        following: asyncio.Task[tuple[uuid.UUID, list[Outgoing]]] | None = None
        try:
            claim, claimed = await self._claim()
            while claimed:
                for n, outgoing in enumerate(claimed):
                    if following is None and n >= len(claimed) - self._window:
                        following = asyncio.create_task(self._claim())
                    await ledger.healthy(writer)
                    await room.acquire()
                    task = asyncio.create_task(self._send(outgoing, claim, ledger, room, report))
                    sending.add(task)
                    task.add_done_callback(finished)
                if following is None:
                    following = asyncio.create_task(self._claim())
                (claim, claimed), following = await following, None
            await asyncio.gather(*sending, return_exceptions=True)
            if failed:
                raise failed[0]
            await ledger.close(writer)
        except BaseException:
            if following is not None:
                following.cancel()
            for task in sending:  # only after an error; the reaper settles these
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
            if not writer.done():  # keep what Telegram already answered
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ledger.close(writer), self._lease.total_seconds() / 2)
            raise

    async def _claim(self) -> tuple[uuid.UUID, list[Outgoing]]:
        claim = uuid.uuid4()
        async with self._writing, transaction(self._sessions) as session:
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

    async def _send(
        self,
        outgoing: Outgoing,
        claim: uuid.UUID,
        ledger: _Ledger,
        room: asyncio.Semaphore,
        report: TickReport,
    ) -> None:
        try:

            async def attempting() -> bool:
                return await ledger.attempting(claim, outgoing.checkin_id)

            outcome, message_id = await self._messenger.send_checkin(outgoing, attempting)
        finally:
            room.release()
        ledger.answer(outgoing, (outcome, message_id), claim)
        if outcome == SendOutcome.SENT:
            report.sent += 1
        else:
            report.failed += 1

    def _remind(self, outgoing: Outgoing, outcome: SendOutcome, sent: datetime) -> datetime | None:
        if outcome == SendOutcome.UNKNOWN:  # in doubt: its reminder carries it, a lease on
            return sent + self._lease
        return self._reminder_at(outgoing, sent)

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
        """Each reminder is recorded right before its request goes on the wire (so at most
        once, also with several processes); one that surely did not reach Telegram may go at
        a later tick. A reminder whose check-in's own send is in doubt carries it."""
        async with transaction(self._sessions) as session:
            due = await checkins.due_reminders(
                session, self._vault, self._clock(), known=self._instruments
            )
        for reminder in due:
            marked = False

            async def attempting(checkin_id: uuid.UUID = reminder.checkin_id) -> bool:
                nonlocal marked
                try:
                    async with transaction(self._sessions) as session:
                        marked = await checkins.mark_reminded(session, checkin_id, self._clock())
                except Exception as exc:  # the database is unreachable: do not send
                    log.warning("reminder not recorded (%s); not sent", type(exc).__name__)
                    return False
                return marked

            outcome = await self._messenger.send_reminder(reminder, attempting)
            if outcome == SendOutcome.SENT:
                report.reminders += 1
            elif outcome == SendOutcome.NOT_SENT and marked:
                async with transaction(self._sessions) as session:
                    await checkins.unmark_reminded(session, reminder.checkin_id)

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
            outcome, message_id = await self._messenger.send_alerts(group)
            if group[0].to_admin:
                # An alert keeps the id of its message in the therapist's own chat only (the
                # dashboard edits it there); an admin's copy is not edited from elsewhere.
                message_id = None
            async with transaction(self._sessions) as session:
                for alert in group:
                    await alerts.record_delivery(
                        session, alert.alert_id, outcome, message_id, self._clock()
                    )
            if outcome is SendOutcome.SENT:
                report.alerts_sent += len(group)
            else:
                report.alerts_failed += len(group)

    async def _notices(self, report: TickReport) -> None:
        async with transaction(self._sessions) as session:
            pending = await notices.due_for_delivery(session, self._vault, self._clock())
        for notice in pending:
            outcome, message_id = await self._messenger.send_notice(notice)
            async with transaction(self._sessions) as session:
                await notices.record_delivery(
                    session, notice.notice_id, outcome, message_id, self._clock()
                )
            report.notices_sent += outcome is SendOutcome.SENT
