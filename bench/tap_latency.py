"""The bot's own work per check-in tap, without PTB's dispatch and the network.

Run: .venv/bin/python -m bench.tap_latency [--clients 1000] [--warmup 50] [--history 8] [--profile]
With RAPPORT_TEST_POSTGRES_URL set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test) it
runs on PostgreSQL too, in a database of its own that it creates and drops.

The database: `rapport init`'s setup (bot.cli.setup.initialise: migrations, a new key file),
then one therapist and --warmup + --clients clients enrolled through the real invite and redeem
code, each with --history completed weekly check-ins (sealed answers, a processed update per
past tap) and one check-in sent now (queued, then sent by a real dispatcher tick whose
messenger only records). SQLite is built once and copied for each engine variant.

The bot: the real Application (bot.app.build_application) started with bot.app.running against
the fake Bot API (tests/botapi; only post_init's getMe and setMyCommands reach it, no polling),
so Services, the engine and the dispatcher are exactly what post_init builds. Each tap is the
real handlers.checkin.on_tap called with a callback-query update, as PTB would call it; only its
two replies (answerCallbackQuery, editMessageText) are replaced by no-ops, and so is the kick
that asks the dispatcher to deliver the alerts a completing tap raised (the alert rows are
written; sending them is the dispatcher's work, not the tap's). The steps are timed by thin
wrappers: callbacks.decode (parse), context.unit_of_work from entry to after its commit (the
bot's own work, the target), checkins.record_tap inside it, and views.step_message /
comment_prompt (render). Clients answer items 1..5 (every client's item 1, then item 2, ...,
clients in a new random order for each item): those taps are the headline. Then every timed
client presses "No comment", the tap that completes the check-in (scores, and the detectors
over the client's history), reported on its own row. Warm-up clients are tapped first, untimed;
their taps count the SQL statements and aiosqlite calls per tap.

On SQLite two what-if engines run on a copy of the same database (same code, only the engine
that post_init creates, or where its statements run, differs): every statement on the
connection's thread (unit_of_work without store.db.interactive), and SQLAlchemy's own aiosqlite
connection (3-4 trips to its thread per statement, as before store.db.SQLiteConnection). With
--profile, more clients are tapped under cProfile on the shipped engine.

It measures and prints markdown; it asserts only that every tap did what a tap should.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import math
import os
import platform
import pstats
import random
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast
from unittest import mock

import aiosqlite
import sqlalchemy
import telegram
from pydantic import SecretStr
from sqlalchemy import event, insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine
from telegram import CallbackQuery, Update

from bot import config as practice_config
from bot.app import build_application, load_vault, running
from bot.cli.setup import initialise
from bot.settings import Settings
from handlers import callbacks, checkin, views
from handlers.context import RapportApp, RapportContext
from schedules.dispatcher import Dispatcher
from store import checkins, people
from store.checkins import Outgoing, TapOutcome, TapResult
from store.db import (
    BUSY_TIMEOUT_MS,
    _sqlite_pragmas,
    create_engine,
    session_factory,
    transaction,
)
from store.models import Answer, CheckIn, CheckInState, ProcessedUpdate
from store.outbox import SendOutcome
from store.vault import Vault, seal
from tests.botapi import FakeBotAPI

POSTGRES_ENV = "RAPPORT_TEST_POSTGRES_URL"
THERAPIST_TG = 5_000_001
CLIENT_TG = 7_000_000
BATCH = 100  # clients per setup transaction
FIRST_UPDATE_ID = 600_000_000
FINISH_UPDATE_ID = 2 * 10**12  # above any tap_updates id
TARGET_MS = 1.0
T = TypeVar("T")


@dataclass(frozen=True)
class OpenCheckin:
    checkin_id: uuid.UUID
    telegram_id: int
    message_id: int


@dataclass
class Built:
    """A populated database: whose open check-ins to tap, untimed, timed and profiled."""

    warmup: list[OpenCheckin]
    timed: list[OpenCheckin]
    profiled: list[OpenCheckin]
    setup_seconds: float
    rows: dict[str, int]


@dataclass
class Samples:
    """Nanoseconds per tap, by stage."""

    parse: list[int] = field(default_factory=list)
    open: list[int] = field(default_factory=list)
    record: list[int] = field(default_factory=list)
    commit: list[int] = field(default_factory=list)
    work: list[int] = field(default_factory=list)  # unit of work: entry to after the commit
    render: list[int] = field(default_factory=list)
    handler: list[int] = field(default_factory=list)  # all of on_tap, replies stubbed


@dataclass
class Measured:
    samples: Samples
    finish: Samples  # the completing "No comment" taps
    round_trip: list[int]
    statements: Counter[str]
    driver_calls: float  # calls into aiosqlite per tap
    counted_taps: int
    cpu_per_tap: float  # process CPU seconds (all threads) per timed on_tap
    load: tuple[float, float]  # the machine's 1-minute load average before and after
    profile: str | None


# -- timing the real handler ---------------------------------------------------------------------


class Marks:
    """The current tap's timestamps and step durations, filled by the wrappers below."""

    def __init__(self) -> None:
        self.at: dict[str, int] = {}
        self.took: dict[str, int] = {}
        self.outcome: TapOutcome | None = None

    def clear(self) -> None:
        self.at.clear()
        self.took.clear()
        self.outcome = None


