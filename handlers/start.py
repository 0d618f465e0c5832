"""/start with a one-time link: therapists are linked at once; clients first read and accept
the consent text. Strangers are turned away, and nothing about them is stored."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.constants import ChatType

from handlers import callbacks, i18n, local_time, progress_words, therapist, views
from handlers.context import RapportContext
from handlers.delivery import unless_unchanged
from handlers.i18n import _
from schedules import manage
from store import clients, notices, people
from store.models import Client

log = logging.getLogger(__name__)


async def start(update: Update, context: RapportContext) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.chat.type != ChatType.PRIVATE:
        return
    services = context.services
    token = context.args[0] if context.args else ""
    say = services.say_to(user)
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
        invite = None
        if known is None and token:
            invite = await people.open_invite(session, token=token, now=services.clock())
        if (
            invite is not None
            and invite.purpose == "client"
            and not people.bind_invite(
                session, services.vault, invite=invite, telegram_user_id=user.id
            )
        ):
            invite = None  # another account opened this link first: it keeps it
        linked = None
        if invite is not None and invite.purpose == "therapist":
            linked = await people.redeem_invite(
                session,
                services.vault,
                invite=invite,
                telegram_user_id=user.id,
                chat_id=message.chat.id,
                now=services.clock(),
            )
    if isinstance(known, Client):
        said = services.say(known.language)
        await message.reply_text(progress_words.help_text(said, services.client_progress))
    elif known is not None:
        await message.reply_text(services.say(None)("already_linked"))
    elif invite is None:
        log.info("/start without a valid invitation")
        await message.reply_text(say("invitation_only"))
    elif linked is not None:
        log.info("a therapist linked their Telegram account")
        await message.reply_text(say("therapist_linked"))
        await therapist.register_commands(context.bot, message.chat.id)
    else:
        text, markup = views.consent_offer(say, invite.id)
        await message.reply_text(text, reply_markup=markup)


async def on_consent(update: Update, context: RapportContext) -> None:
    """Agree links the client and records consent; Not now stores nothing.

    Only the Telegram account that opened the invite's link may answer (the button's data can
    be forged by anyone): a press from any other account changes nothing, is audited, and gets
    the invitation-only message.
    """
    query, user = update.callback_query, update.effective_user
    tap = callbacks.decode(query.data if query else None)
    if query is None or user is None or tap is None or query.message is None:
        return
    services = context.services
    say = services.say_to(user)
    language = say.language
    if tap.value == callbacks.FULL_TEXT:  # nothing changes: the same offer, in full
        text, markup = views.consent_offer(say, tap.ref, full=True)
        await query.answer()
        await unless_unchanged(query.edit_message_text(text, reply_markup=markup))
        return
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
        invite = await people.open_invite(session, invite_id=tap.ref, now=services.clock())
        refused = (
            invite is not None
            and invite.purpose == "client"
            and not people.may_consent(
                session, services.vault, invite=invite, telegram_user_id=user.id
            )
        )
        linked = None
        if (
            known is None
            and invite
            and invite.purpose == "client"
            and not refused
            and tap.value == callbacks.YES
        ):
            linked = await people.redeem_invite(
                session,
                services.vault,
                invite=invite,
                telegram_user_id=user.id,
                chat_id=query.message.chat.id,
                now=services.clock(),
                consent_version=services.texts.consent_version(language),
                language=language,
            )
            if linked is not None:
                await _tell_therapist(session, context, linked.person_id)
    await query.answer()
    if refused:
        log.warning("a consent button was pressed by an account that did not open the link")
        await unless_unchanged(query.edit_message_text(say("invitation_only")))
    elif isinstance(known, Client):  # a second tap on Agree: already done
        await query.edit_message_text(say("client_welcome"))
    elif known is not None or invite is None or invite.purpose != "client":
        await query.edit_message_text(say("invitation_only"))
    elif tap.value != callbacks.YES:
        await query.edit_message_text(
            say(
                "consent_declined",
                expires=local_time.day(invite.expires_at, services.timezone, language),
            )
        )
    elif linked is None:
        await query.edit_message_text(say("already_linked"))
    else:
        log.info("a client agreed and joined")
        await query.edit_message_text(say("client_welcome"))


async def _tell_therapist(
    session: AsyncSession, context: RapportContext, client_id: uuid.UUID
) -> None:
    """The client's schedule starts now; their therapist hears that they joined and when
    their first check-in is due (in the client's time), through the notices (at least once)."""
    services = context.services
    client = await session.get(Client, client_id)
    if client is None:
        return
    now = services.clock()
    plan = await manage.start_on_joining(session, client, services.templates, services.quiet, now)
    values = {"label": await clients.label(session, services.vault, client)}
    if plan.due:
        values["when"] = local_when(plan.due[0], client.timezone)
    await notices.notify(
        session,
        services.vault,
        therapist_id=client.therapist_id,
        kind="joined" if plan.due else "joined_unscheduled",
        values=values,
        now=now,
    )


def local_when(instant: datetime, zone: str) -> str:
    """'on Tue 8 Dec at 18:00 (Europe/Berlin time)': a moment in a person's own zone, for
    their therapist (in the practice's language)."""
    local = instant.astimezone(ZoneInfo(zone))
    where = i18n.locale(i18n.staff.language)
    return _(
        "on {day} at {time} ({zone} time)",
        day=format_skeleton("MMMEd", local, locale=where),
        time=format_skeleton("Hm", local, locale=where),
        zone=zone,
    )
