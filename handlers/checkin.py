"""Taps on check-in buttons: parse, record through the store, show the next step."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from handlers import callbacks, texts, views
from handlers.context import RapportContext
from store import checkins, people
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
            value=tap.value if tap.action == callbacks.ANSWER else None,
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
        elif outcome.result == TapResult.ASK_COMMENT:
            text, markup = views.comment_prompt(tap.checkin_id, tap.position + 1)
            await query.edit_message_text(text, reply_markup=markup)
        else:
            await query.edit_message_text(texts.THANKS)
    except BadRequest as exc:
        if "message is not modified" not in str(exc):
            raise
    if outcome.alert_ids:
        services.kick()


async def on_text(update: Update, context: RapportContext) -> None:
    """Text is the comment of a check-in waiting for one; otherwise a pointer to the buttons."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
        outcome = await checkins.record_comment(
            session,
            services.vault,
            known=services.instruments,
            telegram_user_id=user.id,
            text=message.text,
            now=services.clock(),
        )
    if outcome.saved:
        if outcome.message_id is not None:
            try:
                await context.bot.edit_message_reply_markup(
                    message.chat.id, outcome.message_id, reply_markup=None
                )
            except BadRequest:
                log.info("the check-in message could not be tidied up")
        cut = texts.COMMENT_CUT.format(limit=checkins.COMMENT_LIMIT)
        await message.reply_text(cut if outcome.truncated else texts.THANKS)
        if outcome.alert_ids:
            services.kick()
    elif known is None:
        await message.reply_text(texts.INVITATION_ONLY)
    else:
        await message.reply_text(texts.USE_BUTTONS)
