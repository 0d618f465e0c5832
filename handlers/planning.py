"""A therapist changes things: /invite, /session, /schedule (template and pause buttons) and
/digest."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import callbacks, local_time
from handlers import therapist_views as views
from handlers.context import Services
from handlers.i18n import _, staff_when
from handlers.therapist import Ask, Reply, button, command, pick
from schedules import manage
from schedules.rules import WEEKDAYS, Template
from store import caseload, clients, digests, people
from store.digests import DigestTime
from store.models import Client, ClientStatus


def _templates(ask: Ask) -> list[Template]:
    return [ask.services.templates[name] for name in sorted(ask.services.templates)]


async def _client_named(ask: Ask, action: str) -> tuple[Client | None, list[str]]:
    return await caseload.find_by_label(
        ask.session, ask.services.vault, ask.therapist, ask.args, action
    )


# --- /invite --------------------------------------------------------------------------------


async def invite(ask: Ask) -> Reply:
    s = ask.services
    taken = await caseload.labelled(ask.session, s.vault, ask.therapist.id)
    label = " ".join(ask.args)[: people.LABEL_LIMIT] or _("Client {number}", number=len(taken) + 1)
    if any(caseload.same_label(label, text) for _id, text in taken):
        return Reply(
            _("You already have a client called {label}; choose another label.", label=repr(label))
        )
    client, issued = await manage.invite(
        ask.session,
        s.vault,
        therapist_id=ask.therapist.id,
        label=label,
        timezone=s.timezone,
        template=s.templates.get(s.default_template or ""),
        now=ask.now,
        invite_ttl=s.invite_ttl,
        actor_kind="therapist",
        actor_id=ask.therapist.id,
    )
    link = (
        people.invite_link(s.bot_username, issued.token)
        if s.bot_username
        else f"/start {issued.token}"
    )
    return Reply(
        *views.invite_message(
            label,
            client.id,
            link,
            issued.expires_at,
            s.timezone,
            _templates(ask),
            client.schedule_template,
        )
    )


# --- /schedule and its buttons --------------------------------------------------------------


async def schedule(ask: Ask) -> Reply:
    if not ask.args:
        return await pick(ask, "schedule")
    client, rest = await _client_named(ask, "schedule.read")
    if client is None or rest:
        return Reply(views.not_found(ask.text, "schedule"))
    return await schedule_of(ask, client)


async def schedule_of(ask: Ask, client: Client) -> Reply:
    s = ask.services
    plan = await manage.upcoming(ask.session, client, s.quiet, ask.now)
    ask.audit("schedule.read", client)
    label = await clients.label(ask.session, s.vault, client)
    return Reply(
        *views.schedule_message(
            label, client.id, client.status, client.paused_until, plan, _templates(ask)
        )
    )


async def choose_template(ask: Ask) -> Reply | None:
    assert ask.tap is not None
    client = await caseload.owned(ask.session, ask.therapist, ask.tap.ref, "schedule.set")
    if client is None:
        return None
    templates = _templates(ask)
    index = ask.tap.position
    if index >= len(templates) or views.template_check(templates[index].name) != ask.tap.value:
        return Reply(toast=_(views.OUT_OF_DATE))
    template = templates[index]
    await manage.apply_template(
        ask.session, client, template, ask.now, actor_kind="therapist", actor_id=ask.therapist.id
    )
    reply = await schedule_of(ask, client)
    reply.edit, reply.toast = True, _("Now: {template}", template=template.name)
    return reply


async def change_pause(
    session: AsyncSession,
    services: Services,
    client: Client,
    therapist_id: uuid.UUID,
    days: int,
    now: datetime,
    *,
    restart: bool = False,
) -> str | None:
    """Pause a client's check-ins for `days` (one of PAUSE_CHOICES), resume them (0), or
    restart a client who stopped (`restart`): the words the client is told, or None when the
    client's state does not allow it (not active, not paused, not stopped: nothing changed).
    The one way /schedule's buttons and the web dashboard do it."""
    say = services.say(client.language)
    if restart:  # the client stopped and asked their therapist to start again
        if days != 0 or not await clients.restart(session, client, now, therapist_id):
            return None
        return say("resumed_by_therapist")
    if days == 0:
        if not await clients.resume(session, services.vault, client, now, therapist_id):
            return None
        return say("resumed_by_therapist")
    if days not in views.PAUSE_CHOICES or client.status != ClientStatus.ACTIVE:
        return None
    until = now + timedelta(days=days)
    await clients.pause(session, services.vault, client, until, now, therapist_id)
    until_said = local_time.day_time(until, client.timezone, now, say.language)
    return say("paused_by_therapist", until=until_said)


