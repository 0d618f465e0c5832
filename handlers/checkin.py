"""Taps on check-in buttons: parse, record through the store, show the next step."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from handlers import callbacks, texts, views
from handlers.context import RapportContext
from store import checkins
from store.checkins import TapResult

log = logging.getLogger(__name__)


async def on_tap(update: Update, context: RapportContext) -> None:
    query = update.callback_query
    if query is None:
        return
    tap = callbacks.decode(query.data)
    message = query.message
    if tap is None or message is None or message.chat.type != ChatType.PRIVATE:
        log.warning("ignored a button with unknown data or outside a private chat")
        await query.answer(texts.CHECKIN_CLOSED)
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        outcome = await checkins.record_tap(
            session,
            services.vault,
            known=services.instruments,
            checkin_id=tap.checkin_id,
            position=tap.position,
            value=tap.value,
            telegram_user_id=query.from_user.id,
            now=services.clock(),
        )
    if outcome.result in (TapResult.CLOSED, TapResult.REFUSED):
        text = texts.NOT_YOURS if outcome.result == TapResult.REFUSED else texts.CHECKIN_CLOSED
        await query.answer(text)
        return
    await query.answer(texts.SAVED if outcome.result != TapResult.REPEATED else None)
    try:
        if outcome.step is not None:
            text, markup = views.step_message(tap.checkin_id, outcome.step)
            await query.edit_message_text(text, reply_markup=markup)
        else:
            await query.edit_message_text(texts.THANKS)
    except BadRequest as exc:
        if "message is not modified" not in str(exc):
            raise
    if outcome.alert_ids:
        services.kick()


async def stray_text(update: Update, context: RapportContext) -> None:
    message = update.effective_message
    if message is not None and message.chat.type == ChatType.PRIVATE:
        await message.reply_text(texts.USE_BUTTONS)