MARKS = Marks()


class TimedContext(RapportContext):
    """RapportContext whose real unit_of_work is timestamped at entry, inside and after the
    commit (PTB builds one context per update; so does this benchmark, outside the timing)."""

    @contextlib.asynccontextmanager
    async def unit_of_work(self, update: Update) -> AsyncIterator[AsyncSession]:
        MARKS.at["open"] = time.perf_counter_ns()
        async with super().unit_of_work(update) as session:
            MARKS.at["opened"] = time.perf_counter_ns()
            yield session
            MARKS.at["body_done"] = time.perf_counter_ns()
        MARKS.at["committed"] = time.perf_counter_ns()


def timed(name: str, fn: Callable[..., T]) -> Callable[..., T]:
    def wrapper(*args: Any, **kwargs: Any) -> T:
        t0 = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            MARKS.took[name] = MARKS.took.get(name, 0) + time.perf_counter_ns() - t0

    return wrapper


def timed_async(name: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        t0 = time.perf_counter_ns()
        try:
            result = await fn(*args, **kwargs)
        finally:
            MARKS.took[name] = MARKS.took.get(name, 0) + time.perf_counter_ns() - t0
        if isinstance(result, TapOutcome):
            MARKS.outcome = result
        return result

    return wrapper


STEPS = (TapResult.NEXT, TapResult.ASK_COMMENT)  # answers to items 1..5
DONE = (TapResult.COMPLETED,)  # "No comment": the check-in completes


async def no_reply(*_args: Any, **_kwargs: Any) -> bool:
    return True


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """The wrappers and stubbed replies, in place only while taps run."""
    with contextlib.ExitStack() as stack:
        for target, name, wrapper in (
            (callbacks, "decode", timed("parse", callbacks.decode)),
            (views, "step_message", timed("render", views.step_message)),
            (views, "comment_prompt", timed("render", views.comment_prompt)),
            (checkins, "record_tap", timed_async("record", checkins.record_tap)),
            (CallbackQuery, "answer", no_reply),
            (CallbackQuery, "edit_message_text", no_reply),
        ):
            stack.enter_context(mock.patch.object(target, name, wrapper))
        yield


async def tap(
    app: RapportApp, update: Update, samples: Samples | None, expect: tuple[TapResult, ...] = STEPS
) -> None:
    """One press, through the real on_tap."""
    context = TimedContext.from_update(update, cast(Any, app))
    MARKS.clear()
    t0 = time.perf_counter_ns()
    await checkin.on_tap(update, context)
    t1 = time.perf_counter_ns()
    outcome = MARKS.outcome
    if outcome is None or outcome.result not in expect:
        raise RuntimeError(f"a benchmark tap was not recorded: {outcome}")
    if samples is not None:
        at, took = MARKS.at, MARKS.took
        samples.parse.append(took["parse"])
        samples.open.append(at["opened"] - at["open"])
        samples.record.append(took["record"])
        samples.commit.append(at["committed"] - at["body_done"])
        samples.work.append(at["committed"] - at["open"])
        samples.render.append(took.get("render", 0))  # the closing text is not a view
        samples.handler.append(t1 - t0)


# -- the database --------------------------------------------------------------------------------


def bench_settings(fake: FakeBotAPI, data_dir: Path, url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(fake.token),
        data_dir=data_dir,
        database_url=url,
        telegram_api_url=fake.root,
        dispatch_interval=300,  # no dispatcher tick while taps are timed (one runs at start)
    )


def columns(row: CheckIn | Answer) -> dict[str, Any]:
    """The column values set on an unsaved row (the others take their defaults)."""
    return {c.key: row.__dict__[c.key] for c in row.__table__.columns if c.key in row.__dict__}


class RecordingMessenger:
    """The dispatcher's messenger, minus Telegram: every check-in send succeeds; anything
    else the dispatcher asks for (alerts, notices, reminders) is reported as not sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Outgoing, int]] = []

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Callable[[], Awaitable[bool]] | None = None
    ) -> tuple[SendOutcome, int | None]:
        if attempting is not None and not await attempting():
            return SendOutcome.NOT_SENT, None
        message_id = 1000 + len(self.sent)
        self.sent.append((outgoing, message_id))
        return SendOutcome.SENT, message_id

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        async def not_sent(*_args: Any, **_kwargs: Any) -> None:
            return None

        return not_sent


async def populate(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    groups: Sequence[int],
    history: int,
    seed: int,
) -> tuple[list[list[OpenCheckin]], dict[str, int]]:
    """Enrol sum(groups) clients (and a therapist), each with a history and a check-in sent now;
    returns the open check-ins split into `groups` (shuffled) and the row counts."""
    loaded = practice_config.load(None)
    texts, window = loaded.config.make_texts(), loaded.config.checkins.window
    rng = random.Random(seed)
    now = datetime.now(UTC)
    enrolled = now - timedelta(weeks=history + 1)
    async with transaction(sessions) as session:
        therapist, invite = await people.add_therapist(
            session, vault, name="Therapist Ada", is_admin=False, now=now, invite_ttl=timedelta(1)
        )
        opened = await people.open_invite(session, token=invite.token, now=now)
        assert opened is not None
        await people.redeem_invite(
            session,
            vault,
            invite=opened,
            telegram_user_id=THERAPIST_TG,
            chat_id=THERAPIST_TG,
            now=now,
        )
    items = list(loaded.instruments["alliance"].items)
    total = sum(groups)
    update_id = FIRST_UPDATE_ID - total * history * (len(items) + 1) - 1
    telegram_of: dict[uuid.UUID, int] = {}
    for start in range(0, total, BATCH):
        async with transaction(sessions) as session:
            past_updates: list[dict[str, Any]] = []
            past_checkins: list[CheckIn] = []
            past_answers: list[Answer] = []
            for i in range(start, min(start + BATCH, total)):
                client, issued = await people.invite_client(
                    session,
                    vault,
                    therapist_id=therapist.id,
                    label=f"Client {i:05d}",
                    timezone="Europe/Berlin",
                    schedule_template=None,
                    now=enrolled,
                    invite_ttl=timedelta(weeks=history + 2),
                )
                invite_row = await people.open_invite(session, token=issued.token, now=now)
                assert invite_row is not None
                linked = await people.redeem_invite(
                    session,
                    vault,
                    invite=invite_row,
                    telegram_user_id=CLIENT_TG + i,
                    chat_id=CLIENT_TG + i,
                    now=enrolled,
                    consent_version=texts.consent_version("en"),
                )
                assert linked is not None
                telegram_of[client.id] = CLIENT_TG + i
                key = await vault.key(session, client.id)
                for week in range(history, 0, -1):
                    slot = now - timedelta(weeks=week)
                    past = CheckIn(
                        id=uuid.uuid4(),
                        client_id=client.id,
                        slot_at=slot,
                        instruments="alliance",
                        with_comment=True,
                        state=CheckInState.COMPLETED,
                        position=len(items),
                        message_id=history - week + 1,
                        created_at=slot,
                        due_at=slot,
                        expires_at=slot + timedelta(days=1),
                        sending_at=slot,
                        sent_at=slot,
                        started_at=slot + timedelta(minutes=5),
                        completed_at=slot + timedelta(minutes=6),
                    )
                    past_checkins.append(past)
                    for item in items:
                        answer = Answer(
                            id=uuid.uuid4(),
                            checkin_id=past.id,
                            client_id=client.id,
                            instrument="alliance",
                            item=item.id,
                            answered_at=slot + timedelta(minutes=5),
                        )
                        seal(key, answer, "value_enc", str(rng.choice(item.values)))
                        past_answers.append(answer)
                    for _ in range(len(items) + 1):
                        update_id += 1
                        past_updates.append({"update_id": update_id, "processed_at": slot})
                await checkins.queue_now(
                    session, client_id=client.id, instruments=["alliance"], now=now, window=window
                )
            # The history in bulk (Core inserts of the same rows: much faster than the ORM).
            for model, history_rows in ((CheckIn, past_checkins), (Answer, past_answers)):
                if history_rows:
                    await session.execute(insert(model), [columns(r) for r in history_rows])
            if past_updates:
                await session.execute(insert(ProcessedUpdate), past_updates)
    messenger = RecordingMessenger()
    clock = partial(datetime.now, UTC)
    await Dispatcher(sessions, vault, loaded.instruments, cast(Any, messenger), clock).tick()
    assert len(messenger.sent) == total, f"sent {len(messenger.sent)} of {total}"
    open_checkins = []
    for outgoing, message_id in messenger.sent:
        assert outgoing.chat_id == telegram_of[outgoing.client_id]
        open_checkins.append(OpenCheckin(outgoing.checkin_id, outgoing.chat_id, message_id))
    rng.shuffle(open_checkins)
    split, at = [], 0
    for size in groups:
        split.append(open_checkins[at : at + size])
        at += size
    async with sessions() as session:
        rows = {
            table: int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
            for table in ("client", "checkin", "answer", "processed_update", "audit_event")
        }
    return split, rows


async def build(settings: Settings, args: argparse.Namespace) -> Built:
    """`rapport init`, then the population, with Rapport's own engine."""
    await initialise(settings)
    engine = create_engine(settings.resolved_database_url)
    try:
        t0 = time.perf_counter()
        profiled = args.profile_clients if args.profile else 0
        groups, rows = await populate(
            session_factory(engine),
            load_vault(settings),
            [args.warmup, args.clients, profiled],
            args.history,
            args.seed,
        )
        return Built(groups[0], groups[1], groups[2], time.perf_counter() - t0, rows)
    finally:
        await engine.dispose()


# -- the taps ------------------------------------------------------------------------------------


def tap_update(
    update_id: int, target: OpenCheckin, position: int, value: int, action: str = callbacks.ANSWER
) -> Update:
    """The callback_query update Telegram sends for this button (built outside the timing)."""
    user = {"id": target.telegram_id, "is_bot": False, "first_name": "Client"}
    payload: dict[str, Any] = {
        "update_id": update_id,
        "callback_query": {
            "id": str(4_382_000_000_000_000_000 + update_id),
            "from": {**user, "language_code": "en"},
            "chat_instance": str(-(10**18) - target.telegram_id),
            "data": callbacks.encode(callbacks.Tap(action, target.checkin_id, position, value)),
            "message": {
                "message_id": target.message_id,
                "date": int(time.time()),
                "chat": {**user, "type": "private"},
                "from": {"id": 7100000001, "is_bot": True, "first_name": "Rapport"},
                "text": "How are we working together?",
            },
        },
    }
    update = Update.de_json(payload, None)
    assert update is not None
    return update


def tap_updates(
    targets: Sequence[OpenCheckin], values: Sequence[Sequence[int]], rng: random.Random
) -> list[Update]:
    """Item 1 of every client, then item 2, ...; clients in a new random order for each item."""
    updates: list[Update] = []
    for position, scale in enumerate(values):
        order = list(targets)
        rng.shuffle(order)
        for target in order:
            update_id = FIRST_UPDATE_ID + 1 + len(updates) + rng.randrange(1 << 30) * 1000
            updates.append(tap_update(update_id, target, position, rng.choice(scale)))
    return updates


def finish_updates(
    targets: Sequence[OpenCheckin], position: int, rng: random.Random
) -> list[Update]:
    """Every client's "No comment" after the last item: the tap that completes the check-in."""
    order = list(targets)
    rng.shuffle(order)
    return [
        tap_update(FINISH_UPDATE_ID + i, target, position, 0, callbacks.NO_COMMENT)
        for i, target in enumerate(order)
    ]


@contextlib.contextmanager
def count_calls(engine: AsyncEngine, statements: Counter[str], calls: list[int]) -> Iterator[None]:
    """Count the SQL statements sent, by verb and table, and the calls into aiosqlite (each one
    a round trip to aiosqlite's worker thread, unless the engine runs SQLite inline)."""

    def record(*args: Any) -> None:
        words = str(args[2]).split()
        table = next(
            (
                words[i + 1].strip('"')
                for i, word in enumerate(words[:-1])
                if word.upper() in ("FROM", "INTO", "UPDATE")
            ),
            "",
        )
        statements[f"{words[0].upper()} {table}".strip()] += 1

    original: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(self, fn, *args, **kwargs)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def round_trips(engine: AsyncEngine, n: int) -> list[int]:
    """One trivial statement on an open connection: the floor of any query."""
    out = []
    async with engine.connect() as conn:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            await conn.exec_driver_sql("SELECT 1")
            out.append(time.perf_counter_ns() - t0)
    return out


async def dispatcher_idle(limit: float = 120) -> None:
    """Wait for the dispatcher's first tick (0.5 s after start) to finish."""
    await asyncio.sleep(1.5)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        jobs = [t for t in asyncio.all_tasks() if "run_coroutine_job" in repr(t.get_coro())]
        if not jobs:
            return
        await asyncio.sleep(0.2)


# -- engines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """An engine for the same code and database: Rapport's, or a what-if for the diagnosis."""

    name: str
    own_connection: bool = True  # store.db.create_engine's SQLiteConnection, else aiosqlite's
    interactive: bool = True  # handlers.context.unit_of_work runs its statements inline

    def engine(self, url: str, echo: bool = False) -> AsyncEngine:
        if self.own_connection:
            return create_engine(url, echo=echo)  # exactly what Rapport uses
        timeout = {"timeout": BUSY_TIMEOUT_MS / 1000}
        engine = sa_create_async_engine(url, echo=echo, connect_args=timeout)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine


SHIPPED = Variant("as shipped (store.db.create_engine)")
SQLITE_WHAT_IFS = [
    Variant("what-if: every statement on the connection's thread", interactive=False),
    Variant(
        "what-if: SQLAlchemy's own aiosqlite connection (3-4 trips per statement)",
        own_connection=False,
        interactive=False,
    ),
]


@contextlib.asynccontextmanager
async def started_bot(
    settings: Settings, variant: Variant
) -> AsyncIterator[tuple[RapportApp, AsyncEngine]]:
    """The real Application, post_init and all, with `variant`'s engine; no polling."""
    engines: list[AsyncEngine] = []

    def make(url: str, *, echo: bool = False) -> AsyncEngine:
        engines.append(variant.engine(url, echo))
        return engines[-1]

    fake = FakeBotAPI()
    fake.user(THERAPIST_TG).open_chat()  # alerts raised by completing taps reach the therapist
    async with fake:
        settings = settings.model_copy(
            update={"bot_token": SecretStr(fake.token), "telegram_api_url": fake.root}
        )
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch("bot.app.create_engine", make))
            if not variant.interactive:
                stack.enter_context(
                    mock.patch("handlers.context.interactive", contextlib.nullcontext)
                )
            app = build_application(settings, practice_config.load(None))
            async with running(app):
                await dispatcher_idle()
                yield app, engines[0]


