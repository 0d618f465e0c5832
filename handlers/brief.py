"""The pre-session brief job: before each client's next session the therapist gets one message
about that client: what changed since the last session, the signals kept for it, comments
where the detail level allows, missed check-ins, the trend chart and a question to open with.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from telegram import Bot

from handlers import alert_words, delivery
from handlers.context import Services
from schedules import briefs as timing
from store import briefs
from store.briefs import BriefContent
from store.db import transaction

log = logging.getLogger(__name__)

COMMENT_SHOWN = 160  # characters of one comment in a brief
COMMENTS_SHOWN = 2


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word, never mid-word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def brief_text(content: BriefContent, detail: str) -> str:
    """The brief as the therapist reads it. `detail` keeps the practice's promise: `scores`
    shows no comment, `minimal` nothing clinical at all."""
    who = content.client_label
    at = content.session_at.astimezone(ZoneInfo(content.timezone))
    head = f"📋 Before your session with {who} ({at:%a %d %b, %H:%M})"
    if detail == "minimal":
        signals = len(content.alerts)
        noun = "signal" if signals == 1 else "signals"
        return (
            f"{head}\n{signals} {noun} since the last session. The details are in the "
            "practice's records; nothing clinical is sent through Telegram."
        )
    lines = [head]
    done = sum(1 for r in content.records if r.comment is not None or r.answers)
    since = "since the last session" if content.since is not None else "lately"
    if content.records:
        lines.append(f"{len(content.records)} check-ins {since}, {content.missed} not completed.")
    sentences = alert_words.sentences(content.alerts, detail)
    if sentences:
        lines += [f"• {s}" for s in sentences]
    elif done:
        lines.append(f"Nothing of note: no rupture or wellbeing signals {since}.")
    if detail == "full":
        for comment in content.comments[-COMMENTS_SHOWN:]:
            lines.append(f"{who} wrote: “{_cut(comment, COMMENT_SHOWN)}”")
    if sentences:
        question = alert_words.opening_question(alert_words.rupture_type(content.alerts))
        lines.append(f"To open with: “{question}”")
    return "\n".join(lines)


async def send_due(bot: Bot, services: Services) -> int:
    """Claim the briefs due now (each client and session once, and those to try again),
    send them; how many went. One that surely did not reach Telegram is tried again with
    back-off until its session begins; one that may have arrived is not repeated
    (store.outbox)."""
    now = services.clock()
    contents: list[BriefContent] = []
    async with transaction(services.sessions) as session:
        claimed = await briefs.retries(session, now)
        claimed += await timing.claim_due(
            session, now, services.brief_lead, services.timezone, services.quiet
        )
        for brief_id in claimed:
            content = await briefs.contents(
                session,
                services.vault,
                brief_id,
                services.instruments,
                services.detection.settings,
            )
            if content is not None:
                contents.append(content)
    sent = 0
    for content in contents:
        text = brief_text(content, services.alert_detail)
        chart = None
        if services.alert_detail != "minimal" and content.trend and content.trend.points:
            chart = await services.charts.render(content.trend)
        outcome, message_id = await delivery.attempt(
            delivery.send_with_chart(bot, content.therapist_chat_id, text, chart),
            "pre-session brief",
        )
        async with transaction(services.sessions) as session:
            sent += await briefs.record_sent(
                session, content, outcome, message_id, services.clock()
            )
    return sent


BRIEF_INTERVAL = timedelta(minutes=5)
