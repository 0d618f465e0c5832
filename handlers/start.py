"""/start: linking a therapist or a client through a one-time link, and turning strangers away."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType

from handlers import texts
from handlers.context import RapportContext
from store import people

log = logging.getLogger(__name__)


async def start(update: Update, context: RapportContext) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.chat.type != ChatType.PRIVATE:
        return
    services = context.services
    token = context.args[0] if context.args else ""
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
        linked = None
        if known is None and token:
            linked = await people.redeem_invite(
                session,
                services.vault,
                token=token,
                telegram_user_id=user.id,
                chat_id=message.chat.id,
                now=services.clock(),
            )
    if known is not None:
        await message.reply_text(texts.ALREADY_LINKED)
    elif linked is None:
        log.info("/start without a valid invitation")
        await message.reply_text(texts.INVITATION_ONLY)
    elif linked.role == "therapist":
        log.info("a therapist linked their Telegram account")
        await message.reply_text(texts.THERAPIST_LINKED)
    else:
        log.info("a client joined")
        await message.reply_text(texts.CLIENT_WELCOME)
