"""A client's own commands: help, privacy, pause, resume, stop, their data, and erasure."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

from telegram import ChatMember, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from handlers import callbacks, i18n, local_time, menus, progress_words, therapist_views, views
from handlers.context import RapportContext
from handlers.delivery import unless_unchanged
from handlers.texts import Say
from store import audit, clients, people
from store.clients import PAUSE_MAX_DAYS
from store.models import Client, ClientStatus, Therapist

log = logging.getLogger(__name__)

DEFAULT_PAUSE_DAYS = 14


async def client_behind(
    update: Update, context: RapportContext, therapist_reply: str | None = None
) -> tuple[Client, Say] | None:
    """The client behind this update and their language; None (after a reply) for others."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.chat.type != ChatType.PRIVATE:
        return None
    services = context.services
    async with services.sessions() as session:
        known = await people.find_by_telegram(session, services.vault, user.id)
    if isinstance(known, Client):
        return known, services.say(known.language)
    say = services.say_to(user)
    if isinstance(known, Therapist) and known.active:
        await message.reply_text(
            say("clients_only") if therapist_reply is None else therapist_reply
        )
    else:
        await message.reply_text(say("clients_only" if known else "invitation_only"))
    return None


async def help_command(update: Update, context: RapportContext) -> None:
    found = await client_behind(update, context, therapist_reply=therapist_views.help_text())
    if found and update.effective_message:
        text = progress_words.help_text(found[1], context.services.client_progress)
        await update.effective_message.reply_text(text)


async def privacy(update: Update, context: RapportContext) -> None:
    found = await client_behind(update, context)
    if found and update.effective_message:
        await update.effective_message.reply_text(privacy_text(found[1]))


def privacy_text(say: Say) -> str:
    """The full consent text, without its closing question (nothing to answer here)."""
    text = say("consent_full")
    body, _, last = text.rpartition("\n\n")
    return body if body and last.rstrip().endswith("?") else text


async def pause(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    say = found[1]
    days = DEFAULT_PAUSE_DAYS
    if context.args:
        try:
            days = int(context.args[0])
        except ValueError:
            days = 0
        if not 1 <= days <= PAUSE_MAX_DAYS:
            await message.reply_text(say("pause_usage", max=PAUSE_MAX_DAYS))
            return
    services = context.services
    now = services.clock()
    until = now + timedelta(days=days)
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, found[0].id)
        paused = client is not None and await clients.pause(
            session, services.vault, client, until, now
        )
    if not paused:
        await message.reply_text(say(_unchanged(client, "pause")))
        return
    until_said = local_time.day_time(until, found[0].timezone, now, say.language)
    await message.reply_text(say("paused", days=days, until=until_said))
    services.kick()


def _unchanged(client: Client | None, command: str) -> str:
    """What to tell a client whose /pause or /resume their status does not allow."""
    status = client.status if client is not None else None
    if status == ClientStatus.STOPPED:
        return "stopped_no_change"  # they withdrew: only their therapist restarts them
    if command == "resume" and status == ClientStatus.ACTIVE:
        return "not_paused"
    return "something_wrong"  # e.g. a blocked-bot status not yet cleared: try again


async def resume(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, found[0].id)
        resumed = client is not None and await clients.resume(
            session, services.vault, client, services.clock()
        )
    if not resumed:
        await message.reply_text(found[1](_unchanged(client, "resume")))
        return
    await message.reply_text(found[1]("resumed"))
    services.kick()


async def stop(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, found[0].id)
        if client is not None:
            await clients.stop(session, services.vault, client, services.clock())
    await message.reply_text(found[1]("stopped"))
    services.kick()


async def mydata(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, found[0].id)
        if client is None:
            return
        data = await clients.export(session, services.vault, client)
        clients.record_export(session, client, actor_kind="client")
    payload = io.BytesIO(json.dumps(data, indent=2, ensure_ascii=False).encode())
    await message.reply_document(
        payload, filename="rapport-my-data.json", caption=found[1]("mydata_caption")
    )


