"""An idle dispatcher tick with 100,000 scheduled clients, and the bot's memory meanwhile.

Run (from the repository root):

    .venv/bin/python -m bench.idle_tick [--db sqlite|postgres|both] [--clients 100000]
        [--ticks 50] [--history-weeks 4] [--bot-seconds 30] [--bot-interval 0.2]
        [--plan-sample 2000] [--profile out.pstats]

For each database: a fresh database filled in bulk as in bench/dispatch_scale.py (one therapist
per 50 clients; per client its own data key, sealed label and chat, blind index, one active
weekly rule in `schedule`, planned two days ahead by the real calendar code, the slots of the
next hour left out so that nothing falls due during the measurement; plus --history-weeks closed
check-ins per client), then:

1. In this process, the Dispatcher as bot/app.py builds it (planner, reminders, alerts, notices;
   the sender is a no-op: nothing is due) ticks 3 times to warm up, then --ticks times, each
   timed alone; the statements each tick runs are timed too, and the slowest are EXPLAINed.
2. The real bot (`rapport run`, polling the fake Bot API of tests/botapi in this process) runs
   on that database for --bot-seconds with RAPPORT_DISPATCH_INTERVAL=--bot-interval; its
   Dispatcher.tick is wrapped with a timer, and its VmRSS is sampled from /proc.
3. --plan-sample clients are made due for planning (planned_until = now) and the dispatcher
   ticks until the planner has planned them all: the planner's throughput, for the day a large
   practice's plans all run out together.

It measures and prints; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import signal
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, literal_column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.dispatch_scale import (
    DEFAULT_POSTGRES,
    ROOT,
    Population,
    analyze,
    command_line,
    engine_of,
    fresh_database,
    machine,
    noop_messenger,
    percentile,
    populate,
    proc_status_kb,
    real_bot,
    server_version,
    services_of,
    tune,
)
from bot import config as practice_config
from bot.app import utcnow
from bot.settings import Settings
from schedules.dispatcher import Dispatcher, TickReport
from store.db import transaction
from store.models import (
    OPEN_EXPIRY,
    Alert,
    CheckIn,
    Client,
    Notice,
    Schedule,
)
from tests.botapi import FakeBotAPI

WARMUP = 3


@dataclass
class StatementTimes:
    """Time per statement shape, over the timed ticks, with the last parameters seen."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    example: dict[str, tuple[str, Any]] = field(default_factory=dict)
    transactions: int = 0
    checkouts: int = 0
    _started: dict[int, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def listening(self, engine: AsyncEngine) -> Iterator[StatementTimes]:
        from sqlalchemy import event

        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync, "begin", self._begin)
        event.listen(sync.pool, "checkout", self._checkout)
        try:
            yield self
        finally:
            event.remove(sync, "before_cursor_execute", self._before)
            event.remove(sync, "after_cursor_execute", self._after)
            event.remove(sync, "begin", self._begin)
            event.remove(sync.pool, "checkout", self._checkout)

    def _begin(self, conn: Any) -> None:
        self.transactions += 1

    def _checkout(self, *args: Any) -> None:
        self.checkouts += 1

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        shape = describe(statement)
        self.seconds[shape] += time.perf_counter() - self._started.pop(id(cursor), 0.0)
        self.calls[shape] += 1
        self.example[shape] = (statement, parameters)


def describe(statement: str) -> str:
    """A statement, short: SELECTs from their FROM on, without the column list."""
    flat = " ".join(statement.split())
    if flat.startswith("SELECT") and " FROM " in flat:
        flat = "SELECT ... " + flat[flat.index(" FROM ") + 1 :]
    return flat if len(flat) <= 150 else flat[:147] + "..."


