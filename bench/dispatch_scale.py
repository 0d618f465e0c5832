"""Dispatch at scale: a fan-out of many clients due at the same minute, on SQLite and PostgreSQL.

Run (from the repository root):

    .venv/bin/python -m bench.dispatch_scale fanout [--db sqlite|postgres|both]
        [--clients 10000] [--setting 1000x8 --setting 1000x16 ...] [--repeat 1]
        [--profile out.pstats]
    .venv/bin/python -m bench.dispatch_scale ratelimit --rate 30 --clients 1500 [--db ...]
        [--batch 1000] [--window 8]
    .venv/bin/python -m bench.dispatch_scale ptb-ceiling [--clients 2000] [--chunk 20 ...]

Both run the real bot's Dispatcher: the Application from bot.app.build_application goes
through its own post_init (engine, keys, services, Dispatcher, Messenger; its job queue is not
started) against a Bot API on 127.0.0.1, and the bench calls that Dispatcher's tick itself, from
the start of the first tick until every check-in is recorded as sent (one tick claims, sends
and records the whole backlog; the loop ticks again only if it did not).

`fanout`: the Dispatcher's messenger is replaced by a no-op one that does what
handlers.delivery.Messenger.send_checkin does short of Telegram: it renders each check-in with
the Messenger's own `checkin_message`, then awaits the attempt (recorded by the Dispatcher's
send ledger, as the bot's rate limiter does once it admits a request), and answers
(SendOutcome.SENT, a fake message id) at once: Rapport's own work per check-in, without
Telegram's limit. The batch (check-ins claimed at a time) and the window (sends handed to the
messenger at once; default: the bot's own, see schedules/dispatcher.py) can be set per run. A
second table shows where the time goes.

`ratelimit`: the real Messenger on the Application's ExtBot, with the bot configured as a
practice would (RAPPORT_SEND_RATE=RATE: bot/app.py gives its rate limiter overall_max_rate=RATE
per second, max_retries=3), sending over real HTTP to the fake Bot API of tests/botapi, run in
a separate process. `--rate 0` turns the overall limit off (a diagnostic ceiling).

`ptb-ceiling`: the same ExtBot settings (builder defaults, the bot's rate limiter class with the
overall limit off) calling sendMessage with a rendered first question, `--chunk` at a time, to
the same fake Bot API, without any database work: how fast PTB and its HTTP client alone can
send on this machine, and the CPU time each side spends per message.

Each run gets a fresh database (a SQLite file, or a new PostgreSQL database created and dropped
in the server at --postgres-url), made by `rapport init`'s code and filled in bulk with SQLAlchemy
Core: one therapist per 50 clients; per client a real data key (DataKey.generate, wrapped by the
master key), label and chat sealed with store.vault.seal, the Telegram blind index, an active
weekly rule in `schedule`, planned_until two days ahead (the planner has nothing to do), and one
check-in due at the start of the current minute (as the planner would have written it).

It measures and prints; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import platform
import pstats
import shlex
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event, func, insert, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as raw_engine
from telegram.ext import AIORateLimiter, Application

from alliance.checkin import steps
from bot import config as practice_config
from bot.app import build_application, utcnow
from bot.cli.setup import initialise
from bot.settings import Settings
from handlers import delivery, views
from handlers.context import RapportApp, Services
from handlers.texts import Say
from schedules import dispatcher as dispatcher_module
from schedules.dispatcher import Dispatcher, Messenger
from schedules.planner import HORIZON
from schedules.rules import Weekly, expires_at, occurrences
from store.checkins import Outgoing
from store.crypto import DataKey
from store.db import transaction
from store.models import (
    Base,
    CheckIn,
    CheckInState,
    Client,
    ClientStatus,
    Practice,
    Therapist,
)
from store.outbox import SendOutcome
from store.vault import Vault, seal
from tests.botapi import DEFAULT_TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FIRST_CHAT = 800_000_000  # clients' Telegram ids (= chat ids) are FIRST_CHAT + n
THERAPIST_CHAT = 700_000_000
CLIENTS_PER_THERAPIST = 50
ROWS_PER_TRANSACTION = 5000
ZONES = (
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
)
TABLES = Base.metadata.tables


def command_line(module: str) -> str:
    return f".venv/bin/python -m {module} {shlex.join(sys.argv[1:])}".rstrip()


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A field such as VmRSS or VmHWM from /proc/<pid>/status, in kB."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- databases -------------------------------------------------------------------------------


async def _postgres_admin(server_url: str, statement: str) -> None:
    admin = raw_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def fresh_database(kind: str, postgres_url: str) -> AsyncIterator[Settings]:
    """Settings for a new database of `kind`, initialised as `rapport init` does (schema,
    practice row, key file in a temporary data directory); dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        data = Path(tmp)
        if kind == "sqlite":
            yield await _initialised(data, f"sqlite+aiosqlite:///{data / 'rapport.db'}")
            return
        name = f"rapport_bench_{uuid.uuid4().hex[:12]}"
        await _postgres_admin(postgres_url, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(postgres_url).set(database=name)
            yield await _initialised(data, url.render_as_string(hide_password=False))
        finally:
            await _postgres_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _initialised(data: Path, url: str) -> Settings:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        database_url=url,
        key_file=data / "rapport.key",
        master_keys=None,
        bot_token=SecretStr(DEFAULT_TOKEN),
    )
    await initialise(settings)
    return settings


