"""/progress: a client's own trend chart with a plain reading, when the practice allows it
(`[checkins] client_progress`); and the same words after a check-in's shown scores."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update

from handlers import progress_words, views
from handlers.client import client_behind
from handlers.context import RapportContext, Services
from handlers.texts import Say
from store import audit, history

log = logging.getLogger(__name__)


async def progress(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    client, say = found
    services = context.services
    if not services.client_progress:
        await message.reply_text(say("progress_off"))
        return
    async with context.unit_of_work(update) as session:
        trend = await history.trend(
            session,
            services.vault,
            client.id,
            services.instruments,
            services.detection.settings,
        )
        audit.record(
            session,
            actor_kind="client",
            actor_id=client.id,
            action="progress.read",
            target_kind="client",
            target_id=client.id,
        )
    footer = say("progress_footer")
    if not any(p.alliance is not None or p.wellbeing is not None for p in trend.points):
        await message.reply_text(f"{say('progress_nothing_yet')}\n\n{footer}")
        return
    words = list(_readings(services, say, trend).values()) or [say("progress_too_few")]
    text = "\n\n".join([*words, footer])
    # The client's own chart: their answers and usual range, without the practice's cutoffs.
    chart = await services.charts.render(
        dataclasses.replace(trend, cutoff=None, wellbeing_cutoff=None)
    )
    if chart is None:
        await message.reply_text(text)
    elif views.fits_caption(text):
        await message.reply_photo(chart, caption=text)
    else:
        await message.reply_photo(chart)
        await message.reply_text(text)
    log.info("a client asked for their progress")


def _readings(services: Services, say: Say, trend: history.Trend) -> dict[str, str]:
    settings = services.detection.settings
    return progress_words.readings(
        say,
        trend,
        services.instruments.get(settings.alliance_instruments[0]),
        services.instruments.get(settings.wellbeing_instruments[0]),
    )


async def after_checkin(
    session: AsyncSession, services: Services, say: Say, client_id: uuid.UUID
) -> dict[str, str]:
    """The readings that follow the scores shown after a check-in (`show_scores`); none when
    the practice shows no scores."""
    if not services.show_scores:
        return {}
    trend = await history.trend(
        session, services.vault, client_id, services.instruments, services.detection.settings
    )
    return _readings(services, say, trend)