@dataclass
class IdleResult:
    db: str
    variant: str
    population: Population
    size_mb: float
    durations: list[float]
    first: float
    statements: StatementTimes
    rss_kb: int | None
    busy_ticks: int

    def row(self) -> str:
        ms = [d * 1000 for d in self.durations]
        return (
            f"| {self.db} | {self.variant} | {self.population.clients:,} | {self.size_mb:,.0f} | "
            f"{len(ms)} | "
            f"{statistics.median(ms):.1f} | {percentile(ms, 0.95):.1f} | {max(ms):.1f} | "
            f"{self.first * 1000:.1f} | {self.busy_ticks} |"
        )


async def database_mb(engine: AsyncEngine, settings: Settings) -> float:
    if engine.dialect.name == "sqlite":
        path = settings.data_dir / "rapport.db"
        total = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        return total / 1e6
    async with engine.connect() as conn:
        size = (await conn.execute(text("select pg_database_size(current_database())"))).scalar()
        return int(size or 0) / 1e6


def busy(report: TickReport) -> bool:
    return any(vars(report).values())


async def idle_ticks(
    engine: AsyncEngine,
    dispatcher: Dispatcher,
    ticks: int,
    profile: Path | None,
) -> tuple[list[float], float, StatementTimes, int]:
    """(durations of the timed ticks, duration of the very first, statement times, busy
    ticks). The first tick also warms SQLAlchemy's statement cache and the pool."""
    started = time.perf_counter()
    reports = [await dispatcher.tick()]
    first = time.perf_counter() - started
    for _ in range(WARMUP - 1):
        reports.append(await dispatcher.tick())
    durations = []
    statements = StatementTimes()
    profiler = cProfile.Profile() if profile else None
    with statements.listening(engine):
        for _ in range(ticks):
            if profiler is not None:
                profiler.enable()
            started = time.perf_counter()
            reports.append(await dispatcher.tick())
            durations.append(time.perf_counter() - started)
            if profiler is not None:
                profiler.disable()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        import pstats

        print(f"\ncProfile of the timed idle ticks ({profile}):\n```")
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(30)
        print("```")
    return durations, first, statements, sum(busy(r) for r in reports)


async def explain(engine: AsyncEngine, statement: str, parameters: Any) -> list[str]:
    """The query plan of a captured SELECT (PostgreSQL: EXPLAIN ANALYZE; it only reads)."""
    if not statement.lstrip().upper().startswith("SELECT"):
        return []
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
        await conn.rollback()
    return [" | ".join(str(v) for v in row[-1:]) if sqlite else str(row[0]) for row in rows]


def print_statements(result: IdleResult, top: int = 12) -> None:
    ticks = len(result.durations)
    print(
        f"\nStatements of one idle tick on {result.db} (mean over {ticks} ticks; the rest of "
        "a tick is Python: SQLAlchemy, transactions, and on PostgreSQL the pool's pre-ping):\n"
    )
    print("| ms per tick | calls per tick | statement |")
    print("| ---: | ---: | --- |")
    times = result.statements
    ordered = sorted(times.seconds, key=lambda shape: -times.seconds[shape])
    for shape in ordered[:top]:
        print(
            f"| {times.seconds[shape] / ticks * 1000:.2f} | {times.calls[shape] / ticks:.0f} | "
            f"`{shape}` |"
        )
    total = sum(times.seconds.values()) / ticks * 1000
    print(f"| {total:.2f} | {sum(times.calls.values()) / ticks:.0f} | (all statements) |")
    print(
        f"\nPer tick: {times.transactions / ticks:.0f} transactions, "
        f"{times.checkouts / ticks:.0f} connection checkouts (on PostgreSQL each with the pool's "
        "pre-ping), "
        f"{sum(times.calls.values()) / ticks:.0f} statements."
    )


async def print_plans(engine: AsyncEngine, times: StatementTimes, top: int) -> None:
    ordered = sorted(times.seconds, key=lambda shape: -times.seconds[shape])
    for shape in ordered[:top]:
        statement, parameters = times.example[shape]
        plan = await explain(engine, statement, parameters)
        if plan:
            print(f"\nPlan of `{shape}`:\n```")
            print("\n".join(plan))
            print("```")


