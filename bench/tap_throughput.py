"""Sustained check-in taps per second through the Bot API rig: Rapport against a bare PTB bot.

Run: .venv/bin/python -m bench.tap_throughput [--clients 50] [--warmup 3] [--seconds 20]
     [--rounds 1] [--bots rapport bare ...] [--profile]   (about 2 minutes for all four bots)

Everything runs on 127.0.0.1 in one process and one event loop, as in tests/rig.py: the fake Bot
API (tests.botapi.FakeBotAPI, real HTTP), the bot long-polling it, and the simulated clients.
Each client is a closed loop: it presses a button, waits until the bot has edited that message,
and presses the next one at once. The rate is the number of taps whose edit arrived inside the
measured window (after the warm-up), divided by its length.

Bots, each on a fresh fake:
- rapport: the real Application from bot.app.build_application (as start_rig builds it, on
  SQLite, but with the production dispatch interval), with its rate limiter as configured
  (bot.ratelimit.RapportRateLimiter: 30 requests/s overall for the messages the bot starts;
  replies to taps, editMessageText and answerCallbackQuery, stay out of that bucket). Clients
  join through the bot (/start, consent); --checkins check-ins per client are queued and
  delivered by the dispatcher before the clock starts; clients answer items 1..5 (high answers,
  as most real clients give) and then press "No comment", then go on to their next check-in.
  Every one of these presses is a tap.
- rapport-no-overall-limit: the same, but RapportRateLimiter(overall_max_rate=0, max_retries=3),
  patched in for this run only: a diagnostic that shows what the bot itself can do.
- bare: a PTB Application with one CallbackQueryHandler that does `await query.answer()` and
  `await query.edit_message_text(...)` with a new inline keyboard (the same texts and
  keyboards as Rapport's questions, prepared once), no rate limiter.
- bare-limited: the bare bot with the same RapportRateLimiter(max_retries=3) as Rapport.
- rapport-replies-only (a diagnostic, not in the default set): Rapport's whole Application
  (its handlers, context, rate limiter, dispatcher, rendering) with the check-in tap handler
  replaced, for this run only, by one that answers and edits to the next question with
  handlers.views but writes nothing: what everything but the tap's database work costs.

Prints a markdown table of rates and the ratios. It measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import math
import os
import platform
import pstats
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from unittest import mock

import telegram
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import AIORateLimiter, Application, CallbackQueryHandler, ContextTypes

from alliance.checkin import steps
from bot import config as practice_config
from bot.app import build_application, running
from bot.ratelimit import RapportRateLimiter
from bot.settings import Settings
from handlers import callbacks, checkin, views
from handlers.context import RapportApp, RapportContext
from handlers.texts import Say
from store.checkins import queue_now
from store.db import transaction
from tests.botapi import BotMessage, FakeBotAPI, FakeUser
from tests.rig import Clock, Rig, join, link, rig_settings

CLIENT_TG = 6_100_000
THERAPIST_TG = 5_100_000
BOTS = ("rapport", "rapport-no-overall-limit", "bare", "bare-limited")
DIAGNOSTICS = ("rapport-replies-only",)
MOST_TAPS = 300  # taps/s that the check-ins delivered before the window must last for
PRODUCTION_DISPATCH = float(Settings.model_fields["dispatch_interval"].default)


class WatchedFake(FakeBotAPI):
    """The fake, plus one future per message a client waits on: resolved when the bot edits
    it. (The fake's own wait_for wakes every waiter on every call; with 50 clients waiting
    that would cost the shared event loop more than the bots under test.)"""

    def __init__(self) -> None:
        super().__init__()
        self._seen_events = 0
        self._edit_waiters: dict[tuple[int, int], asyncio.Future[None]] = {}

    def _notify(self) -> None:
        super()._notify()
        events = self.message_events
        while self._seen_events < len(events):
            event = events[self._seen_events]
            self._seen_events += 1
            if event.kind != "edited":
                continue
            key = (event.message.chat_id, event.message.message_id)
            waiter = self._edit_waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def next_edit(self, chat_id: int, message_id: int) -> asyncio.Future[None]:
        """A future for the next edit of this message (ask before the press that causes it)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._edit_waiters[(chat_id, message_id)] = waiter
        return waiter