async def measure(
    settings: Settings, variant: Variant, built: Built, args: argparse.Namespace, profile: bool
) -> Measured:
    """Tap through the built database's open check-ins on the started bot."""
    async with started_bot(settings, variant) as (app, engine):
        loaded = practice_config.load(None)
        values = [item.values for item in loaded.instruments["alliance"].items]
        rng = random.Random(args.seed + 1)
        statements: Counter[str] = Counter()
        calls = [0]
        warm = tap_updates(built.warmup, values, rng)
        timed_updates = tap_updates(built.timed, values, rng)
        finishing = finish_updates(built.timed, len(values), rng)
        profiled = tap_updates(built.profiled, values, rng) if profile else []
        samples, finish = Samples(), Samples()
        profile_text = None
        services = app.bot_data.services
        assert services is not None
        with instrumented(), mock.patch.object(services, "kick", lambda: None):
            with count_calls(engine, statements, calls):
                for update in warm:
                    await tap(app, update, None)
            load_before = os.getloadavg()[0]
            cpu0 = time.process_time()
            for update in timed_updates:
                await tap(app, update, samples)
            cpu = (time.process_time() - cpu0) / len(timed_updates)
            load_after = os.getloadavg()[0]
            for update in finishing:
                await tap(app, update, finish, DONE)
            if profiled:
                profiler = cProfile.Profile()
                profiler.enable()
                for update in profiled:
                    await tap(app, update, None)
                profiler.disable()
                profile_text = profile_report(profiler, len(profiled))
        counted = max(1, len(warm))
        return Measured(
            samples,
            finish,
            await round_trips(engine, 2000),
            statements,
            calls[0] / counted,
            counted,
            cpu,
            (load_before, load_after),
            profile_text,
        )


