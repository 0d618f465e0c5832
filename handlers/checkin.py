"""The check-in conversation: button taps, the typed comment, and the safety net."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update
from telegram.constants import ChatType

from handlers import callbacks, free_text, progress, views
from handlers.context import RapportContext, Services
from handlers.delivery import unless_unchanged
from handlers.texts import Say
from review import decide as review
from store import checkins, people
from store.checkins import TapAction, TapOutcome, TapResult
from store.models import Client

log = logging.getLogger(__name__)

ACTIONS = {
    callbacks.ANSWER: TapAction.ANSWER,
    callbacks.SKIP: TapAction.SKIP,
    callbacks.BACK: TapAction.BACK,
    callbacks.NO_COMMENT: TapAction.NO_COMMENT,
}


async def on_tap(update: Update, context: RapportContext) -> None:
    """A check-in button: parse, record, then show the next step (or the end)."""
    query = update.callback_query
    if query is None:
        return
    tap = callbacks.decode(query.data)
    services = context.services
    message = query.message
    if tap is None or message is None or message.chat.type != ChatType.PRIVATE:
        log.warning("ignored a button with unknown data or outside a private chat")
        await query.answer(services.say(None)("checkin_closed"))
        return
    if tap.action == callbacks.RENEW and tap.value == callbacks.FULL_TEXT:
        await _full_consent(query, services, tap.ref)
        return
    readings: dict[str, str] = {}
    async with context.unit_of_work(update) as session:
        if tap.action == callbacks.RENEW:
            say = services.say(await _language(session, services, query.from_user.id))
            outcome = await checkins.renew_consent(
                session,
                services.vault,
                known=services.instruments,
                checkin_id=tap.ref,
                agree=tap.value == callbacks.YES,
                version=services.texts.consent_version(say.language),
                telegram_user_id=query.from_user.id,
                now=services.clock(),
            )
        else:
            outcome = await review.tap(
                session,
                services.vault,
                known=services.instruments,
                checkin_id=tap.ref,
                action=ACTIONS[tap.action],
                position=tap.position,
                value=tap.value if tap.action == callbacks.ANSWER else None,
                telegram_user_id=query.from_user.id,
                now=services.clock(),
                detection=services.detection,
            )
            language = outcome.language
            if language is None:  # not the owner's press, or a closed check-in
                language = await _language(session, services, query.from_user.id)
            say = services.say(language)
            if outcome.scores and outcome.changed is not None:
                readings = await progress.after_checkin(
                    session, services, say, outcome.changed.client.id
                )
    if outcome.result == TapResult.REFUSED:
        await query.answer(say("not_yours"))
        return
    if outcome.result == TapResult.CLOSED:
        if tap.action == callbacks.RENEW and tap.value != callbacks.YES:
            _reraise(
                await _together(
                    query.answer(say("checkin_closed")),
                    unless_unchanged(query.edit_message_text(say("consent_skipped"))),
                )
            )
        else:
            await query.answer(say("checkin_closed"))
        return
    saved = tap.action == callbacks.ANSWER and outcome.result != TapResult.REPEATED
    thanks = services.thanks(say, outcome.scores, outcome.session_known, readings)
    failed = await _together(
        query.answer(say("saved") if saved else None), _show(query, say, tap.ref, outcome, thanks)
    )
    if outcome.alert_ids:
        services.kick()
    if outcome.risk:  # sent even if the answer or the edit failed
        await context.bot.send_message(message.chat.id, say("risk_resources"))
    _reraise(failed)


async def _full_consent(query: CallbackQuery, services: Services, checkin_id: uuid.UUID) -> None:
    """A changed consent text's full version, in place of its first screen; nothing changes
    until I agree or Not now."""
    async with services.sessions() as session:
        say = services.say(await _language(session, services, query.from_user.id))
    text, markup = views.consent_renewal(say, checkin_id, full=True)
    await query.answer()
    await unless_unchanged(query.edit_message_text(text, reply_markup=markup))


async def _together(answer: Awaitable[object], edit: Awaitable[None]) -> BaseException | None:
    """Answer the tap and edit its message at the same time: the client waits one round trip
    to Telegram for the next question, not two (docs/performance.md). Each request is made
    even if the other fails; returns the answer's error, else the edit's, for the caller to
    raise to the error handler (as when they were made one after the other)."""
    results = await asyncio.gather(answer, edit, return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    if len(errors) == 2:
        log.warning(
            "answering a tap and editing its message both failed: %s and %s",
            *(type(error).__name__ for error in errors),
        )
    return errors[0] if errors else None


def _reraise(error: BaseException | None) -> None:
    if error is not None:
        raise error


async def _language(session: AsyncSession, services: Services, telegram_user_id: int) -> str | None:
    """The language of whoever pressed, if they are a client."""
    known = await people.find_by_telegram(session, services.vault, telegram_user_id)
    return known.language if isinstance(known, Client) else None


async def _show(
    query: CallbackQuery, say: Say, checkin_id: uuid.UUID, outcome: TapOutcome, thanks: str
) -> None:
    if outcome.step is not None:
        text, markup = views.step_message(say, checkin_id, outcome.step, outcome.selected)
    elif outcome.comment_position is not None:
        text, markup = views.comment_prompt(say, checkin_id, outcome.comment_position)
    else:
        await unless_unchanged(query.edit_message_text(thanks))
        return
    await unless_unchanged(query.edit_message_text(text, reply_markup=markup))


async def on_text(update: Update, context: RapportContext) -> None:
    """Text is the comment of a check-in waiting for one. Any other text from a client is
    scanned for risk (the crisis resources at once, and an urgent alert) and not kept; the
    reply says where their check-ins stand and how to reach the practice."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    services = context.services
    now = services.clock()
    free = standing = None
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
        language = known.language if isinstance(known, Client) else None
        outcome = await review.comment(
            session,
            services.vault,
            known=services.instruments,
            telegram_user_id=user.id,
            text=message.text,
            now=now,
            detection=services.detection,
        )
        say = services.say_to(user, language)
        readings: dict[str, str] = {}
        if outcome.saved and outcome.scores and outcome.changed is not None:
            readings = await progress.after_checkin(
                session, services, say, outcome.changed.client.id
            )
        if not outcome.saved and isinstance(known, Client):
            free = await review.free_text(
                session,
                services.vault,
                client=known,
                text=message.text,
                now=now,
                detection=services.detection,
            )
            if not free.risk:
                standing = await free_text.reply(session, services, say, known, now)
    if outcome.saved:
        if outcome.message_id is not None:
            await unless_unchanged(
                context.bot.edit_message_reply_markup(
                    message.chat.id, outcome.message_id, reply_markup=None
                )
            )
        if outcome.risk:
            await message.reply_text(say("risk_resources"))
        elif outcome.truncated:
            await message.reply_text(say("comment_cut", limit=checkins.COMMENT_LIMIT))
        else:
            await message.reply_text(
                services.thanks(say, outcome.scores, outcome.session_known, readings)
            )
        if outcome.alert_ids:
            services.kick()
    elif free is not None and free.risk:
        await message.reply_text(say("free_text_risk"))
        if free.alert_ids:
            services.kick()
    elif standing is not None:
        await message.reply_text(standing)
    elif known is None:
        await message.reply_text(say("invitation_only"))
    else:
        await message.reply_text(say("therapist_help"))