async def delete(update: Update, context: RapportContext) -> None:
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    text, markup = views.erase_confirmation(found[1], found[0].id)
    await message.reply_text(text, reply_markup=markup)


async def on_erase(update: Update, context: RapportContext) -> None:
    """The answer to /delete's confirmation; only the client it names may press it."""
    query = update.callback_query
    tap = callbacks.decode(query.data if query else None)
    if query is None or tap is None:
        return
    services = context.services
    erased = False
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, tap.ref)
        owner = client is not None and client.telegram_hash == services.vault.telegram_hash(
            query.from_user.id
        )
        say = services.say(client.language if client is not None and owner else None)
        if client is not None and not owner:
            audit.record(
                session,
                actor_kind="telegram",
                action="client.erase",
                target_kind="client",
                target_id=client.id,
                outcome="refused",
                detail="not the owner",
            )
        if client is not None and owner and tap.value == callbacks.YES:
            await clients.erase(
                session,
                services.vault,
                client,
                services.clock(),
                actor_kind="client",
                actor_id=client.id,
            )
            erased = True
    await query.answer()
    if erased:
        log.info("a client erased their data")
        await query.edit_message_text(say("deleted"))
        services.kick()
    elif client is not None and owner:
        await query.edit_message_text(say("delete_cancelled"))
    else:
        await query.edit_message_text(say("checkin_closed"))


async def on_membership(update: Update, context: RapportContext) -> None:
    """Telegram says a client blocked or unblocked the bot: keep their status in step."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    services = context.services
    blocked = change.new_chat_member.status == ChatMember.BANNED
    async with context.unit_of_work(update) as session:
        known = await people.find_by_telegram(session, services.vault, change.from_user.id)
        if not isinstance(known, Client):
            return
        if blocked:
            await clients.mark_unreachable(session, services.vault, known, services.clock())
        else:
            await clients.mark_reachable(session, services.vault, known, services.clock())
    log.info("a client %s the bot", "blocked" if blocked else "unblocked")
    services.kick()


async def language(update: Update, context: RapportContext) -> None:
    """/language: a button per language Rapport has, the client's own marked."""
    found, message = await client_behind(update, context), update.effective_message
    if found is None or message is None:
        return
    text, markup = views.language_choice(found[1], found[0].id, context.services.texts.languages)
    await message.reply_text(text, reply_markup=markup)


async def on_language(update: Update, context: RapportContext) -> None:
    """A language button: only the client it names may press it. The choice is stored in
    their record (every later text, check-in and date uses it) and confirmed in the new
    language, and their chat's command menu follows it."""
    query = update.callback_query
    tap = callbacks.decode(query.data if query else None)
    if query is None or tap is None or query.message is None:
        return
    services = context.services
    choices = services.texts.languages
    chosen = views.chosen_language(tap, choices)
    changed = None
    async with context.unit_of_work(update) as session:
        client = await session.get(Client, tap.ref)
        owner = client is not None and client.telegram_hash == services.vault.telegram_hash(
            query.from_user.id
        )
        if client is not None and owner and chosen is not None:
            before, client.language = client.language, chosen
            changed = chosen
            audit.record(
                session,
                actor_kind="client",
                actor_id=client.id,
                action="client.language",
                target_kind="client",
                target_id=client.id,
                detail=f"{before} -> {chosen}",
            )
        say = services.say(client.language if client is not None and owner else None)
    if changed is None:  # someone else's button, or one from before the languages changed
        await query.answer(say("checkin_closed" if owner else "not_yours"))
        return
    await query.answer()
    name = i18n.display_name(changed, capitalise=False)
    await unless_unchanged(query.edit_message_text(say("language_set", name=name)))
    try:
        await menus.set_chat_menu(
            context.bot, services.texts, query.message.chat.id, changed, services.client_progress
        )
    except TelegramError as exc:
        log.warning("could not set a client's command menu: %s", type(exc).__name__)
