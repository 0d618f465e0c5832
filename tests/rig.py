"""The end-to-end rig: the real Rapport Application, long-polling the fake Bot API over HTTP,
on a real database, with a clock the test controls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobEvent

from bot import config as practice_config
from bot.app import build_application, running
from bot.cli.setup import initialise
from bot.settings import Settings
from handlers.context import RapportApp, Services
from handlers.texts import DEFAULTS
from store import checkins, people
from store.db import transaction
from tests.botapi import BotMessage, FakeBotAPI, FakeUser

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """Real time by default; a test can move it forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def set(self, moment: datetime) -> None:
        """From now on the clock reads `moment` (and runs on from there)."""
        self.offset = moment - datetime.now(UTC)


@dataclass
class Rig:
    fake: FakeBotAPI
    app: RapportApp
    settings: Settings
    clock: Clock
    database_url: str
    data_dir: Path

    @property
    def services(self) -> Services:
        services = self.app.bot_data.services
        assert services is not None
        return services

    def env(self) -> dict[str, str]:
        """The environment a `rapport` process needs to work on this rig's data."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            RAPPORT_DATA_DIR=str(self.data_dir),
            RAPPORT_DATABASE_URL=self.database_url,
            RAPPORT_TELEGRAM_API_URL=self.fake.root,
            RAPPORT_BOT_TOKEN=self.fake.token,
            RAPPORT_WEB_LISTEN=self.settings.web_listen,
            RAPPORT_WEB_PORT=str(self.settings.web_port),
        )
        if self.settings.config is not None:
            env["RAPPORT_CONFIG"] = str(self.settings.config)
        return env

    async def add_therapist(
        self, name: str = "Therapist Ada", is_admin: bool = False
    ) -> tuple[uuid.UUID, str]:
        """A therapist, added as `rapport therapist add` does (in-process, for speed)."""
        async with transaction(self.services.sessions) as session:
            therapist, invite = await people.add_therapist(
                session,
                self.services.vault,
                name=name,
                is_admin=is_admin,
                now=self.clock(),
                invite_ttl=self.services.invite_ttl,
            )
        return therapist.id, invite.token

    async def invite(
        self, therapist_id: uuid.UUID, label: str = "Client C"
    ) -> tuple[uuid.UUID, str]:
        async with transaction(self.services.sessions) as session:
            client, invite = await people.invite_client(
                session,
                self.services.vault,
                therapist_id=therapist_id,
                label=label,
                timezone="Europe/Berlin",
                schedule_template=None,
                now=self.clock(),
                invite_ttl=self.services.invite_ttl,
            )
        return client.id, invite.token

    async def send_checkin(self, client_id: uuid.UUID, *instruments: str) -> uuid.UUID:
        """Queue a check-in as `rapport checkin send` does, and wake the dispatcher."""
        async with transaction(self.services.sessions) as session:
            checkin = await checkins.queue_now(
                session,
                client_id=client_id,
                instruments=list(instruments) or self.services.checkin_instruments,
                now=self.clock(),
                window=self.services.checkin_window,
            )
        self.services.kick()
        return checkin.id

    async def cli(self, *args: str) -> dict[str, Any]:
        """Run the real `rapport` command in a subprocess, with --json; returns its output."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            *args,
            "--json",
            cwd=self.data_dir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"rapport {' '.join(args)} failed: {err.decode()}"
        result: dict[str, Any] = json.loads(out)
        return result


def rig_settings(fake: FakeBotAPI, data_dir: Path, database_url: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=fake.token,
        data_dir=data_dir,
        database_url=database_url,
        telegram_api_url=fake.root,
        dispatch_interval=0.2,
        **{"web_port": 0, **extra},  # the dashboard only where a test asks for it
    )


@asynccontextmanager
async def start_rig(
    fake: FakeBotAPI,
    data_dir: Path,
    database_url: str,
    clock: Clock | None = None,
    config: Path | None = None,
    **extra: Any,
) -> AsyncIterator[Rig]:
    """The bot, running; leaving the block stops it as a shutdown would (data stays).
    `extra`: more settings (e.g. web_port for the dashboard)."""
    settings = rig_settings(fake, data_dir, database_url, config=config, **extra)
    await initialise(settings)
    clock = clock or Clock()
    app = build_application(settings, practice_config.load(config), clock=clock)
    async with running(app, poll_timeout=1):
        yield Rig(fake, app, settings, clock, database_url, data_dir)


