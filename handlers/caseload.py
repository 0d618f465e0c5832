"""A therapist looks at their clients: /clients, /alerts, /history, the alert buttons and the
client list's buttons."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from handlers import alert_words, callbacks, planning, views
from handlers import therapist_views as tviews
from handlers.i18n import _, ngettext
from handlers.therapist import Ask, Reply, button, command, pick
from store import alerts, caseload, clients, history, people
from store.alerts import AlertAction
from store.models import Client, Therapist

ALERT_ACTIONS = {
    callbacks.ACKNOWLEDGE: AlertAction.ACKNOWLEDGE,
    callbacks.SNOOZE: AlertAction.SNOOZE,
}
ALERTS_SHOWN = 10


async def clients_command(ask: Ask) -> Reply:
    s = ask.services
    rows = await caseload.overview(
        ask.session,
        s.vault,
        ask.therapist.id,
        s.instruments,
        s.detection.settings,
        ask.now,
    )
    ask.audit("clients.read", detail=f"{len(rows)} clients")
    text, markup = tviews.caseload(rows, s.timezone, show_scores=_scores_shown(ask))
    return Reply(text, markup)


async def open_alerts(ask: Ask) -> Reply:
    s = ask.services
    chat = await people.chat_id(ask.session, s.vault, ask.therapist) or 0
    live = await alerts.live_for(ask.session, s.vault, ask.therapist, chat)
    if not live:
        return Reply(_("No open alerts."))
    by_client: dict[uuid.UUID, list[alerts.PendingAlert]] = {}
    for alert in live:
        by_client.setdefault(alert.client_id, []).append(alert)
    groups = list(by_client.values())
    ask.audit("alerts.read", detail=f"{len(live)} alerts")
    messages = [Reply(*views.alert_message(group, s.alert_detail)) for group in groups]
    head = ngettext(
        "{n} open alert about {clients}:",
        "{n} open alerts about {clients}:",
        len(live),
        clients=ngettext("{n} client", "{n} clients", len(groups)),
    )
    if len(groups) > ALERTS_SHOWN:
        head += " " + _(
            "the oldest {shown} follow; acknowledge them to see the rest.", shown=ALERTS_SHOWN
        )
    return Reply(head, more=messages[:ALERTS_SHOWN])


def _scores_shown(ask: Ask) -> bool:
    """Whether the practice lets scores pass through Telegram (`[alerts] detail`)."""
    return alert_words.shows_scores(ask.services.alert_detail)


async def history_of(ask: Ask, client: Client, page: int, *, chart: bool) -> Reply:
    """A page of the client's check-ins (the chart too on a first look). Audited as a read.

    The practice's detail level holds here as in the alerts: comments only with `full`;
    with `minimal` no scores, comments or chart at all, only where to look instead."""
    s = ask.services
    label = await clients.label(ask.session, s.vault, client)
    if not _scores_shown(ask):
        ask.audit("history.read", client, detail="withheld")
        return Reply(tviews.history_withheld(label))
    records = await history.client_history(
        ask.session, s.vault, client.id, limit=tviews.PAGE_SIZE + 1, skip=page * tviews.PAGE_SIZE
    )
    older = len(records) > tviews.PAGE_SIZE
    records = records[-tviews.PAGE_SIZE :]
    ask.audit("history.read", client, detail=f"page {page}")
    text, markup = tviews.history_page(
        label,
        client.id,
        records,
        page,
        older,
        s.instruments,
        s.timezone,
        show_comments=alert_words.shows_comments(s.alert_detail),
    )
    trend = None
    if chart:
        trend = await history.trend(
            ask.session, s.vault, client.id, s.instruments, s.detection.settings
        )
    caption = tviews.chart_caption(label, trend) if trend else ""
    return Reply(text, markup, chart=trend, chart_caption=caption)


async def history_command(ask: Ask) -> Reply:
    if not ask.args:
        return await pick(ask, "history")
    client, rest = await caseload.find_by_label(
        ask.session, ask.services.vault, ask.therapist, ask.args, "history.read"
    )
    if client is None or rest:
        return Reply(tviews.not_found(ask.text, "history"))
    return await history_of(ask, client, 0, chart=True)


async def history_button(ask: Ask) -> Reply | None:
    """History from an alert (page 0: with the chart) or a page turn (edits the page)."""
    assert ask.tap is not None
    client = await caseload.owned(
        ask.session, ask.therapist, ask.tap.ref, "history.read", admin_may=True
    )
    if client is None:
        return None
    turning = ask.tap.value == tviews.TURN_PAGE
    reply = await history_of(ask, client, ask.tap.position, chart=not turning)
    reply.edit = turning
    return reply


async def alert_button(ask: Ask) -> Reply | None:
    assert ask.tap is not None
    action = ALERT_ACTIONS[ask.tap.action]
    client = await caseload.owned(
        ask.session, ask.therapist, ask.tap.ref, f"alert.{action}", admin_may=True
    )
    if client is None:
        return None
    await alerts.act(
        ask.session, client_id=client.id, therapist=ask.therapist, action=action, now=ask.now
    )
    done = _("Acknowledged") if action == AlertAction.ACKNOWLEDGE else _("Snoozed until tomorrow")
    return Reply(f"{done}.", toast=done, drop_buttons=True)


async def why_button(ask: Ask) -> Reply | None:
    """The technical reason behind a client's live alerts (the alert's "Why?" button), at the
    practice's detail level. The same access check as the other alert buttons."""
    assert ask.tap is not None
    client = await caseload.owned(
        ask.session, ask.therapist, ask.tap.ref, "alert.why", admin_may=True
    )
    if client is None:
        return None
    s = ask.services
    owner = await ask.session.get(Therapist, client.therapist_id)
    live = []
    if owner is not None:  # an admin receives alerts for a therapist who cannot be reached
        live = [
            alert
            for alert in await alerts.live_for(ask.session, s.vault, owner, 0)
            if alert.client_id == client.id
        ]
    ask.audit("alert.why", client, detail=f"{len(live)} alerts")
    if not live:
        label = await clients.label(ask.session, s.vault, client)
        return Reply(_("{label} has no open alerts now.", label=label), toast=_("No open alerts"))
    return Reply(alert_words.why_text(live, s.alert_detail))


