"""A state machine over the real planner and dispatcher on SQLite: random rules, clock jumps,
restarts, crashes mid-send and schedule changes. Whatever happens, every slot a rule produced
is delivered or recorded as missed, and nothing is sent twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from bot.config import load_instruments
from schedules.dispatcher import Attempting, Dispatcher
from schedules.planner import Planner
from schedules.rules import EveryNDays, QuietHours, Weekly, occurrences
from store import checkins, people, plans
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder
from store.crypto import KeyRing
from store.db import create_engine, migrate, session_factory, transaction
from store.models import CheckIn, CheckInState, Client
from store.notices import PendingNotice
from store.outbox import SendOutcome
from store.vault import Vault

INSTRUMENTS = load_instruments(None, Path("."))
START = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # the Friday before Europe's clocks change
WINDOW = timedelta(hours=24)
QUIET = QuietHours(time(22), time(7))
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
FINAL = {CheckInState.SENT, CheckInState.MISSED, CheckInState.CANCELLED, CheckInState.EXPIRED}

rules_st = st.one_of(
    st.builds(
        Weekly,
        weekdays=st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True).map(
            lambda days: tuple(sorted(days))
        ),
        at=st.sampled_from([time(2, 30), time(9), time(18, 45), time(23, 30)]),
        instruments=st.just(("alliance",)),
    ),
    st.builds(
        EveryNDays,
        every=st.integers(1, 4),
        start=st.just(START.date()),
        at=st.sampled_from([time(1, 30), time(8, 15), time(20)]),
        instruments=st.just(("who5",)),
    ),
)


class ProcessDied(Exception):
    """Stands for SIGKILL: the dispatcher stops wherever it was."""


class Recorder:
    """A messenger that only remembers what was sent; it can "die" during a send."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []
        self.die_after: int | None = None  # sends until the process dies
        self.arrives_when_dying = False

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting
    ) -> tuple[SendOutcome, int | None]:
        if not await attempting():
            return SendOutcome.NOT_SENT, None
        if self.die_after is not None:
            if self.die_after == 0:
                if self.arrives_when_dying:
                    self.sent.append(outgoing.checkin_id)
                raise ProcessDied
            self.die_after -= 1
        self.sent.append(outgoing.checkin_id)
        return SendOutcome.SENT, len(self.sent)

    async def send_alerts(self, group: Sequence[PendingAlert]) -> tuple[SendOutcome, int | None]:
        return SendOutcome.SENT, 1

    async def send_notice(self, notice: PendingNotice) -> tuple[SendOutcome, int | None]:
        return SendOutcome.SENT, 1

    async def send_reminder(self, reminder: Reminder, attempting: Attempting) -> SendOutcome:
        return SendOutcome.SENT if await attempting() else SendOutcome.NOT_SENT