# -- what-ifs: prototypes of suggested fixes, measured after the code as it is -------------

WHAT_IFS = {
    "idle-probe": "Dispatcher.tick first asks one question, in one statement, whether "
    "anything at all is to be done (every condition of the tick's steps, OR-ed), and "
    "returns at once when not",
}

UNPATCHED = {"tick": Dispatcher.tick}


def undo_what_ifs() -> None:
    """Back to the code as it is (for the real bot and planning runs)."""
    Dispatcher.tick = UNPATCHED["tick"]  # type: ignore[method-assign]


def apply_idle_probe() -> None:
    tick = Dispatcher.tick

    async def probed(self: Dispatcher) -> TickReport:
        if not await anything_to_do(self):
            return TickReport()
        return await tick(self)

    Dispatcher.tick = probed  # type: ignore[method-assign]


async def anything_to_do(dispatcher: Dispatcher) -> bool:
    """True when any step of a tick might find work (a superset: never a false no).

    States are written as literals, so that the database can use its indexes whatever plan
    it caches for the prepared statement (the open expiry is the indexed expression)."""
    now = dispatcher._clock()
    checks = [
        exists().where(text("checkin.state = 'sending'"), CheckIn.lease_until < now),
        select(CheckIn.id)
        .where(literal_column(OPEN_EXPIRY, CheckIn.expires_at.type) <= now)
        .exists(),
        exists().where(Client.paused_until <= now, text("client.status = 'paused'")),
        exists().where(text("checkin.state = 'due'"), CheckIn.due_at <= now),
        exists().where(
            text("checkin.state = 'sent'"),
            CheckIn.reminder_at <= now,
            CheckIn.reminded_at.is_(None),
        ),
        exists().where(Alert.next_delivery_at <= now),
        exists().where(Notice.next_delivery_at <= now),
    ]
    planner = dispatcher._planner
    if planner is not None:
        planned = exists().where(Schedule.client_id == Client.id, Schedule.active.is_(True))
        active = text("client.status = 'active'")
        before = now + planner.horizon / 2
        checks.append(exists().where(active, Client.planned_until < before, planned))
    async with dispatcher._sessions() as session:
        return bool(await session.scalar(select(or_(*checks))))


# -- the real bot ----------------------------------------------------------------------------


@dataclass
class BotRun:
    seconds: float
    interval: float
    ticks: int
    busy: int
    durations: list[float]
    rss_kb: list[int]
    hwm_kb: int | None

    def row(self, db: str) -> str:
        ms = [d * 1000 for d in self.durations] or [float("nan")]
        rss = self.rss_kb or [0]
        return (
            f"| {db} | {self.interval:g} s | {self.seconds:.0f} | {self.ticks} | {self.busy} | "
            f"{statistics.median(ms):.1f} | {percentile(ms, 0.95):.1f} | "
            f"{rss[-1] / 1024:.0f} | {max(rss) / 1024:.0f} | {(self.hwm_kb or 0) / 1024:.0f} |"
        )