async def join(user: FakeUser, token: str) -> BotMessage:
    """Open a client's invite link and agree to the consent text, as the client would."""
    user.send_text(f"/start {token}")
    offer = await user.wait_for_message(contains="Do you agree")
    user.press_button(offer, DEFAULTS["agree_button"])
    return await user.wait_for_message(contains="you're all set")


async def link(user: FakeUser, token: str) -> BotMessage:
    """Open a therapist's link."""
    user.send_text(f"/start {token}")
    return await user.wait_for_message(contains="linked")


async def enrolled(
    rig: Rig, label: str = "Client Mo", therapist_tg: int = 5301, client_tg: int = 6301
) -> tuple[FakeUser, FakeUser, uuid.UUID]:
    """A linked therapist and a client of theirs who joined: (therapist, client, client id)."""
    therapist_id, t_token = await rig.add_therapist()
    client_id, c_token = await rig.invite(therapist_id, label=label)
    therapist, client = rig.fake.user(therapist_tg), rig.fake.user(client_tg)
    await link(therapist, t_token)
    await join(client, c_token)
    return therapist, client, client_id


async def press_latest(user: FakeUser, label: str) -> BotMessage:
    """Press the button `label` on the newest message that has it; the message as edited."""
    shown = next((m.message_id for m in reversed(user.messages) if label in m.buttons), None)
    if shown is None:
        raise AssertionError(f"{user!r} has no message with a button {label!r}")
    user.press_button(shown, label)
    return await user.wait_for_message(predicate=lambda m: m.message_id == shown)


async def received(
    rig: Rig,
    user: FakeUser,
    contains: str,
    after: int = 0,
    timeout: float = 15.0,  # noqa: ASYNC109 - the wait's deadline
) -> BotMessage:
    """The first message containing `contains` that the user has (or will have) received,
    counting from their message number `after`: unlike `wait_for_message`, it finds one
    that came before the call (as a notice sent by the dispatcher may)."""
    return await rig.fake.wait_for(
        lambda: next((m for m in user.messages[after:] if contains in m.content), None),
        timeout=timeout,
        message=f"a message to {user!r} containing {contains!r}",
    )


async def first_question(rig: Rig, user: FakeUser) -> BotMessage:
    """Wait for a check-in to arrive (it may already have)."""
    return await rig.fake.wait_for(
        lambda: next((m for m in reversed(user.messages) if "1/" in m.content), None), timeout=10
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until an async check (usually a database read) holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            name = getattr(check, "__name__", repr(check))
            raise AssertionError(f"timed out after {timeout}s waiting for {name}")
        await asyncio.sleep(0.05)


async def dispatched(rig: Rig) -> None:
    """Return once a dispatcher tick that started after this call has finished.

    Ticks never overlap, so the second tick to finish after this call began after it. Use it
    before asserting that something was *not* sent: without it, the assertion could run
    before the tick that would have sent it.
    """
    job_queue = rig.app.job_queue
    assert job_queue is not None
    [job] = job_queue.get_jobs_by_name("dispatch")
    finished = 0
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_event(event: JobEvent) -> None:
        nonlocal finished
        if event.job_id == job.job.id:
            finished += 1
            if finished == 2 and not done.done():
                loop.call_soon_threadsafe(done.set_result, None)

    job_queue.scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    try:
        await asyncio.wait_for(done, timeout=30)
    finally:
        job_queue.scheduler.remove_listener(on_event)


async def answer_checkin(
    rig: Rig,
    client: FakeUser,
    client_id: uuid.UUID,
    values: list[str],
    then: timedelta = timedelta(days=7),
    comment: str | None = None,
) -> None:
    """One whole alliance check-in through the bot: the answers (button labels), then the
    `comment` typed (or "No comment" pressed); then the clock moves on by `then`."""
    await rig.send_checkin(client_id, "alliance")
    before = len(client.messages)
    question = await rig.fake.wait_for(
        lambda: next((m for m in client.messages[before:] if "1/5" in m.content), None),
        timeout=10,
    )
    shown = question.message_id
    for value in values if comment is not None else [*values, "No comment"]:
        client.press_button(shown, value)
        await client.wait_for_message(predicate=lambda m, shown=shown: m.message_id == shown)
    if comment is not None:
        client.send_text(comment)
        await client.wait_for_message(contains="Thank you")
    rig.clock.advance(then)
