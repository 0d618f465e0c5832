"""A therapist's buttons on alerts: Acknowledge, Snooze 1 day, History. Every press is checked
against the alert's or client's therapist; anything else is refused and audited."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType

from handlers import callbacks, charts, views
from handlers.context import RapportContext
from store import alerts, audit, clients, history, people
from store.alerts import AlertAction
from store.models import Client, Therapist

log = logging.getLogger(__name__)

REFUSED = "This is not one of your clients."
ACTIONS = {callbacks.ACKNOWLEDGE: AlertAction.ACKNOWLEDGE, callbacks.SNOOZE: AlertAction.SNOOZE}


async def on_alert_button(update: Update, context: RapportContext) -> None:
    query = update.callback_query
    tap = callbacks.decode(query.data if query else None)
    if query is None or tap is None or tap.action not in ACTIONS:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        therapist = await people.find_by_telegram(session, services.vault, query.from_user.id)
        acted = None
        if not isinstance(therapist, Therapist):
            audit.record(
                session,
                actor_kind="telegram",
                action=f"alert.{ACTIONS[tap.action]}",
                target_kind="client",
                target_id=tap.ref,
                outcome="refused",
            )
        else:
            acted = await alerts.act(
                session,
                client_id=tap.ref,
                therapist=therapist,
                action=ACTIONS[tap.action],
                now=services.clock(),
            )
    if acted is None:
        log.warning("refused an alert button from someone else")
        await query.answer(REFUSED)
        return
    done = "Acknowledged" if tap.action == callbacks.ACKNOWLEDGE else "Snoozed until tomorrow"
    await query.answer(done)
    await query.edit_message_reply_markup(reply_markup=None)
    if query.message is not None:
        await context.bot.send_message(query.message.chat.id, f"{done}.")


async def on_history(update: Update, context: RapportContext) -> None:
    query = update.callback_query
    tap = callbacks.decode(query.data if query else None)
    if query is None or tap is None or query.message is None:
        return
    services = context.services
    async with context.unit_of_work(update) as session:
        therapist = await people.find_by_telegram(session, services.vault, query.from_user.id)
        client = await session.get(Client, tap.ref)
        allowed = (
            isinstance(therapist, Therapist)
            and client is not None
            and (client.therapist_id == therapist.id or therapist.is_admin)
        )
        audit.record(
            session,
            actor_kind="therapist" if isinstance(therapist, Therapist) else "telegram",
            actor_id=therapist.id if isinstance(therapist, Therapist) else None,
            action="history.read",
            target_kind="client",
            target_id=tap.ref,
            outcome="ok" if allowed else "refused",
        )
        if allowed and client is not None:
            label = await clients.label(session, services.vault, client)
            trend = await history.trend(
                session,
                services.vault,
                client.id,
                services.instruments,
                services.detection.settings,
            )
    if not allowed:
        log.warning("refused a history request for someone else's client")
        await query.answer(REFUSED)
        return
    await query.answer()
    chat = query.message.chat.id
    if query.message.chat.type != ChatType.PRIVATE:
        return
    caption = views.history_caption(label, trend)
    if trend.points:
        await context.bot.send_photo(chat, await charts.render_async(trend), caption=caption)
    else:
        await context.bot.send_message(chat, caption)