async def pause_or_resume(ask: Ask) -> Reply | None:
    assert ask.tap is not None
    s = ask.services
    client = await caseload.owned(ask.session, ask.therapist, ask.tap.ref, "client.pause")
    if client is None:
        return None
    days = ask.tap.value
    chat = await people.chat_id(ask.session, s.vault, client)
    restart = ask.tap.position == views.RESTART
    told = await change_pause(
        ask.session, s, client, ask.therapist.id, days, ask.now, restart=restart
    )
    if told is None:
        return Reply(toast=_(views.OUT_OF_DATE))
    reply = await schedule_of(ask, client)
    reply.edit = True
    reply.toast = _("Paused") if days else _("Resumed")
    reply.kick = True
    if chat is not None:
        reply.to_client = (chat, told)
    return reply


# --- /session -------------------------------------------------------------------------------


async def session(ask: Ask) -> Reply:
    if not ask.args:
        return await pick(ask, "session")
    client, rest = await _client_named(ask, "session.add")
    if client is None:
        return Reply(views.not_found(ask.text, "session"))
    return await session_for(ask, client, " ".join(rest))


async def session_for(ask: Ask, client: Client, when: str) -> Reply:
    """Log a session at `when` (now if empty) in the client's time zone."""
    try:
        at = await manage.log_session(
            ask.session, client, when, ask.now, actor_kind="therapist", actor_id=ask.therapist.id
        )
    except ValueError as exc:
        return Reply(_("That time did not work: {problem}.", problem=exc))
    label = await clients.label(ask.session, ask.services.vault, client)
    local = at.astimezone(ZoneInfo(client.timezone))
    return Reply(
        _(
            "Session with {label} logged for {when} ({zone}). Check-ins that follow sessions "
            "are planned from it.",
            label=label,
            when=staff_when(local, "EEE dd MMM HH:mm", ("MMMEd", "Hm")),
            zone=client.timezone,
        ),
        kick=True,
    )


# --- /digest --------------------------------------------------------------------------------


def parse_digest(words: list[str]) -> DigestTime | None:
    """'on [weekday] [HH:MM]' (Monday 08:00 unless given) or 'off'; ValueError otherwise."""
    if not words or words[0].lower() not in ("on", "off"):
        raise ValueError(_("use /digest on [weekday] [HH:MM] or /digest off"))
    if words[0].lower() == "off":
        return None
    weekday, at = 0, time(8, 0)
    for word in (w.lower() for w in words[1:]):
        day = [i for i, name in enumerate(WEEKDAYS) if len(word) >= 3 and name.startswith(word)]
        if day:
            weekday = day[0]
            continue
        try:
            at = time.fromisoformat(word if len(word) == 5 else f"0{word}")
        except ValueError:
            raise ValueError(
                _("{word} is neither a weekday nor a time such as 08:00", word=repr(word))
            ) from None
    return DigestTime(weekday, at)


async def digest(ask: Ask) -> Reply:
    zone = ask.services.timezone
    if not ask.args:
        return Reply(views.digest_status(digests.current(ask.therapist), zone))
    try:
        when = parse_digest(ask.args)
    except ValueError as exc:
        return Reply(f"{exc}.")
    digests.choose(ask.therapist, when)
    ask.audit("digest.set", detail="on" if when else "off")
    return Reply(views.digest_status(when, zone))


HANDLERS = {
    "invite": command(invite),
    "schedule": command(schedule),
    "session": command(session),
    "digest": command(digest),
}
BUTTONS = {
    callbacks.TEMPLATE: button("schedule.set", choose_template),
    callbacks.PAUSE: button("client.pause", pause_or_resume),
}