async def run_bot(settings: Settings, seconds: float, interval: float) -> BotRun:
    """`rapport run` in a child process on this database, against a fake Bot API here."""
    stats = settings.data_dir / "bot-stats.json"
    log = settings.data_dir / "bot.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    async with FakeBotAPI() as fake:
        env.update(
            PYTHONPATH=str(ROOT),
            RAPPORT_BOT_TOKEN=fake.token,
            RAPPORT_TELEGRAM_API_URL=fake.root,
            RAPPORT_DATA_DIR=str(settings.data_dir),
            RAPPORT_DATABASE_URL=settings.resolved_database_url,
            RAPPORT_KEY_FILE=str(settings.resolved_key_file),
            RAPPORT_DISPATCH_INTERVAL=str(interval),
        )
        with log.open("wb") as err:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.idle_tick",
                "bot-child",
                str(stats),
                cwd=settings.data_dir,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
            samples = []
            started = time.monotonic()
            try:
                while time.monotonic() - started < seconds:
                    await asyncio.sleep(0.5)
                    if child.returncode is not None:
                        raise RuntimeError(f"the bot exited early:\n{log.read_text()[-3000:]}")
                    rss = proc_status_kb("VmRSS", child.pid)
                    if rss is not None:
                        samples.append(rss)
                hwm = proc_status_kb("VmHWM", child.pid)
            finally:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(child.wait(), 20)
                except TimeoutError:
                    child.kill()
                    await child.wait()
    data = json.loads(stats.read_text()) if stats.exists() else {}
    return BotRun(
        seconds=seconds,
        interval=interval,
        ticks=len(data.get("durations", [])),
        busy=int(data.get("busy", 0)),
        durations=list(data.get("durations", []))[WARMUP:],
        rss_kb=samples,
        hwm_kb=hwm,
    )


def bot_child(stats: Path) -> None:
    """The real bot (`rapport run`), with Dispatcher.tick timed into `stats` after each tick."""
    durations: list[float] = []
    counts = {"busy": 0}
    original = Dispatcher.tick

    async def timed(self: Dispatcher) -> TickReport:
        started = time.perf_counter()
        report = await original(self)
        durations.append(time.perf_counter() - started)
        counts["busy"] += busy(report)
        save()
        return report

    def save() -> None:
        stats.write_text(json.dumps({"durations": durations, **counts}))

    Dispatcher.tick = timed  # type: ignore[method-assign]
    from bot.cli import main as rapport

    rapport(["run"])


# -- planning throughput ---------------------------------------------------------------------


async def plan_sample(
    sessions: async_sessionmaker[AsyncSession], dispatcher: Dispatcher, count: int
) -> tuple[int, float, int]:
    """(clients planned, seconds, ticks) after `count` clients' plans were made to run out."""
    async with transaction(sessions) as session:
        ids = (await session.scalars(select(Client.id).limit(count))).all()
        await session.execute(
            update(Client).where(Client.id.in_(ids)).values(planned_until=utcnow())
        )
    planned = ticks = 0
    started = time.perf_counter()
    while planned < len(ids) and ticks < 10_000:
        report = await dispatcher.tick()
        planned += report.planned
        ticks += 1
    return planned, time.perf_counter() - started, ticks


# -- the whole measurement -------------------------------------------------------------------