class Scheduling(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp())
        self.now = START
        self.recorder = Recorder()
        self.vault = Vault(KeyRing.generate())
        self.engine = create_engine(f"sqlite+aiosqlite:///{self.folder / 'r.db'}")
        self.sessions = session_factory(self.engine)
        self.run(migrate(self.engine))
        self.clients: list[uuid.UUID] = []
        # (client, zone, rule, active from, active until) for the independent expectation
        self.periods: list[list[object]] = []
        self.restart()

    def run(self, coroutine: object) -> object:
        return self.loop.run_until_complete(coroutine)  # type: ignore[arg-type]

    def clock(self) -> datetime:
        return self.now

    def restart(self) -> None:
        """A new process: new planner and dispatcher objects; only the database carries over."""
        self.dispatcher = Dispatcher(
            self.sessions,
            self.vault,
            INSTRUMENTS,
            self.recorder,
            self.clock,
            planner=Planner(quiet=QUIET, window=WINDOW),
            batch=7,
            window=6,
            lease=timedelta(minutes=5),
        )

    @initialize(zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3), first=rules_st)
    def start(self, zones: list[str], first: Weekly | EveryNDays) -> None:
        for zone in zones:
            self.enrol(zone, first)

    @precondition(lambda self: len(self.clients) < 4)
    @rule(zone=st.sampled_from(ZONES), first=rules_st)
    def enrol(self, zone: str, first: Weekly | EveryNDays) -> None:
        async def go() -> uuid.UUID:
            async with transaction(self.sessions) as session:
                therapist, _ = await people.add_therapist(
                    session,
                    self.vault,
                    name="T",
                    is_admin=False,
                    now=self.now,
                    invite_ttl=timedelta(days=1),
                )
                client, invite = await people.invite_client(
                    session,
                    self.vault,
                    therapist_id=therapist.id,
                    label="C",
                    timezone=zone,
                    schedule_template=None,
                    now=self.now,
                    invite_ttl=timedelta(days=1),
                )
                opened = await people.open_invite(session, token=invite.token, now=self.now)
                assert opened is not None
                tg = 900_000 + len(self.clients)
                await people.redeem_invite(
                    session,
                    self.vault,
                    invite=opened,
                    telegram_user_id=tg,
                    chat_id=tg,
                    now=self.now,
                )
                return client.id

        client_id = self.run(go())
        assert isinstance(client_id, uuid.UUID)
        self.clients.append(client_id)
        self.change(len(self.clients) - 1, first)

    @precondition(lambda self: bool(self.clients))
    @rule(index=st.integers(0, 3), new=rules_st)
    def change(self, index: int, new: Weekly | EveryNDays) -> None:
        client_id = self.clients[index % len(self.clients)]

        async def go() -> str:
            async with transaction(self.sessions) as session:
                client = await session.get(Client, client_id)
                assert client is not None
                spec = [(new.kind, json.dumps(new.to_spec()))]
                await plans.set_schedule(session, client, spec, template=None, now=self.now)
                return client.timezone

        zone = self.run(go())
        for period in self.periods:
            if period[0] == client_id and period[4] is None:
                period[4] = self.now
        self.periods.append([client_id, zone, new, self.now, None])

    @rule(minutes=st.integers(1, 36 * 60))
    def run_for(self, minutes: int) -> None:
        """Time passes with the bot up: it ticks every so often."""
        end = self.now + timedelta(minutes=minutes)
        while self.now < end:
            self.now = min(end, self.now + timedelta(hours=5))
            self.run(self.dispatcher.tick())

    @rule(minutes=st.integers(1, 3 * 24 * 60))
    def downtime(self, minutes: int) -> None:
        """Time passes with the bot down."""
        self.now += timedelta(minutes=minutes)

    @rule()
    def restart_process(self) -> None:
        self.restart()

    @rule(minutes=st.integers(60, 3 * 24 * 60), after=st.integers(0, 4), arrives=st.booleans())
    def killed_mid_fanout(self, minutes: int, after: int, arrives: bool) -> None:
        """Downtime piles up due check-ins; the process dies during its sends; a new one
        starts after the lease has run out."""
        self.now += timedelta(minutes=minutes)
        self.recorder.die_after, self.recorder.arrives_when_dying = after, arrives
        try:
            self.run(self.dispatcher.tick())
        except ProcessDied:
            pass
        finally:
            self.recorder.die_after = None
        self.restart()
        self.now += timedelta(minutes=6)

    @rule(sent=st.booleans())
    def crash_mid_send(self, sent: bool) -> None:
        """A process claims a chunk, records it as attempted, maybe sends, and dies."""

        async def go() -> None:
            claim = uuid.uuid4()
            async with transaction(self.sessions) as session:
                claimed = await checkins.claim_due(
                    session,
                    self.vault,
                    known=INSTRUMENTS,
                    now=self.now,
                    limit=3,
                    lease=timedelta(minutes=5),
                    claim=claim,
                )
            if not claimed:
                return
            async with transaction(self.sessions) as session:
                held = await checkins.mark_attempting(
                    session, [claimed[0].checkin_id], claim, self.now
                )
            if sent and held:
                self.recorder.sent.append(claimed[0].checkin_id)

        self.run(go())
        self.restart()
        self.now += timedelta(minutes=6)  # past the lease: the reaper frees what it can

    @invariant()
    def nothing_sent_twice(self) -> None:
        assert len(self.recorder.sent) == len(set(self.recorder.sent))

    def teardown(self) -> None:
        try:
            self.now += timedelta(minutes=6)
            self.run(self.dispatcher.tick())  # a last tick after the final clock jump
            self.now += WINDOW + timedelta(minutes=6)
            self.run(self.dispatcher.tick())
            self.run(self.dispatcher.tick())
            self.nothing_sent_twice()
            rows = self.run(self._rows())
            assert isinstance(rows, list)
            by_slot = {(row.client_id, row.slot_at): row for row in rows}
            planned_until = self.now - WINDOW - timedelta(minutes=6)
            # The current rule of each client: every slot it produced must exist, and be closed.
            for client_id, zone, rule_, since, until in self.periods:
                if until is not None or planned_until <= since:  # type: ignore[operator]
                    continue
                end = planned_until
                for slot in occurrences(rule_, zone, since, end, (), QUIET):  # type: ignore[arg-type]
                    row = by_slot.get((client_id, slot))
                    assert row is not None, f"slot {slot} of {rule_} was lost"
                    assert row.state in FINAL, (slot, row.state)
            stale = [r for r in rows if r.due_at <= planned_until and r.state not in FINAL]
            assert stale == [], [(r.due_at, r.state) for r in stale]
            delivered = {row.id for row in rows if row.state == CheckInState.SENT}
            assert set(self.recorder.sent) <= {row.id for row in rows}
            unconfirmed = [r for r in rows if r.state == CheckInState.SENT and r.message_id is None]
            assert delivered - set(self.recorder.sent) <= {r.id for r in unconfirmed}
        finally:
            self.run(self.engine.dispose())
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    async def _rows(self) -> list[CheckIn]:
        async with self.sessions() as session:
            return list((await session.scalars(select(CheckIn))).all())


Scheduling.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestScheduling = Scheduling.TestCase
