"""What every handler can reach: the services, through a typed context, and one transaction
per update that also makes a redelivered update a no-op."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update, User
from telegram.ext import Application, ApplicationHandlerStop, CallbackContext, ExtBot, JobQueue

from alliance.instruments import Instrument
from handlers.alert_words import Detail
from handlers.charts import Charts
from handlers.texts import Say, Texts
from review.decide import Detection
from schedules.rules import QuietHours, Template
from store import updates
from store.db import interactive, transaction
from store.vault import Vault

if TYPE_CHECKING:
    from schedules.dispatcher import Dispatcher


@dataclass
class Services:
    """Everything a handler or job needs; built once in bot.app's post_init."""

    sessions: async_sessionmaker[AsyncSession]
    vault: Vault
    texts: Texts
    detection: Detection
    instruments: Mapping[str, Instrument]
    checkin_instruments: list[str]
    show_scores: Sequence[str]
    checkin_window: timedelta
    invite_ttl: timedelta
    clock: Callable[[], datetime]
    charts: Charts
    alert_detail: Detail = Detail.FULL
    brief_lead: timedelta = timedelta(hours=2)  # the brief goes this long before a session
    bot_username: str | None = None
    timezone: str = "UTC"  # the practice's
    quiet: QuietHours | None = None  # the practice's default quiet hours
    templates: Mapping[str, Template] = field(default_factory=dict)
    default_template: str | None = None
    client_progress: bool = True  # /progress answers with a chart (`[checkins] client_progress`)
    web_url: str | None = None  # the web dashboard's base URL for /web links; None: it is off
    kick: Callable[[], None] = field(default=lambda: None)

    def say(self, language: str | None) -> Say:
        return Say(self.texts, language)

    def say_to(self, user: User, language: str | None = None) -> Say:
        """Words for this Telegram user: in `language` (a client's own) when known, else in
        the best match for the language their Telegram app reports."""
        return self.say(language or self.texts.language_for(user.language_code))

    def thanks(
        self,
        say: Say,
        scores: Mapping[str, float | None],
        session_known: bool = False,
        readings: Mapping[str, str] | None = None,
    ) -> str:
        """The closing message, with the scores the practice lets clients see, each followed
        by the plain reading of its trend that /progress gives (`readings`, by instrument).
        It promises "before your next session" only when a next session is known (a brief
        goes then)."""
        lines = [say("thanks_before_session" if session_known else "thanks")]
        for name in self.show_scores:
            score, instrument = scores.get(name), self.instruments.get(name)
            if score is not None and instrument is not None:
                shown = say(
                    "your_score",
                    title=instrument.in_language(say.language).title,
                    score=f"{score:g}",
                    max=f"{instrument.max_total:g}",
                )
                reading = (readings or {}).get(name)
                lines.append(f"{shown} {reading}" if reading else shown)
        return "\n\n".join(lines)


class BotData:
    """PTB's bot_data, typed: holds the services once post_init has built them."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.dispatcher: Dispatcher | None = None  # set when this process dispatches


class RapportContext(
    CallbackContext[ExtBot[None], dict[object, object], dict[object, object], BotData]
):
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not ready: post_init has not run")
        return services

    @asynccontextmanager
    async def unit_of_work(self, update: Update) -> AsyncIterator[AsyncSession]:
        """One database transaction for this update.

        The update id is recorded in the same transaction, so an update Telegram delivers
        twice (after a restart) changes the database once; the second delivery stops here.
        On SQLite its statements run `interactive`ly: in the event loop's thread unless one
        would wait for a lock.
        """
        with interactive():
            async with transaction(self.services.sessions) as session:
                if not await updates.first_time(session, update.update_id, self.services.clock()):
                    raise ApplicationHandlerStop
                yield session


RapportApp = Application[
    ExtBot[Any], RapportContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[RapportContext]
]
