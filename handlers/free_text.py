"""The answer to text a client types when no comment is awaited: where their check-ins stand
(an open one waits for its buttons; else when the next is due, in their own day and time, and
how to reach the practice), that the text is not kept, and where to get urgent help.

The text itself is scanned for risk by review.decide.free_text and then dropped: nothing here
sees it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Services
from handlers.local_time import day_time
from handlers.texts import Say
from schedules import manage
from store import checkins
from store.models import Client, ClientStatus


async def reply(
    session: AsyncSession, services: Services, say: Say, client: Client, now: datetime
) -> str:
    standing = await checkins.standing(session, client.id, now)
    if standing.open:
        return f"{say('use_buttons')}\n\n{say('free_text_not_kept')}"
    if client.status == ClientStatus.PAUSED and client.paused_until is not None:
        until = day_time(client.paused_until, client.timezone, now, say.language)
        where = say("free_text_paused", until=until)
    elif client.status == ClientStatus.STOPPED:
        where = say("free_text_stopped")
    elif client.status != ClientStatus.ACTIVE:
        where = say("free_text_unscheduled")
    else:
        planned = await manage.upcoming(session, client, services.quiet, now, count=1)
        due = sorted([*planned.due[:1], *filter(None, [standing.queued_at])])
        if due:
            where = say("free_text_next", when=day_time(due[0], client.timezone, now, say.language))
        else:
            where = say("free_text_unscheduled")
    reach = services.texts.reach(say.language)
    return f"{where} {reach}\n\n{say('free_text_not_kept')}"
