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
from handlers.i18n import _, ngettext, staff_when
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


def brief_text(content: BriefContent, detail: alert_words.Detail) -> str:
    """The brief as the therapist reads it. `detail` keeps the practice's promise: `scores`
    shows no comment, `minimal` nothing clinical at all."""
    who = content.client_label
    at = content.session_at.astimezone(ZoneInfo(content.timezone))
    when = staff_when(at, "EEE dd MMM, HH:mm", ("MMMEd", "Hm"), ", ")
    head = "📋 " + _("Before your session with {who} ({when})", who=who, when=when)
    if not alert_words.shows_scores(detail):
        return (
            head
            + "\n"
            + ngettext(
                "{n} signal since the last session. The details are in the practice's records; "
                "nothing clinical is sent through Telegram.",
                "{n} signals since the last session. The details are in the practice's "
                "records; nothing clinical is sent through Telegram.",
                len(content.alerts),
            )
        )
    lines = [head]
    done = sum(1 for r in content.records if r.comment is not None or r.answers)
    after_session = content.since is not None
    if content.records:
        checkins, missed = len(content.records), content.missed
        if after_session:
            lines.append(
                ngettext(
                    "{n} check-in since the last session, {missed} not completed.",
                    "{n} check-ins since the last session, {missed} not completed.",
                    checkins,
                    missed=missed,
                )
            )
        else:
            lines.append(
                ngettext(
                    "{n} check-in lately, {missed} not completed.",
                    "{n} check-ins lately, {missed} not completed.",
                    checkins,
                    missed=missed,
                )
            )
    sentences = alert_words.sentences(content.alerts, detail)
    if sentences:
        lines += [f"• {s}" for s in sentences]
    elif done and after_session:
        lines.append(_("Nothing of note: no rupture or wellbeing signals since the last session."))
    elif done:
        lines.append(_("Nothing of note: no rupture or wellbeing signals lately."))
    if alert_words.shows_comments(detail):
        for comment in content.comments[-COMMENTS_SHOWN:]:
            lines.append(
                _("{who} wrote: “{comment}”", who=who, comment=_cut(comment, COMMENT_SHOWN))
            )
    if sentences:
        question = alert_words.opening_question(alert_words.rupture_type(content.alerts))
        lines.append(_("To open with: “{question}”", question=question))
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
        if (
            alert_words.shows_scores(services.alert_detail)
            and content.trend
            and content.trend.points
        ):
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
