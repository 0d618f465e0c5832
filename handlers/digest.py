"""The weekly digest job: each therapist who asked for one gets it on their day and time."""

from __future__ import annotations

import logging
import uuid

from telegram import Bot, Message

from handlers import alert_words, delivery
from handlers import therapist_views as views
from handlers.context import Services
from store import audit, briefs, caseload, digests, people
from store.db import transaction
from store.outbox import SendOutcome

log = logging.getLogger(__name__)


async def send_due(bot: Bot, services: Services) -> int:
    """Claim the digests due now (each at most once a week), then send them; how many went.

    A digest that surely did not reach Telegram (refused connection, Telegram's 5xx, flood
    control) is tried again with back-off (store.outbox), at the next runs; one that may have
    arrived (a timeout, or its first part went) is not repeated.
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
            scores = alert_words.shows_scores(services.alert_detail)
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
    sent = 0
    for claim, chat, text, carried in outgoing:
        pieces: list[int] = []
        outcome, _ = await delivery.attempt(_send_pieces(bot, chat, text, pieces), "weekly digest")
        if outcome is SendOutcome.NOT_SENT and pieces:
            outcome = SendOutcome.UNKNOWN  # its first part arrived: never repeat it whole
        async with transaction(services.sessions) as session:
            await digests.record(session, claim.digest.id, outcome, None, services.clock())
            if outcome is SendOutcome.SENT:
                sent += 1
                await briefs.mark_briefed(session, carried, services.clock())
            else:
                audit.record(
                    session,
                    actor_kind="system",
                    action="digest.sent",
                    target_kind="therapist",
                    target_id=claim.therapist.id,
                    outcome="not_delivered",
                )
    return sent


async def _send_pieces(bot: Bot, chat: int, text: str, sent: list[int]) -> Message:
    """The digest in as many messages as Telegram's length limit needs; `sent` collects
    the ids of those that went."""
    message = None
    for piece in views.split_message(text):
        message = await bot.send_message(chat, piece)
        sent.append(message.message_id)
    assert message is not None  # split_message returns at least one piece
    return message