async def server_version(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return "SQLite " + str((await conn.execute(text("select sqlite_version()"))).scalar())
        version = str((await conn.execute(text("show server_version"))).scalar())
        return "PostgreSQL " + version.split()[0]


async def analyze(engine: AsyncEngine) -> None:
    """PostgreSQL: VACUUM ANALYZE, what autovacuum does soon after a bulk load. SQLite: nothing
    (Rapport never runs ANALYZE, so the planner works without statistics, as in production)."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("VACUUM ANALYZE"))


# -- bulk population -------------------------------------------------------------------------


@dataclass
class Population:
    clients: int
    therapists: int
    due: int
    planned: int
    history: int
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.clients} clients, {self.therapists} therapists, {self.due} check-ins due, "
            f"{self.planned} planned ahead, {self.history} past check-ins, "
            f"inserted in {self.seconds:.1f} s"
        )


@lru_cache(maxsize=256)
def weekly_rule(n: int) -> tuple[Weekly, str]:
    """Client n's weekly rule (spread over weekdays and times) and its stored JSON spec."""
    rule = Weekly(
        weekdays=(n % 7,),
        at=clock_time(8 + (n // 7) % 12, 15 * ((n // 84) % 4)),
        instruments=("alliance",),
    )
    return rule, json.dumps(rule.to_spec())


def _sealed(key: DataKey, row: Client | Therapist, values: dict[str, str]) -> dict[str, bytes]:
    for column, value in values.items():
        seal(key, row, column, value)
    return {column: getattr(row, column) for column in values}


def _key_row(vault: Vault, key: DataKey, now: datetime) -> dict[str, Any]:
    kek_id, wrapped = vault.ring.wrap(key.id, key.key)
    return {
        "id": key.id,
        "owner_id": key.owner_id,
        "kek_id": kek_id,
        "wrapped": wrapped,
        "created_at": now,
    }


async def populate(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    loaded: practice_config.Loaded,
    *,
    clients: int,
    now: datetime,
    due_at: datetime | None = None,
    history_weeks: int = 0,
    first_chat: int = FIRST_CHAT,
) -> Population:
    """Bulk-insert enrolled clients with an active weekly rule each (see the module docstring).

    With `due_at`, each client has one check-in due then. Without, each client's rule is
    planned for real (schedules.rules.occurrences, as the planner does) over the planning
    horizon, leaving out the slots of the next hour so no tick during a measurement finds work.
    `history_weeks` adds that many closed (completed or missed) check-ins per client.
    """
    started = time.perf_counter()
    texts = loaded.config.make_texts()
    consent = texts.consent_version("en")
    window = loaded.config.checkins.window
    planned_until = now + HORIZON
    counts = {"due": 0, "planned": 0, "history": 0}
    async with transaction(sessions) as session:
        practice_id = (await session.scalars(select(Practice.id))).one()
    therapist_ids = []
    therapist_rows, therapist_keys = [], []
    for t in range(max(1, clients // CLIENTS_PER_THERAPIST)):
        therapist = Therapist(id=uuid.uuid4())
        key = DataKey.generate(therapist.id)
        sealed = _sealed(
            key, therapist, {"name_enc": f"Therapist {t}", "chat_enc": str(THERAPIST_CHAT + t)}
        )
        therapist_ids.append(therapist.id)
        therapist_keys.append(_key_row(vault, key, now))
        therapist_rows.append(
            {
                "id": therapist.id,
                "practice_id": practice_id,
                **sealed,
                "telegram_hash": vault.telegram_hash(THERAPIST_CHAT + t),
                "is_admin": False,
                "active": True,
                "created_at": now,
                "linked_at": now,
            }
        )
    async with transaction(sessions) as session:
        await session.execute(insert(TABLES["data_key"]), therapist_keys)
        await session.execute(insert(TABLES["therapist"]), therapist_rows)
    for first in range(0, clients, ROWS_PER_TRANSACTION):
        keys, people, schedules, checkin_rows = [], [], [], []
        for n in range(first, min(clients, first + ROWS_PER_TRANSACTION)):
            client = Client(id=uuid.uuid4())
            key = DataKey.generate(client.id)
            chat = first_chat + n
            zone = ZONES[n % len(ZONES)]
            keys.append(_key_row(vault, key, now))
            people.append(
                {
                    "id": client.id,
                    "practice_id": practice_id,
                    "therapist_id": therapist_ids[n % len(therapist_ids)],
                    **_sealed(key, client, {"label_enc": f"Client {n}", "chat_enc": str(chat)}),
                    "telegram_hash": vault.telegram_hash(chat),
                    "timezone": zone,
                    "status": ClientStatus.ACTIVE,
                    "language": "en",
                    "planned_until": planned_until,
                    "consent_version": consent,
                    "consent_at": now,
                    "created_at": now,
                    "enrolled_at": now,
                }
            )
            rule, spec = weekly_rule(n)
            schedule_id = uuid.uuid4()
            schedules.append(
                {
                    "id": schedule_id,
                    "client_id": client.id,
                    "kind": rule.kind,
                    "spec": spec,
                    "template": None,
                    "active": True,
                    "created_at": now,
                }
            )
            row = {"client_id": client.id, "schedule_id": schedule_id, "instruments": "alliance"}
            if due_at is not None:
                slots = [due_at]
            else:
                slots = [
                    slot
                    for slot in occurrences(rule, zone, now, planned_until, quiet=loaded.quiet)
                    if slot >= now + timedelta(hours=1)
                ]
            for slot in slots:
                counts["due" if due_at is not None else "planned"] += 1
                checkin_rows.append(_checkin(row, slot, expires_at(slot, None, window), now))
            for week in range(1, history_weeks + 1):
                slot = (now - timedelta(weeks=week)).replace(microsecond=0)
                done = week % 3 != 0
                past = _checkin(row, slot, slot + window, now - timedelta(weeks=week))
                past.update(
                    state=CheckInState.COMPLETED if done else CheckInState.MISSED,
                    position=4 if done else 0,
                    message_id=week,
                    sending_at=slot,
                    sent_at=slot,
                    started_at=slot + timedelta(hours=1) if done else None,
                    completed_at=slot + timedelta(hours=1) if done else None,
                    closed_at=slot + timedelta(hours=1) if done else slot + window,
                )
                checkin_rows.append(past)
                counts["history"] += 1
        async with transaction(sessions) as session:
            await session.execute(insert(TABLES["data_key"]), keys)
            await session.execute(insert(TABLES["client"]), people)
            await session.execute(insert(TABLES["schedule"]), schedules)
            if checkin_rows:
                await session.execute(insert(TABLES["checkin"]), checkin_rows)
    return Population(
        clients=clients,
        therapists=len(therapist_ids),
        due=counts["due"],
        planned=counts["planned"],
        history=counts["history"],
        seconds=time.perf_counter() - started,
    )


def _checkin(
    row: dict[str, Any], slot: datetime, expiry: datetime, created: datetime
) -> dict[str, Any]:
    return {
        **row,
        "id": uuid.uuid4(),
        "slot_at": slot,
        "with_comment": False,
        "state": CheckInState.DUE,
        "position": 0,
        "created_at": created,
        "due_at": slot,
        "expires_at": expiry,
        "message_id": None,
        "sending_at": None,
        "sent_at": None,
        "started_at": None,
        "completed_at": None,
        "closed_at": None,
    }


async def states(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(select(CheckIn.state, func.count()).group_by(CheckIn.state))
        return {str(state): int(count) for state, count in rows.all()}


class Phases:
    """Wall time spent in each step of the fan-out, SQL statements, transactions and the
    process's CPU time.

    While active it wraps the Dispatcher's claim (`Dispatcher._claim`: one transaction that
    claims a batch, decrypts its chat ids and works out each first question) and its send
    ledger's writes (`_Ledger._write`: one write that records the attempts admitted and the
    answers received since the last one), and listens to the engine's statements and
    commits (a write in autocommit is a statement and no commit). `render` is timed by
    NoopMessenger itself.
    """

    STEPS = ("claim", "record", "render")

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.seconds = dict.fromkeys(self.STEPS, 0.0)
        self.statements = 0
        self.commits = 0
        self.sql_seconds = 0.0
        self.cpu = 0.0
        self.load = 0.0
        self._started: dict[int, float] = {}

    @contextlib.contextmanager
    def active(self) -> Iterator[Phases]:
        wrapped: list[tuple[object, str, str]] = [
            (Dispatcher, "_claim", "claim"),
            (dispatcher_module._Ledger, "_write", "record"),
        ]
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in wrapped]
        for (owner, name, step), (_, _, original) in zip(wrapped, originals, strict=True):
            setattr(owner, name, self._timed(step, original))
        sync = self.engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync, "commit", self._commit)
        self.load, cpu = os.getloadavg()[0], time.process_time()
        try:
            yield self
        finally:
            self.cpu = time.process_time() - cpu
            event.remove(sync, "before_cursor_execute", self._before)
            event.remove(sync, "after_cursor_execute", self._after)
            event.remove(sync, "commit", self._commit)
            for owner, name, original in originals:
                setattr(owner, name, original)

    def _timed(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements += 1
        self.sql_seconds += time.perf_counter() - self._started.pop(id(cursor), 0.0)


# -- the dispatcher, as the bot builds it ----------------------------------------------------


class NoopMessenger(delivery.Messenger):
    """The bot's own handlers.delivery.Messenger with send_checkin replaced by what it does
    short of Telegram: it renders the check-in with the Messenger's own `checkin_message`,
    then has its attempt recorded (as the rate limiter does once it admits the request), and
    answers at once with a fake message id instead of calling Telegram. Everything else
    (alerts, notices, reminders: none in these runs) is the real messenger's."""

    def __init__(self, real: delivery.Messenger) -> None:
        self.__dict__.update(vars(real))
        self._ids = itertools.count(1)
        self.rendered_chars = 0
        self.render_seconds = 0.0

    async def send_checkin(
        self, outgoing: Outgoing, attempting: delivery.Attempting | None = None
    ) -> tuple[SendOutcome, int | None]:
        started = time.perf_counter()
        body, markup = self.checkin_message(outgoing)
        self.rendered_chars += len(body) + len(markup.inline_keyboard)
        self.render_seconds += time.perf_counter() - started
        if attempting is not None and not await attempting():  # recorded as the bot does
            return SendOutcome.NOT_SENT, None
        return SendOutcome.SENT, next(self._ids)


def noop_messenger(app: RapportApp, dispatcher: Dispatcher) -> NoopMessenger:
    real = dispatcher._messenger
    assert isinstance(real, delivery.Messenger)
    return NoopMessenger(real)


@contextlib.asynccontextmanager
async def real_bot(
    settings: Settings, api_root: str, *, rate: float | None = None
) -> AsyncIterator[tuple[RapportApp, Dispatcher]]:
    """The real Application from bot.app.build_application, initialised and through its
    post_init (engine, keys, services, the Dispatcher and its Messenger, the job that ticks
    it, which is not started here), against the Bot API at `api_root`; and that Dispatcher.

    With `rate`, the bot is configured with RAPPORT_SEND_RATE=rate, which bot/app.py gives its
    rate limiter as overall_max_rate (per second). `rate=0` is not a valid setting: it turns
    the limiter's overall bucket off (PTB's meaning of 0), a diagnostic ceiling.
    """
    update: dict[str, Any] = {"telegram_api_url": api_root}
    if rate is not None:
        update["send_rate"] = rate  # model_copy does not validate: 0 passes, on purpose
    loaded = practice_config.load(None)
    app = build_application(settings.model_copy(update=update), loaded)
    await app.initialize()
    try:
        assert app.post_init is not None
        await app.post_init(app)
        yield app, the_dispatcher(app)
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def bot_rate_limiter() -> tuple[str, type[AIORateLimiter]]:
    """The AIORateLimiter (sub)class bot/app.py builds its Application with, and its name."""
    import bot.app

    for name, value in vars(bot.app).items():
        if isinstance(value, type) and issubclass(value, AIORateLimiter):
            return name, value
    raise RuntimeError("bot/app.py no longer uses an AIORateLimiter")


def the_dispatcher(app: RapportApp) -> Dispatcher:
    """The Dispatcher that post_init built: the one its "dispatch" job ticks."""
    assert app.job_queue is not None
    for job in app.job_queue.jobs("^dispatch$"):
        for cell in getattr(job.callback, "__closure__", None) or ():
            if isinstance(cell.cell_contents, Dispatcher):
                return cell.cell_contents
    raise RuntimeError("bot/app.py no longer ticks a Dispatcher from a 'dispatch' job")


def services_of(app: RapportApp) -> Services:
    services = app.bot_data.services
    assert services is not None
    return services


def engine_of(app: RapportApp) -> AsyncEngine:
    bind = services_of(app).sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


def tune(
    dispatcher: Dispatcher,
    *,
    batch: int | None = None,
    window: int | None = None,
    messenger: Messenger | None = None,
) -> None:
    """Batch and window sizes (the bot leaves them at their defaults), and the messenger."""
    dispatcher._batch = batch or dispatcher._batch
    dispatcher._window = window or dispatcher._window  # sends handed to the messenger at once
    if messenger is not None:
        dispatcher._messenger = messenger


async def run_until_sent(dispatcher: Dispatcher, expected: int) -> tuple[float, int, int, int]:
    """Tick until `expected` check-ins were recorded sent; (seconds, ticks, sent, failed)."""
    started = time.perf_counter()
    ticks = sent = failed = idle = 0
    while sent < expected:
        report = await dispatcher.tick()
        ticks += 1
        sent, failed = sent + report.sent, failed + report.failed
        idle = idle + 1 if not (report.sent or report.failed) else 0
        if idle >= 3:
            raise RuntimeError(f"the dispatcher stopped with {sent} of {expected} sent")
    return time.perf_counter() - started, ticks, sent, failed


# -- fan-out with a no-op sender -------------------------------------------------------------


@dataclass
class FanoutResult:
    db: str
    clients: int
    batch: int
    window: int
    seconds: float
    ticks: int
    sent: int
    setup: float
    phases: Phases

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def breakdown(self) -> str:
        """One markdown row: microseconds per check-in in each step."""
        per = 1e6 / self.sent
        steps = self.phases.seconds
        cells = [steps[name] * per for name in Phases.STEPS]
        rest = self.seconds - steps["claim"] - steps["record"] - steps["render"]
        cells += [rest * per, self.seconds * per]
        return (
            f"| {self.db} | {self.batch} x {self.window} | "
            + " | ".join(f"{cell:,.0f}" for cell in cells)
            + f" | {self.phases.statements / self.sent:.2f}"
            f" | {self.phases.commits / self.sent:.3f}"
            f" | {self.phases.sql_seconds * per:,.0f}"
            f" | {self.phases.cpu * per:,.0f} | {self.phases.load:.1f} |"
        )


async def fanout_once(
    kind: str,
    args: argparse.Namespace,
    batch: int | None,
    window: int | None,
    profile: Path | None,
) -> FanoutResult:
    """One fan-out; batch and window None: the bot's own defaults."""
    loaded = practice_config.load(None)
    async with (
        fresh_database(kind, args.postgres_url) as settings,
        FakeBotAPI() as fake,
        real_bot(settings, fake.root) as (app, dispatcher),
    ):
        services, engine = services_of(app), engine_of(app)
        now = utcnow()
        population = await populate(
            services.sessions,
            services.vault,
            loaded,
            clients=args.clients,
            now=now,
            due_at=now.replace(second=0, microsecond=0),
        )
        await analyze(engine)
        messenger = noop_messenger(app, dispatcher)
        tune(dispatcher, batch=batch, window=window, messenger=messenger)
        phases = Phases(engine)
        profiler = cProfile.Profile() if profile else None
        with phases.active():
            if profiler is not None:
                profiler.enable()
            seconds, ticks, sent, failed = await run_until_sent(dispatcher, args.clients)
            if profiler is not None:
                profiler.disable()
        phases.seconds["render"] = messenger.render_seconds
        if profiler is not None and profile is not None:
            profiler.dump_stats(profile)
            _print_profile(profile)
        counted = await states(services.sessions)
        if failed or counted.get(CheckInState.SENT, 0) != args.clients:
            raise RuntimeError(f"not all sent: {counted}, {failed} failed")
        return FanoutResult(
            db=await server_version(engine),
            clients=args.clients,
            batch=dispatcher._batch,
            window=dispatcher._window,
            seconds=seconds,
            ticks=ticks,
            sent=sent,
            setup=population.seconds,
            phases=phases,
        )


def _print_profile(path: Path, lines: int = 35) -> None:
    print(f"\ncProfile of the timed ticks ({path}), by cumulative time:\n```")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(lines)
    print("```\nby own time:\n```")
    stats.sort_stats("tottime").print_stats(25)
    print("```")


def _settings(values: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """BATCHxWINDOW values; none given: the bot's defaults."""
    found: list[tuple[int | None, int | None]] = []
    for value in values:
        batch, _, window = value.partition("x")
        found.append((int(batch), int(window)))
    return found or [(None, None)]


async def cmd_fanout(args: argparse.Namespace) -> None:
    settings = _settings(args.setting or [])
    print(f"$ {command_line('bench.dispatch_scale')}\n\nMachine: {machine()}\n")
    print(
        "| database | clients | batch | window | ticks | seconds | check-ins/s | setup s | load |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rates: dict[tuple[str, int, int], list[float]] = {}
    results = []
    for kind in _kinds(args.db):
        for batch, window in settings:
            for _ in range(args.repeat):
                result = await fanout_once(kind, args, batch, window, args.profile)
                results.append(result)
                key = (result.db, result.batch, result.window)
                rates.setdefault(key, []).append(result.rate)
                print(
                    f"| {result.db} | {result.clients} | {result.batch} | {result.window} | "
                    f"{result.ticks} | {result.seconds:.2f} | {result.rate:,.0f} | "
                    f"{result.setup:.1f} | {result.phases.load:.1f} |",
                    flush=True,
                )
    print(
        "\nWhere the time goes, in microseconds of wall time per check-in spent inside each "
        "step. claim: the Dispatcher's claim transactions (select the batch with its owners "
        "and keys, decrypt the chat ids, work out the first questions, write the claim, "
        "commit); record: the send ledger's writes (the attempts admitted and the "
        "answers received since its last write; on PostgreSQL usually one statement in "
        "autocommit); render: the Messenger's checkin_message; rest: "
        "the total less claim, record and render (the dispatcher's own work per send: tasks, "
        "futures, the window). The next batch is claimed while the last sends of the previous "
        "one are on their way, so the steps can overlap a little. SQL: statements and commits "
        "per check-in and the time spent executing statements (included in the steps); CPU: "
        "this process's CPU time per check-in (all threads: SQLite runs in a thread of this "
        "process, PostgreSQL in a server process of its own); load: the 1-minute load average "
        "when the run started (2 cores; other work on the machine slows every number down):\n"
    )
    print(
        "| database | batch x window | claim | record | render | rest | total "
        "| SQL statements | commits | SQL execute | CPU | load |"
    )
    print("| --- | --- |" + " ---: |" * 10)
    for result in results:
        print(result.breakdown())
    if args.repeat > 1 or len(settings) > 1:
        print("\nMedian check-ins/s per setting:\n")
        for (db, batch, window), values in rates.items():
            print(f"- {db}, batch {batch} x window {window}: {statistics.median(values):,.0f}")


def _kinds(db: str) -> list[str]:
    return ["sqlite", "postgres"] if db == "both" else [db]


# -- fan-out through the rate limiter and real HTTP ------------------------------------------


class FakeServer:
    """The fake Bot API in a child process (`fake-server`), so it does not share the
    dispatcher's event loop or core; reports when each sendMessage was answered."""

    def __init__(self, process: asyncio.subprocess.Process, root: str) -> None:
        self.process = process
        self.root = root

    @classmethod
    async def start(cls, first_chat: int, count: int) -> FakeServer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.dispatch_scale",
            "fake-server",
            str(first_chat),
            str(count),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode().split()
        if len(line) != 2 or line[0] != "READY":
            raise RuntimeError(f"the fake Bot API did not start: {line}")
        return cls(process, line[1])

    async def stop(self) -> list[float]:
        """Stop it; the wall-clock times at which it answered each sendMessage with 200."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stdout is not None
        out = await self.process.stdout.read()
        await self.process.wait()
        times: list[float] = json.loads(out.decode().strip().splitlines()[-1])
        return times


async def serve_fake(first_chat: int, count: int) -> None:
    from aiohttp import web

    sent: list[float] = []

    class TimedFake(FakeBotAPI):
        async def _handle(self, request: web.Request) -> web.StreamResponse:
            response = await super()._handle(request)
            if request.match_info["method"].lower() == "sendmessage" and response.status == 200:
                sent.append(time.time())
            return response

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with TimedFake() as fake:
        for chat in range(first_chat, first_chat + count):
            fake.user(chat).open_chat()
        print("READY", fake.root, flush=True)
        await stop.wait()
    print(json.dumps(sent), flush=True)


async def cmd_ratelimit(args: argparse.Namespace) -> None:
    print(f"$ {command_line('bench.dispatch_scale')}\n\nMachine: {machine()}\n")
    print(
        "| database | limit/s | clients | batch x window | seconds | msg/s (whole fan-out) | "
        "% of limit | msg/s (fake: first to last send) | not sent | bot CPU us/msg | "
        "fake CPU us/msg | load |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in _kinds(args.db):
        await _ratelimit_once(kind, args)


async def _ratelimit_once(kind: str, args: argparse.Namespace) -> None:
    loaded = practice_config.load(None)
    fake = await FakeServer.start(FIRST_CHAT, args.clients)
    try:
        async with (
            fresh_database(kind, args.postgres_url) as settings,
            real_bot(settings, fake.root, rate=args.rate) as (app, dispatcher),
        ):
            services, engine = services_of(app), engine_of(app)
            now = utcnow()
            await populate(
                services.sessions,
                services.vault,
                loaded,
                clients=args.clients,
                now=now,
                due_at=now.replace(second=0, microsecond=0),
            )
            await analyze(engine)
            db = await server_version(engine)
            tune(dispatcher, batch=args.batch, window=args.window, messenger=None)
            load = os.getloadavg()[0]
            cpu, fake_cpu = time.process_time(), cpu_seconds(fake.process.pid)
            started = time.time()
            seconds, _ticks, sent, failed = await run_until_sent(dispatcher, args.clients)
            cpu = (time.process_time() - cpu) / args.clients * 1e6
            fake_cpu = (cpu_seconds(fake.process.pid) - fake_cpu) / args.clients * 1e6
            counted = await states(services.sessions)
            setting = f"{dispatcher._batch} x {dispatcher._window}"
    finally:
        times = await fake.stop()
    in_run = [t for t in times if t >= started]
    span = (in_run[-1] - in_run[0]) if len(in_run) > 1 else float("nan")
    limit = f"{args.rate:g}" if args.rate else "none"
    share = f"{100 * sent / seconds / args.rate:.1f}%" if args.rate else "-"
    not_sent = args.clients - counted.get(CheckInState.SENT, 0)
    print(
        f"| {db} | {limit} | {args.clients} | {setting} | {seconds:.2f} | "
        f"{sent / seconds:,.1f} | {share} | {(len(in_run) - 1) / span:,.1f} | "
        f"{not_sent + failed} | {cpu:,.0f} | {fake_cpu:,.0f} | {load:.1f} |",
        flush=True,
    )


# -- the HTTP ceiling: PTB alone, no database -----------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cmd_ptb_ceiling(args: argparse.Namespace) -> None:
    """How fast the bot's own ExtBot can call sendMessage on this machine, without Rapport's
    database work: the same builder settings and rate limiter class as bot/app.py (overall
    limit off), the same rendered first question, `--chunk` sends at a time."""
    print(f"$ {command_line('bench.dispatch_scale')}\n\nMachine: {machine()}\n")
    print(
        "| messages | concurrent | msg/s | this process CPU us/msg | fake Bot API CPU us/msg | "
        "load |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    _, limiter_class = bot_rate_limiter()
    loaded = practice_config.load(None)
    texts = loaded.config.make_texts()
    step = steps([loaded.instruments["alliance"]])[0]
    fake = await FakeServer.start(FIRST_CHAT, args.clients)
    try:
        app = (
            Application.builder()
            .token(DEFAULT_TOKEN)
            .base_url(f"{fake.root}/bot")
            .rate_limiter(limiter_class(overall_max_rate=0, max_retries=3))
            .build()
        )
        await app.initialize()
        try:
            for chunk in args.chunk:
                chats = range(FIRST_CHAT, FIRST_CHAT + args.clients)
                load = os.getloadavg()[0]
                cpu, fake_cpu = time.process_time(), cpu_seconds(fake.process.pid)
                started = time.perf_counter()
                for first in range(0, args.clients, chunk):
                    sends = []
                    for chat in chats[first : first + chunk]:
                        body, markup = views.step_message(Say(texts, "en"), uuid.uuid4(), step)
                        sends.append(app.bot.send_message(chat, body, reply_markup=markup))
                    await asyncio.gather(*sends)
                seconds = time.perf_counter() - started
                cpu = (time.process_time() - cpu) / args.clients * 1e6
                fake_cpu = (cpu_seconds(fake.process.pid) - fake_cpu) / args.clients * 1e6
                print(
                    f"| {args.clients} | {chunk} | {args.clients / seconds:,.0f} | {cpu:,.0f} | "
                    f"{fake_cpu:,.0f} | {load:.1f} |",
                    flush=True,
                )
        finally:
            await app.shutdown()
    finally:
        await fake.stop()


# -- command line ----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, clients: int) -> None:
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=clients)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RAPPORT_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a server where databases may be created and dropped",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench.dispatch_scale", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fanout = sub.add_parser("fanout", help="fan-out with a no-op sender")
    _common(fanout, 10_000)
    fanout.add_argument(
        "--setting", action="append", metavar="BATCHxWINDOW", help="e.g. 1000x8 (repeatable)"
    )
    fanout.add_argument("--repeat", type=int, default=1)
    fanout.add_argument("--profile", type=Path, help="cProfile the timed ticks into this file")
    limited = sub.add_parser("ratelimit", help="fan-out through AIORateLimiter and real HTTP")
    _common(limited, 1500)
    limited.add_argument("--rate", type=float, default=30, help="messages/s; 0: no limit")
    limited.add_argument("--batch", type=int, help="default: the bot's")
    limited.add_argument("--window", type=int, help="default: the bot's")
    ceiling = sub.add_parser("ptb-ceiling", help="sendMessage through PTB alone, no database")
    ceiling.add_argument("--clients", type=int, default=2000)
    ceiling.add_argument(
        "--chunk", type=int, action="append", help="concurrent sends (repeatable; default 20)"
    )
    fake = sub.add_parser("fake-server", help="(internal) the fake Bot API for `ratelimit`")
    fake.add_argument("first_chat", type=int)
    fake.add_argument("count", type=int)
    args = parser.parse_args(argv)
    if args.command == "fanout":
        asyncio.run(cmd_fanout(args))
    elif args.command == "ratelimit":
        asyncio.run(cmd_ratelimit(args))
    elif args.command == "ptb-ceiling":
        args.chunk = args.chunk or [20]
        asyncio.run(cmd_ptb_ceiling(args))
    else:
        asyncio.run(serve_fake(args.first_chat, args.count))


if __name__ == "__main__":
    main()