class SkippedTicks(logging.Handler):
    """Counts APScheduler's "skipped: maximum number of running instances" warnings: a
    dispatcher tick still running when the next one was due."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "maximum number of running instances" in record.getMessage():
            self.count += 1


@dataclass
class Tally:
    """Taps completed (the bot's edit seen), with when and how long each took."""

    done_at: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    idle_clients: int = 0  # clients that ran out of check-ins before the end


@dataclass
class Outcome:
    bot: str
    clients: int
    window: float
    taps: int
    latency: list[float]
    cpu: float  # process CPU seconds per wall second during the window
    idle_clients: int
    load: float  # the machine's 1-minute load average at the end of the window
    notes: str = ""
    round: int = 1

    @property
    def rate(self) -> float:
        return self.taps / self.window

    @property
    def cpu_per_tap(self) -> float:
        return self.cpu * self.window / self.taps if self.taps else float("nan")


def pick(message: BotMessage, rng: random.Random) -> str | None:
    """The button a client presses: an answer (high, as most real clients answer: few alerts),
    or "No comment" on the comment prompt; None when the message has no buttons left."""
    answers = [d for d in message.button_data if d and d.startswith(f"{callbacks.ANSWER}:")]
    if len(answers) > 3:  # a 0..10 scale: 10 mostly, else 9 (an alert only if all are 9)
        return answers[-1] if rng.random() < 0.7 else answers[-2]
    if answers:  # the tension item: "No"
        return answers[0]
    finish = [d for d in message.button_data if d and d.startswith(f"{callbacks.NO_COMMENT}:")]
    return finish[0] if finish else None


async def client_loop(
    fake: WatchedFake,
    user: FakeUser,
    message_ids: Sequence[int],
    tally: Tally,
    stop: asyncio.Event,
    rng: random.Random,
) -> None:
    """Press, wait for the edit, press again; move to the next message when one is done."""
    queue = list(message_ids)
    while queue and not stop.is_set():
        message = fake.find_message(user.id, queue[0])
        data = pick(message, rng) if message is not None else None
        if message is None or data is None:
            queue.pop(0)
            continue
        edited = fake.next_edit(user.id, message.message_id)
        started = time.perf_counter()
        user.press(message, data)
        await asyncio.wait_for(edited, 60)
        finished = time.perf_counter()
        tally.done_at.append(finished)
        tally.latency.append(finished - started)
    if not queue:
        tally.idle_clients += 1


async def drive(
    fake: WatchedFake,
    chats: Sequence[tuple[FakeUser, Sequence[int]]],
    args: argparse.Namespace,
    label: str,
) -> tuple[Tally, float, float, float]:
    """Run every client's loop; returns the tally, the window's start and end, and the
    process CPU seconds spent inside the window."""
    tally, stop = Tally(), asyncio.Event()
    tasks = [
        asyncio.create_task(client_loop(fake, user, ids, tally, stop, random.Random(args.seed + i)))
        for i, (user, ids) in enumerate(chats)
    ]
    await asyncio.sleep(args.warmup)
    profiler = cProfile.Profile() if args.profile else None
    start, cpu0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    await asyncio.sleep(args.seconds)
    if profiler:
        profiler.disable()
        print(f"\n## cProfile of the window, {label}\n", file=sys.stderr)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        print(by_package(stats), file=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("cumulative").print_stats("/(store|handlers|alliance|schedules)/", 40)
    end, cpu1 = time.perf_counter(), time.process_time()
    stop.set()
    await asyncio.gather(*tasks)
    return tally, start, end, cpu1 - cpu0


PACKAGES = {
    "rapport store (SQL, sealing)": "/store/",
    "rapport handlers": "/handlers/",
    "rapport alliance (scoring, detectors)": "/alliance/",
    "rapport schedules (dispatcher)": "/schedules/",
    "rapport bot (rate limiter, app)": "/bot/",
    "fake Bot API and clients (tests/, bench/, aiohttp, yarl, multidict)": (
        "/tests/",
        "/bench/",
        "/aiohttp/",
        "/yarl/",
        "/multidict/",
    ),
    "python-telegram-bot": "/telegram/",
    "httpx, httpcore, h11, anyio": ("/httpx/", "/httpcore/", "/h11/", "/anyio/"),
    "SQLAlchemy, aiosqlite, greenlet": ("/sqlalchemy/", "/aiosqlite/", "greenlet"),
    "matplotlib (alert charts)": ("/matplotlib/", "/PIL/", "/numpy/"),
    "asyncio and selectors (incl. waiting in epoll)": ("/asyncio/", "selectors.py", "epoll"),
}


def by_package(stats: pstats.Stats) -> str:
    """Own time (tottime) summed by where the code lives: which layer costs what. Time in C
    functions (builtins, sockets, epoll) goes to the code that called them."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]

    def group(key: tuple[str, int, str]) -> str:
        where = f"{key[0]}:{key[2]}"
        for label, marks in PACKAGES.items():
            if any(m in where for m in ((marks,) if isinstance(marks, str) else marks)):
                return label
        return "other"

    totals: dict[str, float] = dict.fromkeys([*PACKAGES, "other"], 0.0)
    for key, (_cc, _nc, tottime, _ct, callers) in raw.items():
        if key[0] != "~" or not callers:
            totals[group(key)] += tottime
            continue
        if "epoll" in key[2] or "select" in key[2]:
            totals["asyncio and selectors (incl. waiting in epoll)"] += tottime
            continue
        called = sum(c[2] for c in callers.values()) or 1.0
        for caller, (_c, _n, share, _t) in callers.items():
            totals[group(caller)] += tottime * share / called
    whole = sum(totals.values()) or 1.0
    lines = ["| code | own time s | share |", "| --- | ---: | ---: |"]
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {seconds:.2f} | {seconds / whole:.0%} |")
    return "\n".join(lines)


def outcome(
    bot: str, clients: int, tally: Tally, start: float, end: float, cpu: float, notes: str = ""
) -> Outcome:
    inside = [i for i, t in enumerate(tally.done_at) if start <= t < end]
    return Outcome(
        bot,
        clients,
        end - start,
        len(inside),
        [tally.latency[i] for i in inside],
        cpu / (end - start),
        tally.idle_clients,
        os.getloadavg()[0],
        notes,
    )


# -- Rapport ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def rapport_rig(
    fake: FakeBotAPI, data_dir: Path, dispatch_interval: float, overall_limit: bool
) -> AsyncIterator[Rig]:
    """start_rig's bot (SQLite in data_dir), with a production dispatch interval; without the
    overall rate limit if asked (a diagnostic, patched in for this run only)."""
    from bot.cli.setup import initialise  # where tests/rig.py takes it from

    url = f"sqlite+aiosqlite:///{data_dir / 'rapport.db'}"
    settings = rig_settings(fake, data_dir, url).model_copy(
        update={"dispatch_interval": dispatch_interval}
    )
    await initialise(settings)
    clock = Clock()
    limiter: Callable[..., AIORateLimiter] = RapportRateLimiter
    if not overall_limit:

        def limiter(**kwargs: Any) -> AIORateLimiter:  # overrides RAPPORT_SEND_RATE's value
            return RapportRateLimiter(**{**kwargs, "overall_max_rate": 0})

    with mock.patch("bot.app.RapportRateLimiter", limiter):
        app = build_application(settings, practice_config.load(None), clock=clock)
    overall = getattr(app.bot.rate_limiter, "_base_limiter", None)
    if not isinstance(app.bot.rate_limiter, AIORateLimiter) or (overall is None) == overall_limit:
        raise RuntimeError("the bot's rate limiter is not the one this run is meant to measure")
    async with running(app, poll_timeout=1):
        yield Rig(fake, app, settings, clock, url, data_dir)


async def enrol(rig: Rig, clients: int, checkins: int) -> list[tuple[FakeUser, list[int]]]:
    """Clients who joined through the bot, each with `checkins` check-ins delivered."""
    therapist_id, token = await rig.add_therapist()
    await link(rig.fake.user(THERAPIST_TG), token)
    users = []
    for start in range(0, clients, 10):
        batch = []
        for i in range(start, min(start + 10, clients)):
            client_id, invite = await rig.invite(therapist_id, label=f"Client {i:03d}")
            batch.append((rig.fake.user(CLIENT_TG + i, f"Client{i}"), invite, client_id))
        await asyncio.gather(*(join(user, invite) for user, invite, _ in batch))
        users += [(user, client_id) for user, _, client_id in batch]
    # Queued as `rapport checkin send` queues them (from outside the bot: no kick per check-in),
    # then the dispatcher is woken once.
    async with transaction(rig.services.sessions) as session:
        for _ in range(checkins):
            for _user, client_id in users:
                await queue_now(
                    session,
                    client_id=client_id,
                    instruments=rig.services.checkin_instruments,
                    now=rig.clock(),
                    window=rig.services.checkin_window,
                )
    rig.services.kick()

    def delivered() -> list[tuple[FakeUser, list[int]]] | None:
        out = []
        for user, _ in users:
            ids = [m.message_id for m in user.messages if "1/" in m.content and m.buttons]
            if len(ids) < checkins:
                return None
            out.append((user, ids))
        return out

    return await rig.fake.wait_for(delivered, timeout=30 + clients * checkins / 10)


async def replies_only(update: Update, context: RapportContext) -> None:
    """rapport-replies-only's tap handler: Rapport's replies to a tap, no database work."""
    query = update.callback_query
    tap = callbacks.decode(query.data if query else None)
    if query is None or tap is None:
        return
    services = context.services
    say = services.say(None)
    plan = steps([services.instruments["alliance"]])
    await query.answer(say("saved"))
    text, markup = views.step_message(say, tap.ref, plan[(tap.position + 1) % len(plan)])
    await query.edit_message_text(text, reply_markup=markup)


async def run_rapport(args: argparse.Namespace, overall_limit: bool) -> Outcome:
    name = "rapport" if overall_limit else "rapport-no-overall-limit"
    # Enough for the window at up to MOST_TAPS taps/s, shared by the clients; 6 taps a check-in.
    seconds = args.warmup + args.seconds + 5
    checkins = args.checkins or math.ceil(seconds * MOST_TAPS / args.clients / 6) + 1
    with tempfile.TemporaryDirectory(prefix="rapport-tput-") as tmp:
        fake = WatchedFake()
        async with fake, rapport_rig(fake, Path(tmp), args.dispatch_interval, overall_limit) as rig:
            t0 = time.perf_counter()
            chats = await enrol(rig, args.clients, checkins)
            print(
                f"{name}: {args.clients} clients enrolled, {checkins} check-ins each delivered "
                f"in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            await asyncio.sleep(1)  # let the delivering tick finish
            alerts_before = len(rig.fake.user(THERAPIST_TG).messages)
            skipped = SkippedTicks()
            logging.getLogger("apscheduler").addHandler(skipped)
            try:
                tally, start, end, cpu = await drive(fake, chats, args, name)
            finally:
                logging.getLogger("apscheduler").removeHandler(skipped)
            alerts = len(rig.fake.user(THERAPIST_TG).messages) - alerts_before
    notes = (
        f"{checkins} check-ins per client delivered before the start; {alerts} alerts sent to "
        f"the therapist; {skipped.count} dispatcher ticks skipped (previous still running)"
    )
    return outcome(name, args.clients, tally, start, end, cpu, notes)


# -- the bare bot -------------------------------------------------------------------------------


def bare_messages() -> list[tuple[str, InlineKeyboardMarkup]]:
    """Rapport's five alliance questions, rendered once: the bare bot cycles through them, so
    it sends the same texts and keyboards without doing Rapport's work per tap."""
    loaded = practice_config.load(None)
    say = Say(loaded.config.make_texts(), None)
    plan = steps([loaded.instruments["alliance"]])
    ref = uuid.uuid4()
    return [views.step_message(say, ref, step) for step in plan]


def bare_app(fake: FakeBotAPI, limited: bool) -> Application[Any, Any, Any, Any, Any, Any]:
    messages = bare_messages()

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and isinstance(query.data, str)
        await query.answer()
        position = int(query.data.split(":")[2])
        text, markup = messages[(position + 1) % len(messages)]
        await query.edit_message_text(text, reply_markup=markup)

    builder = fake.app_builder()
    if limited:
        builder = builder.rate_limiter(RapportRateLimiter(max_retries=3))
    app = builder.build()
    app.add_handler(CallbackQueryHandler(on_tap))
    return app


async def run_bare(args: argparse.Namespace, limited: bool) -> Outcome:
    name = "bare-limited" if limited else "bare"
    fake = WatchedFake()
    async with fake:
        app = bare_app(fake, limited)
        async with running(cast(RapportApp, app), poll_timeout=1):
            text, markup = bare_messages()[0]
            chats: list[tuple[FakeUser, Sequence[int]]] = []
            for i in range(args.clients):
                user = fake.user(CLIENT_TG + i, f"Client{i}")
                user.open_chat()
                sent = await app.bot.send_message(user.id, text, reply_markup=markup)
                chats.append((user, [sent.message_id]))
            tally, start, end, cpu = await drive(fake, chats, args, name)
    return outcome(name, args.clients, tally, start, end, cpu)


# -- report -------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def table(results: Sequence[Outcome]) -> list[str]:
    lines = [
        "| round | bot | taps/s | taps in window | CPU ms per tap | process CPU "
        "| tap round trip median / p90 ms | load (1 min) | notes |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lat = sorted(r.latency)
        p90 = lat[max(0, math.ceil(0.9 * len(lat)) - 1)] if lat else float("nan")
        median = statistics.median(lat) if lat else float("nan")
        notes = r.notes
        if r.idle_clients:
            notes += f"; **{r.idle_clients} clients ran out of check-ins**"
        lines.append(
            f"| {r.round} | {r.bot} | {r.rate:.1f} | {r.taps} | {r.cpu_per_tap * 1000:.1f} "
            f"| {r.cpu * 100:.0f}% | {ms(median)} / {ms(p90)} | {r.load:.2f} | {notes} |"
        )
    return lines


def medians(results: Sequence[Outcome]) -> dict[str, float]:
    bots = dict.fromkeys(r.bot for r in results)
    return {bot: statistics.median(r.rate for r in results if r.bot == bot) for bot in bots}


def ratios(results: Sequence[Outcome]) -> list[str]:
    rates = medians(results)
    pairs = [
        ("rapport", "bare", "Rapport as configured / bare PTB bot (the issue's comparison)"),
        ("rapport", "bare-limited", "Rapport as configured / bare bot with the same limiter"),
        (
            "rapport-no-overall-limit",
            "bare",
            "Rapport without the overall limit / bare bot, both unlimited (the bot's own cost)",
        ),
        (
            "rapport-replies-only",
            "bare",
            "Rapport's application without the tap's database work / bare bot (a diagnostic)",
        ),
    ]
    lines = []
    for top, bottom, label in pairs:
        if top in rates and bottom in rates and rates[bottom] > 0:
            ratio = rates[top] / rates[bottom]
            verdict = "meets" if ratio >= 0.8 else "**misses**"
            judged = "" if top in DIAGNOSTICS else f" ({verdict} the 80% target)"
            lines.append(
                f"- {label}: {rates[top]:.1f} / {rates[bottom]:.1f} taps/s = {ratio:.0%}{judged}"
            )
    return lines


def machine() -> str:
    return (
        f"{len(os.sched_getaffinity(0))} cores (nproc), {platform.machine()}, "
        f"Python {platform.python_version()}, python-telegram-bot {telegram.__version__}"
    )


async def main_async(args: argparse.Namespace, argv: Sequence[str]) -> str:
    command = f".venv/bin/python -m bench.tap_throughput {shlex.join(argv)}".rstrip()
    results = []
    for number in range(1, args.rounds + 1):
        for bot in args.bots:
            if bot == "rapport-replies-only":
                with mock.patch.object(checkin, "on_tap", replies_only):
                    result = await run_rapport(args, overall_limit=True)
                result.bot = bot
            elif bot.startswith("rapport"):
                result = await run_rapport(args, overall_limit=bot == "rapport")
            else:
                result = await run_bare(args, limited=bot == "bare-limited")
            result.round = number
            results.append(result)
            print(f"round {number}, {bot}: {result.rate:.1f} taps/s", file=sys.stderr)
    summary = []
    if args.rounds > 1:
        summary = [
            "Medians over the rounds: "
            + ", ".join(f"{bot} {rate:.1f}" for bot, rate in medians(results).items())
            + " taps/s.",
            "",
        ]
    return "\n".join(
        [
            "## Check-in taps: throughput through the Bot API rig",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {machine()}. Each bot: {args.clients} closed-loop clients, "
            f"{args.warmup:g} s of warm-up, then a {args.seconds:g} s window.",
            "",
            *table(results),
            "",
            *summary,
            *ratios(results),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Check-in taps per second, Rapport vs bare PTB.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    parser.add_argument("--rounds", type=int, default=1, help="repeat all bots, interleaved")
    parser.add_argument("--bots", nargs="+", choices=BOTS + DIAGNOSTICS, default=list(BOTS))
    parser.add_argument(
        "--checkins",
        type=int,
        default=0,
        help="check-ins per Rapport client (0: enough for the window at up to 300 taps/s)",
    )
    parser.add_argument("--dispatch-interval", type=float, default=PRODUCTION_DISPATCH)
    parser.add_argument("--profile", action="store_true", help="cProfile each window (stderr)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(asyncio.run(main_async(args, argv)))


if __name__ == "__main__":
    main()
