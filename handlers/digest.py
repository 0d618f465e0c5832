"""The weekly digest job: each therapist who asked for one gets it on their day and time."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from handlers import therapist_views as views
from handlers.context import Services
from handlers.delivery import classify
from store import audit, caseload, digests, people
from store.checkins import SendOutcome
from store.db import transaction

log = logging.getLogger(__name__)


async def send_due(bot: Bot, services: Services) -> int:
    """Claim the digests due now (each at most once a week), then send them; how many went.

    A digest that surely did not reach Telegram (refused connection, Telegram's 5xx, flood
    control) is given back and tried again at the next run that day; one that may have
    arrived (a timeout) is not repeated.
    """
    now = services.clock()
    since = now - digests.WEEK
    outgoing: list[tuple[digests.Claim, int, str]] = []
    async with transaction(services.sessions) as session:
        for claim in await digests.claim_due(session, now, services.timezone):
            therapist = claim.therapist
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
            scores = services.alert_detail != "minimal"  # the practice's detail level
            text = views.digest(rows, raised, since, services.timezone, show_scores=scores)
            outgoing.append((claim, chat, text))
    sent, retry = 0, []
    for claim, chat, text in outgoing:
        pieces = 0
        try:
            for piece in views.split_message(text):
                await bot.send_message(chat, piece)
                pieces += 1
            sent += 1
        except TelegramError as exc:
            outcome = classify(exc)
            log.warning("a weekly digest was not delivered: %s (%s)", type(exc).__name__, outcome)
            if outcome == SendOutcome.NOT_SENT and pieces == 0:
                retry.append(claim)
    if retry:
        async with transaction(services.sessions) as session:
            for claim in retry:
                await digests.release(session, claim, now)
                audit.record(
                    session,
                    actor_kind="system",
                    action="digest.sent",
                    target_kind="therapist",
                    target_id=claim.therapist.id,
                    outcome="not_delivered",
                )
    return sent
