"""A therapist's Telegram: commands and buttons about their own clients.

Every command and button runs through `command` or `button`: they find the therapist behind
the update inside the update's one transaction, hand the work what it needs (`Ask`), and send
the `Reply` after the commit. Clients reached by a therapist always come from
`store.caseload.owned` or `find_by_label`, which refuse (and audit) anyone else's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Bot,
    BotCommandScopeChat,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError

from handlers import callbacks
from handlers import therapist_views as views
from handlers.charts import Charts
from handlers.context import RapportContext, Services
from handlers.delivery import unless_unchanged
from handlers.i18n import _
from store import audit, caseload, people
from store.history import Trend
from store.models import Client, Therapist

log = logging.getLogger(__name__)

Handler = Callable[[Update, RapportContext], Coroutine[Any, Any, None]]


@dataclass
class Ask:
    """What a therapist's command or button hands its work."""

    session: AsyncSession
    therapist: Therapist
    services: Services
    now: datetime
    args: list[str] = field(default_factory=list)
    tap: callbacks.Tap | None = None

    @property
    def text(self) -> str:
        return " ".join(self.args)

    def audit(self, action: str, client: Client | None = None, detail: str | None = None) -> None:
        """An audit row for what the therapist did to a client (or to their own settings)."""
        audit.record(
            self.session,
            actor_kind="therapist",
            actor_id=self.therapist.id,
            action=action,
            target_kind="client" if client else "therapist",
            target_id=client.id if client else self.therapist.id,
            detail=detail,
        )


@dataclass
class Reply:
    """What to show once the transaction has committed."""

    text: str = ""
    markup: InlineKeyboardMarkup | None = None
    chart: Trend | None = None  # sent first, as a picture
    chart_caption: str = ""
    more: list[Reply] = field(default_factory=list)  # further messages, in order
    to_client: tuple[int, str] | None = None  # (chat, text): the client is told too
    edit: bool = False  # a button: replace the pressed message's text and buttons
    drop_buttons: bool = False  # a button: remove the pressed message's buttons
    toast: str | None = None  # a button: the short answer on the button itself
    kick: bool = False  # the schedule changed: the dispatcher should look now, after commit
    no_preview: bool = False  # the text holds a link Telegram must not fetch for a preview


Work = Callable[[Ask], Awaitable[Reply | None]]


def command(work: Work) -> Handler:
    """A therapist's command in their private chat; anyone else gets a plain refusal."""

    async def handle(update: Update, context: RapportContext) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.chat.type != ChatType.PRIVATE:
            return
        services = context.services
        reply = None
        async with context.unit_of_work(update) as session:
            known = await people.find_by_telegram(session, services.vault, user.id)
            therapist = _active_therapist(known)
            if therapist is not None:
                args = list(context.args or [])
                reply = await work(Ask(session, therapist, services, services.clock(), args))
        if reply is not None and reply.kick:
            services.kick()
        if reply is None:
            say = services.say_to(user)
            await message.reply_text(_(views.THERAPISTS_ONLY) if known else say("invitation_only"))
            if therapist is None:
                await _drop_menu(context.bot, message.chat.id)
            return
        await _send(context.bot, services.charts, message.chat.id, reply)

    return handle


def button(action: str, work: Work) -> Handler:
    """A therapist's button. Data that does not decode, a presser who is not an active
    therapist, or work that returns None (not their client) gets "not one of your clients"
    and changes nothing; the refusal is audited as `action`."""

    async def handle(update: Update, context: RapportContext) -> None:
        query = update.callback_query
        if query is None:
            return
        tap = callbacks.decode(query.data)
        if tap is None:
            await query.answer(_(views.REFUSED))
            return
        services = context.services
        reply = None
        async with context.unit_of_work(update) as session:
            known = await people.find_by_telegram(session, services.vault, query.from_user.id)
            therapist = _active_therapist(known)
            if therapist is not None:
                reply = await work(Ask(session, therapist, services, services.clock(), tap=tap))
            else:
                caseload.refuse(session, None, action, tap.ref)
        if reply is not None and reply.kick:
            services.kick()
        if reply is None:
            log.warning("refused a therapist button (%s)", action)
            await query.answer(_(views.REFUSED))
            return
        await query.answer(reply.toast)
        message = query.message
        if not isinstance(message, Message):  # too old or deleted: the change is made anyway
            await _tell_client(context.bot, reply)
            return
        if reply.edit:
            await unless_unchanged(message.edit_text(reply.text, reply_markup=reply.markup))
            await _tell_client(context.bot, reply)
            return
        if reply.drop_buttons:
            await drop_buttons(context.bot, message.chat.id, [message.message_id])
        await _send(context.bot, services.charts, message.chat.id, reply)

    return handle


async def drop_buttons(bot: Bot, chat_id: int, message_ids: Iterable[int | None]) -> None:
    """Remove the buttons of these messages (an alert that was acknowledged or snoozed).

    A message that is gone, or too old to edit, is left as it is: the change it would echo
    is already made."""
    for message_id in sorted({m for m in message_ids if m is not None}):
        try:
            await unless_unchanged(
                bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
            )
        except TelegramError as exc:
            log.warning("could not remove an alert message's buttons: %s", type(exc).__name__)


def _active_therapist(known: Therapist | Client | None) -> Therapist | None:
    return known if isinstance(known, Therapist) and known.active else None


async def _send(bot: Bot, charts: Charts, chat_id: int, reply: Reply) -> None:
    picture = await charts.render(reply.chart) if reply.chart and reply.chart.points else None
    if picture is not None:
        await bot.send_photo(chat_id, picture, caption=reply.chart_caption or None)
    if reply.text:
        *first, last = views.split_message(reply.text)
        for piece in first:
            await bot.send_message(chat_id, piece)
        preview = LinkPreviewOptions(is_disabled=True) if reply.no_preview else None
        await bot.send_message(
            chat_id, last, reply_markup=reply.markup, link_preview_options=preview
        )
    for more in reply.more:
        await _send(bot, charts, chat_id, more)
    await _tell_client(bot, reply)


async def _tell_client(bot: Bot, reply: Reply) -> None:
    if reply.to_client is None:
        return
    try:
        await bot.send_message(*reply.to_client)
    except TelegramError as exc:
        log.warning(
            "could not tell a client about their therapist's change: %s", type(exc).__name__
        )


async def _drop_menu(bot: Bot, chat_id: int) -> None:
    """A therapist command from someone who is not (or no longer) an active therapist: a
    menu left from their time as one goes now, not at the bot's next start."""
    try:
        await register_commands(bot, chat_id, active=False)
    except TelegramError as exc:
        log.warning("could not remove a command menu: %s", type(exc).__name__)


async def register_commands(bot: Bot, chat_id: int, active: bool = True) -> None:
    """Show the therapist commands in this therapist's menu only (clients see their own)."""
    scope = BotCommandScopeChat(chat_id)
    if active:
        await bot.set_my_commands(views.therapist_commands(), scope=scope)
    else:
        await bot.delete_my_commands(scope=scope)


async def pick(ask: Ask, command_name: str) -> Reply:
    """The therapist's clients as buttons that run `command_name` for the one tapped."""
    pairs = [
        (client.id, label)
        for client, label in await caseload.labelled(
            ask.session, ask.services.vault, ask.therapist.id
        )
    ]
    return Reply(*views.choose_client(pairs, command_name))
