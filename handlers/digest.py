"""The weekly digest job: each therapist who asked for one gets it on their day and time."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from handlers import therapist_views as views
from handlers.context import Services
from store import audit, caseload, digests, people
from store.db import transaction

log = logging.getLogger(__name__)


async def send_due(bot: Bot, services: Services) -> int:
    """Claim the digests due now (each at most once a week), then send them; how many went."""
    now = services.clock()
    since = now - digests.WEEK
    outgoing: list[tuple[int, str]] = []
    async with transaction(services.sessions) as session:
        for therapist in await digests.claim_due(session, now, services.timezone):
            chat = await people.chat_id(session, services.vault, therapist)
            if chat is None:
                continue
            rows = await caseload.overview(
                session,
                services.vault,
                therapist.id,
                services.instruments,
                services.detection.settings,
                now,
                period=digests.WEEK,
            )
            raised = await digests.alerts_raised(session, therapist.id, since)
            audit.record(
                session,
                actor_kind="system",
                action="digest.sent",
                target_kind="therapist",
                target_id=therapist.id,
            )
            outgoing.append((chat, views.digest(rows, raised, since, services.timezone)))
    sent = 0
    for chat, text in outgoing:
        try:
            for piece in views.split_message(text):
                await bot.send_message(chat, piece)
            sent += 1
        except TelegramError as exc:
            # Claimed before sending: a lost digest waits for next week rather than repeating.
            log.warning("a weekly digest was not delivered: %s", type(exc).__name__)
    return sent