async def _session_now(ask: Ask, client: Client) -> Reply:
    return await planning.session_for(ask, client, "")


async def _history_first_page(ask: Ask, client: Client) -> Reply:
    return await history_of(ask, client, 0, chart=True)


# What a client picked from a list leads to: the audited action, and the work.
PICKS: dict[str, tuple[str, Callable[[Ask, Client], Awaitable[Reply]]]] = {
    "history": ("history.read", _history_first_page),
    "schedule": ("schedule.read", planning.schedule_of),
    "session": ("session.add", _session_now),
}


async def picked(ask: Ask) -> Reply | None:
    """A client chosen from a button list: run the command for them."""
    assert ask.tap is not None
    command_name = tviews.COMMAND_OF_PICK.get(ask.tap.position)
    if command_name is None:
        return Reply(toast=_(tviews.OUT_OF_DATE))
    action, work = PICKS[command_name]
    client = await caseload.owned(ask.session, ask.therapist, ask.tap.ref, action)
    return None if client is None else await work(ask, client)


HANDLERS = {
    "clients": command(clients_command),
    "alerts": command(open_alerts),
    "history": command(history_command),
}
BUTTONS = {
    callbacks.HISTORY: button("history.read", history_button),
    callbacks.PICK: button("client.pick", picked),
    callbacks.ACKNOWLEDGE: button("alert.acknowledge", alert_button),
    callbacks.SNOOZE: button("alert.snooze", alert_button),
    callbacks.WHY: button("alert.why", why_button),
}
