"""The weekly digest job: each therapist who asked for one gets it on their day and time."""

from __future__ import annotations

import logging
import uuid

from telegram import Bot
from telegram.error import TelegramError

from handlers import alert_words
from handlers import therapist_views as views
from handlers.context import Services
from handlers.delivery import classify
from store import audit, briefs, caseload, digests, people
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
    outgoing: list[tuple[digests.Claim, int, str, list[uuid.UUID]]] = []
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
            # Clients with no session known get no pre-session brief: their signals come here.
            waiting = await briefs.waiting_without_session(
                session, services.vault, therapist.id, chat, now
            )
            text += views.digest_waiting(
                [
                    (label, alert_words.sentences(alerts, services.alert_detail))
                    for label, alerts in waiting
                ]
            )
            carried = [alert.alert_id for _, alerts in waiting for alert in alerts]
            outgoing.append((claim, chat, text, carried))
    sent, retry = 0, []
    for claim, chat, text, carried in outgoing:
        pieces = 0
        try:
            for piece in views.split_message(text):
                await bot.send_message(chat, piece)
                pieces += 1
            sent += 1
            async with transaction(services.sessions) as session:
                await briefs.mark_briefed(session, carried, services.clock())
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