def subset(built: Built, clients: int) -> Built:
    """The same database with fewer timed clients (for the what-if engines)."""
    return replace(built, timed=built.timed[:clients])


def profile_report(profiler: cProfile.Profile, taps: int) -> str:
    out = io.StringIO()
    out.write(f"cProfile over {taps} taps (times inflated by the profiler)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (as tests/conftest.py makes them); dropped afterwards."""
    name = f"rapport_bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        engine = sa_create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- report --------------------------------------------------------------------------------------


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    rank = max(1, math.ceil(q / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1e6


def row(label: str, ns: Sequence[int]) -> str:
    s = sorted(ns)
    cells = [
        f"{statistics.median(s) / 1e6:.3f}",
        f"{percentile(s, 90):.3f}",
        f"{percentile(s, 99):.3f}",
        f"{statistics.fmean(s) / 1e6:.3f}",
    ]
    return f"| {label} | {len(s)} | " + " | ".join(cells) + " |"


HEADER = [
    "| per tap | taps | median ms | p90 ms | p99 ms | mean ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
]


def describe(built: Built, backend: str) -> str:
    r = built.rows
    return (
        f"{backend}: {r['client']} clients, {r['checkin']} check-ins, {r['answer']} answers, "
        f"{r['processed_update']} processed updates, {r['audit_event']} audit events "
        f"(built in {built.setup_seconds:.0f} s). Timed: {len(built.timed) * 5} taps (items 1..5 "
        f"of {len(built.timed)} clients) after {len(built.warmup) * 5} untimed warm-up taps."
    )


def detail(title: str, m: Measured) -> list[str]:
    s = m.samples
    median = statistics.median(s.work) / 1e6
    verdict = "met" if median <= TARGET_MS else "**not met**"
    listed = ", ".join(
        f"{name} ×{count / m.counted_taps:.2g}" for name, count in m.statements.most_common()
    )
    per_tap = sum(m.statements.values()) / m.counted_taps
    return [
        f"#### {title}",
        "",
        *HEADER,
        row("**bot's own work**: unit_of_work, from entry to after its commit", s.work),
        row("... open the unit of work (session, dedup INSERT)", s.open),
        row("... checkins.record_tap (check-in SELECT, answer INSERT, check-in UPDATE)", s.record),
        row("... commit (COMMIT)", s.commit),
        row("parse: callbacks.decode", s.parse),
        row("render: views.step_message / comment_prompt", s.render),
        row("all of on_tap (its two replies stubbed)", s.handler),
        row('completion tap ("No comment"): bot\'s own work', m.finish.work),
        row("... checkins.record_tap (scores; detectors over the history)", m.finish.record),
        row("reference: one `SELECT 1` on an open connection", m.round_trip),
        "",
        f"Target (median of the bot's own work <= {TARGET_MS:g} ms): {verdict} ({median:.3f} ms).",
        f"Process CPU time per tap (all threads, all of on_tap): {m.cpu_per_tap * 1000:.3f} ms. "
        f"Load average (1 min) before / after the timed taps: {m.load[0]:.2f} / {m.load[1]:.2f}.",
        f"Per tap: {per_tap:.1f} SQL statements ({listed}); {m.driver_calls:.1f} calls into "
        "aiosqlite.",
        "",
    ]


def machine() -> str:
    return (
        f"{len(os.sched_getaffinity(0))} cores (nproc), {platform.machine()}, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"aiosqlite {aiosqlite.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"python-telegram-bot {telegram.__version__}"
    )


def command(argv: Sequence[str]) -> str:
    env = f"{POSTGRES_ENV}={os.environ[POSTGRES_ENV]} " if os.environ.get(POSTGRES_ENV) else ""
    return f"{env}.venv/bin/python -m bench.tap_latency {shlex.join(argv)}".rstrip()


def placeholder_settings(data_dir: Path, url: str) -> Settings:
    """Settings before a fake Bot API exists (started_bot fills in the token and address)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr("1:placeholder"),
        data_dir=data_dir,
        database_url=url,
        dispatch_interval=300,  # no dispatcher tick while taps are timed (one runs at start)
    )


async def sqlite_section(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        template = Path(tmp) / "template"
        built = await build(
            placeholder_settings(template, f"sqlite+aiosqlite:///{template / 'rapport.db'}"), args
        )
        out = ["### SQLite (a file, WAL, synchronous=NORMAL)", "", describe(built, "SQLite"), ""]
        summary = [*HEADER]
        details: list[str] = []
        variants = [SHIPPED, *([] if args.no_what_if else SQLITE_WHAT_IFS)]
        for number, variant in enumerate(variants):
            data_dir = Path(tmp) / f"variant{number}"
            shutil.copytree(template, data_dir)
            settings = placeholder_settings(
                data_dir, f"sqlite+aiosqlite:///{data_dir / 'rapport.db'}"
            )
            profile = args.profile and variant.own_connection
            timed_clients = built if variant is SHIPPED else subset(built, args.what_if_clients)
            measured = await measure(settings, variant, timed_clients, args, profile)
            summary.append(row(f"bot's own work, {variant.name}", measured.samples.work))
            details += detail(f"SQLite, {variant.name}", measured)
            if measured.profile:
                details += ["```", measured.profile.rstrip(), "```", ""]
            shutil.rmtree(data_dir)
        return [*out, *summary, "", *details]


async def postgres_section(args: argparse.Namespace, admin_url: str) -> list[str]:
    async with postgres_database(admin_url) as url:
        with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
            settings = placeholder_settings(Path(tmp), url)
            built = await build(settings, args)
            measured = await measure(settings, SHIPPED, built, args, profile=False)
    return [
        "### PostgreSQL (asyncpg over loopback TCP, same machine)",
        "",
        describe(built, "PostgreSQL"),
        "",
        *detail("PostgreSQL, as shipped (store.db.create_engine)", measured),
    ]


async def main_async(args: argparse.Namespace, argv: Sequence[str]) -> str:
    out = [
        "## Check-in taps: the bot's own work per tap",
        "",
        f"Command: `{command(argv)}`",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    out += await sqlite_section(args)
    admin_url = os.environ.get(POSTGRES_ENV)
    if admin_url:
        out += await postgres_section(args, admin_url)
    else:
        out.append(f"PostgreSQL: not measured ({POSTGRES_ENV} is not set).")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="The bot's own work per check-in tap.")
    parser.add_argument("--clients", type=int, default=1000, help="clients whose taps are timed")
    parser.add_argument("--warmup", type=int, default=50, help="clients tapped first, untimed")
    parser.add_argument("--history", type=int, default=8, help="past weekly check-ins each")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-what-if", action="store_true", help="only the shipped engine")
    parser.add_argument(
        "--what-if-clients", type=int, default=300, help="timed clients on the what-if engines"
    )
    parser.add_argument("--profile", action="store_true", help="also profile taps (cProfile)")
    parser.add_argument("--profile-clients", type=int, default=200)
    args = parser.parse_args(argv)
    print(asyncio.run(main_async(args, argv)))


if __name__ == "__main__":
    main()