async def measure(kind: str, args: argparse.Namespace) -> tuple[list[IdleResult], BotRun | None]:
    loaded = practice_config.load(None)
    async with (
        fresh_database(kind, args.postgres_url) as settings,
        FakeBotAPI() as fake,
        real_bot(settings, fake.root) as (app, dispatcher),
    ):
        services, engine = services_of(app), engine_of(app)
        population = await populate(
            services.sessions,
            services.vault,
            loaded,
            clients=args.clients,
            now=utcnow(),
            history_weeks=args.history_weeks,
        )
        await analyze(engine)
        db = await server_version(engine)
        size = await database_mb(engine, settings)
        print(f"\n## {db}\n\nSetup: {population.describe()}; database {size:,.0f} MB.")
        tune(dispatcher, messenger=noop_messenger(app, dispatcher))
        load = os.getloadavg()[0]
        durations, first, statements, busy_ticks = await idle_ticks(
            engine, dispatcher, args.ticks, args.profile
        )
        result = IdleResult(
            db=db,
            variant="as is",
            population=population,
            size_mb=size,
            durations=durations,
            first=first,
            statements=statements,
            rss_kb=proc_status_kb("VmRSS"),
            busy_ticks=busy_ticks,
        )
        rss = (result.rss_kb or 0) / 1024
        print(
            f"\nIdle ticks of the bot's Dispatcher in this process (load average {load:.1f}; "
            f"this process's VmRSS {rss:.0f} MB, the bulk load included):\n"
        )
        print(IDLE_HEADER)
        print(result.row())
        print_statements(result)
        await print_plans(engine, statements, args.explain)
        results = [result]
        applied: list[str] = []
        try:
            for name in args.what_if or ():
                apply_idle_probe()
                applied.append(name)
                durations, first, statements, busy_ticks = await idle_ticks(
                    engine, dispatcher, args.ticks, None
                )
                variant = IdleResult(
                    db=db,
                    variant="what-if " + " + ".join(applied),
                    population=population,
                    size_mb=size,
                    durations=durations,
                    first=first,
                    statements=statements,
                    rss_kb=proc_status_kb("VmRSS"),
                    busy_ticks=busy_ticks,
                )
                results.append(variant)
                print(f"\nWHAT-IF {' + '.join(applied)} (not the code as it is):\n")
                print(IDLE_HEADER)
                print(variant.row())
                print_statements(variant)
        finally:
            undo_what_ifs()
        bot = None
        if args.bot_seconds > 0:
            bot = await run_bot(settings, args.bot_seconds, args.bot_interval)
            print("\nThe real bot (`rapport run`) on this database:\n")
            print(BOT_HEADER)
            print(bot.row(db))
        if args.plan_sample > 0:
            planned, seconds, ticks = await plan_sample(
                services.sessions, dispatcher, args.plan_sample
            )
            print(
                f"\nPlanning: {planned} clients whose plan ran out were planned in "
                f"{seconds:.1f} s over {ticks} ticks ({planned / seconds:,.0f} clients/s; "
                "the planner spends at most its budget, 1 s, per tick)."
            )
        return results, bot


IDLE_HEADER = (
    "| database | code | clients | DB MB | ticks | median ms | p95 ms | max ms | first tick ms | "
    "ticks with work |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)
BOT_HEADER = (
    "| database | interval | seconds | ticks | ticks with work | median ms | p95 ms | "
    "VmRSS at end MB | VmRSS max MB | VmHWM MB |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


async def cmd_measure(args: argparse.Namespace) -> None:
    print(f"$ {command_line('bench.idle_tick')}\n\nMachine: {machine()}")
    for name in args.what_if or ():
        print(f"\nWHAT-IF (measured after the code as it is): {name}: {WHAT_IFS[name]}")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = [await measure(kind, args) for kind in kinds]
    print("\n## Summary\n\nIdle ticks (this process):\n")
    print(IDLE_HEADER)
    for idles, _ in results:
        for idle in idles:
            print(idle.row())
    bots = [(idles[0].db, bot) for idles, bot in results if bot is not None]
    if bots:
        print("\nThe real bot:\n")
        print(BOT_HEADER)
        for db, bot in bots:
            print(bot.row(db))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.idle_tick", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("bot-child", help="(internal) the real bot with a timed tick")
    child.add_argument("stats", type=Path)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--history-weeks", type=int, default=4)
    parser.add_argument("--bot-seconds", type=float, default=30)
    parser.add_argument("--bot-interval", type=float, default=0.2)
    parser.add_argument("--plan-sample", type=int, default=2000)
    parser.add_argument("--explain", type=int, default=3, help="EXPLAIN the N slowest SELECTs")
    parser.add_argument("--profile", type=Path, help="cProfile the timed ticks into this file")
    parser.add_argument(
        "--what-if",
        action="append",
        choices=list(WHAT_IFS),
        help="after the code as it is, measure again with these prototypes applied, "
        "cumulatively, in the order given: "
        + "; ".join(f"{name}: {text}" for name, text in WHAT_IFS.items()),
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RAPPORT_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
    )
    args = parser.parse_args(argv)
    if args.command == "bot-child":
        bot_child(args.stats)
    else:
        asyncio.run(cmd_measure(args))


if __name__ == "__main__":
    main()
