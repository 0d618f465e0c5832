"""How a therapist's commands look in Telegram: the caseload, history pages, a schedule, an
invite, the weekly digest. Therapist-facing words go through the message catalogs in the
practice's language (`_()`, `ngettext()`; English is shipped, handlers/i18n.py); clients' words
are keyed texts in the client's language (handlers/texts.py)."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import BotCommand, InlineKeyboardMarkup
from telegram import InlineKeyboardButton as Button

from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument
from handlers import callbacks
from handlers.alert_words import ELSEWHERE
from handlers.i18n import N_, _, ngettext, staff_when
from handlers.views import button
from schedules.manage import Upcoming
from schedules.rules import WEEKDAYS, AfterSession, EveryNDays, Rule, Template, Weekly
from store.caseload import ClientRow
from store.digests import DigestTime
from store.history import Trend

# The therapists' menu; descriptions in English here, in the practice's language when sent.
THERAPIST_COMMANDS = [
    BotCommand("clients", N_("Your clients: status, last scores, open alerts")),
    BotCommand("alerts", N_("Open alerts, to acknowledge or snooze")),
    BotCommand("history", N_("A client's trend and check-ins, e.g. /history Kim")),
    BotCommand("session", N_("Log a session, e.g. /session Kim yesterday 15:00")),
    BotCommand("schedule", N_("A client's schedule: change it or pause it")),
    BotCommand("invite", N_("A new client's invite link, e.g. /invite Kim")),
    BotCommand("digest", N_("A weekly summary: /digest on monday 08:00, /digest off")),
    BotCommand("web", N_("A one-time link to the web dashboard")),
    BotCommand("help", N_("What you can do here")),
]


def therapist_commands() -> list[BotCommand]:
    """The therapists' menu in the practice's language."""
    return [BotCommand(c.command, _(c.description)) for c in THERAPIST_COMMANDS]


def help_text() -> str:
    return "\n".join(
        [
            _("Rapport tells you here when a client's check-ins suggest a possible rupture."),
            "",
            *[f"/{c.command} - {c.description}" for c in therapist_commands()],
            "",
            _(
                "Choose a client by their label (or its start), or leave it out for a list of "
                "buttons."
            ),
        ]
    )


# Sent as `_(REFUSED)` and so on: in the practice's language.
REFUSED = N_("This is not one of your clients.")
THERAPISTS_ONLY = N_("That command is for therapists.")
OUT_OF_DATE = N_("This button is out of date; send the command again.")
# A client's and a check-in's status as a therapist reads it (`status_word`).
STATUS_WORDS = {
    "invited": N_("invited"),
    "active": N_("active"),
    "paused": N_("paused"),
    "stopped": N_("stopped"),
    "unreachable": N_("unreachable"),
    "completed": N_("completed"),
    "missed": N_("missed"),
    "abandoned": N_("abandoned"),
    "expired": N_("expired"),
}


def status_word(status: str) -> str:
    """A status in the practice's language; one Rapport does not know as it is."""
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status


PAGE_SIZE = 8
TURN_PAGE = 1  # a history button's value when it turns the page in place
PAUSE_CHOICES = (7, 14, 28)
RESTART = 1  # the pause button's position that restarts a stopped client
COMMAND_OF_PICK = {0: "history", 1: "schedule", 2: "session"}
PICK_OF_COMMAND = {name: position for position, name in COMMAND_OF_PICK.items()}
BUTTON_LIST_LIMIT = 40

Message = tuple[str, InlineKeyboardMarkup | None]
MESSAGE_LIMIT = 4096  # Telegram's, for one text message


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Text in pieces Telegram accepts, cut between lines (a long caseload, a long digest)."""
    pieces: list[str] = []
    current: list[str] = []
    size = -1
    for line in text.split("\n"):
        for part in [line[i : i + limit] for i in range(0, len(line), limit)] or [""]:
            if current and size + 1 + len(part) > limit:
                pieces.append("\n".join(current))
                current, size = [], -1
            current.append(part)
            size += 1 + len(part)
    pieces.append("\n".join(current))
    return pieces


def _day(at: datetime | None, zone: str) -> str:
    return (
        "-" if at is None else staff_when(at.astimezone(ZoneInfo(zone)), "EEE dd MMM", ("MMMEd",))
    )


def _day_time(at: datetime) -> str:
    """'Tue 08 Dec 18:00' in the practice's language."""
    return staff_when(at, "EEE dd MMM HH:mm", ("MMMEd", "Hm"))


def _score(value: float | None, maximum: float | None = None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:g}/{maximum:g}" if maximum else f"{value:g}{unit}"


def _alliance(row: ClientRow) -> str:
    """The latest alliance total, with the way it moved since the one before."""
    shown = _score(row.alliance, row.alliance_max)
    if row.alliance is None or row.alliance_before is None:
        return shown
    if row.alliance == row.alliance_before:
        return _("{shown} (steady)", shown=shown)
    arrow = "↑" if row.alliance > row.alliance_before else "↓"
    return _(
        "{shown} ({arrow} from {before})",
        shown=shown,
        arrow=arrow,
        before=format(row.alliance_before, "g"),
    )


def caseload(rows: Sequence[ClientRow], zone: str, show_scores: bool = True) -> Message:
    """The client list; without `show_scores` (the practice's `minimal` detail) it shows no
    alliance or wellbeing score."""
    if not rows:
        return _(NO_CLIENTS), None
    lines = [_("Your clients ({count}); completion is over the last 4 weeks.", count=len(rows))]
    for row in rows:
        done = (
            _(
                "{share} done ({completed}/{closed})",
                share=format(row.completion, ".0%"),
                completed=row.completed,
                closed=row.closed,
            )
            if row.completion is not None
            else _("no check-ins due yet")
        )
        alerts = (
            " · ⚠️ " + ngettext("{n} open alert", "{n} open alerts", row.open_alerts)
            if row.open_alerts
            else ""
        )
        scores = (
            _(
                "alliance {alliance} · wellbeing {wellbeing} · ",
                alliance=_alliance(row),
                wellbeing=_score(row.wellbeing, unit="%"),
            )
            if show_scores
            else ""
        )
        lines += [
            "",
            f"• {row.label} - {status_word(row.status)}{alerts}",
            "  "
            + _(
                "last check-in {day} · {scores}{done}",
                day=_day(row.last_checkin_at, zone),
                scores=scores,
                done=done,
            ),
        ]
    if len(rows) > BUTTON_LIST_LIMIT:
        lines += [
            "",
            _(
                "Buttons for the first {limit}; /history LABEL for the others.",
                limit=BUTTON_LIST_LIMIT,
            ),
        ]
    return "\n".join(lines), picker([(r.id, r.label) for r in rows], "history")


def picker(clients: Sequence[tuple[uuid.UUID, str]], command: str) -> InlineKeyboardMarkup:
    """One button per client (two per row) that runs `command` for them."""
    position = PICK_OF_COMMAND[command]
    buttons = [
        button(label[:32], callbacks.PICK, client_id, position)
        for client_id, label in clients[:BUTTON_LIST_LIMIT]
    ]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


NO_CLIENTS = N_("You have no clients in Rapport yet. /invite makes an invite link.")
PICK_PROMPT = {
    "history": N_("Whose history? (or type /history and their label)"),
    "schedule": N_("Whose schedule? (or type /schedule and their label)"),
    "session": N_(
        "Log a session that starts now with whom? For another time type, e.g., "
        "/session Kim yesterday 15:00"
    ),
}


def choose_client(clients: Sequence[tuple[uuid.UUID, str]], command: str) -> Message:
    if not clients:
        return _(NO_CLIENTS), None
    text = _(PICK_PROMPT[command])
    if len(clients) > BUTTON_LIST_LIMIT:
        text += "\n" + _(
            "Buttons for the first {limit}; type the label for the others.",
            limit=BUTTON_LIST_LIMIT,
        )
    return text, picker(clients, command)


def not_found(text: str, command: str) -> str:
    return _(
        "No client of yours is called {label}. Send /{command} without a label to pick from "
        "your clients.",
        label=repr(text),
        command=command,
    )


def history_page(
    label: str,
    client_id: uuid.UUID,
    records: Sequence[CheckinRecord],
    page: int,
    older: bool,
    known: Mapping[str, Instrument],
    zone: str,
    show_comments: bool,
) -> Message:
    """One page of check-ins, newest first, with buttons to page back and forth."""
    if not records:
        return _("{label}: no check-ins yet.", label=label), None
    first, last = page * PAGE_SIZE + 1, page * PAGE_SIZE + len(records)
    lines = [
        _("{label}: check-ins {first}-{last}, newest first", label=label, first=first, last=last)
    ]
    for record in reversed(records):
        lines.append(f"{_day(record.due_at, zone)}: {_record_line(record, known)}")
        if show_comments and record.comment:
            comment = record.comment if len(record.comment) <= 200 else record.comment[:199] + "…"
            lines.append(f'  "{comment}"')
    row = []
    if older:
        row.append(button(_("‹ Older"), callbacks.HISTORY, client_id, page + 1, TURN_PAGE))
    if page > 0:
        row.append(button(_("Newer ›"), callbacks.HISTORY, client_id, page - 1, TURN_PAGE))
    text = "\n".join(lines)
    return text[:MESSAGE_LIMIT], InlineKeyboardMarkup([row]) if row else None


def history_withheld(label: str) -> str:
    """History under the practice's `minimal` detail: where to look, nothing clinical."""
    return f"{label}: {_(ELSEWHERE)}"


def chart_caption(label: str, trend: Trend) -> str:
    shown = ngettext(
        "{label}: the last {n} check-in",
        "{label}: the last {n} check-ins",
        len(trend.points),
        label=label,
    )
    if trend.baseline is None:
        return shown
    return shown + _("; usual alliance {usual}", usual=format(trend.baseline, ".1f"))


def _record_line(record: CheckinRecord, known: Mapping[str, Instrument]) -> str:
    if record.status != Status.COMPLETED and not record.answers:
        return status_word(record.status.value)
    parts = []
    for instrument in known.values():
        answers = record.of(instrument.id)
        if not answers:
            continue
        total = instrument.total(answers)
        shown = f"{total:g}/{instrument.max_total:g}" if total is not None else _("incomplete")
        parts.append(f"{instrument.id} {shown}")
        for item in instrument.items:
            value = answers.get(item.id)
            if not item.scored and value:
                parts.append(f"{item.id}: {item.labels.get(value, value)}")
    if record.status != Status.COMPLETED:
        parts.append(f"({status_word(record.status.value)})")
    return " · ".join(parts) or _("answered")


def describe_rule(rule: Rule) -> str:
    what = ", ".join(rule.instruments) + (" + " + _("comment") if rule.comment else "")
    if isinstance(rule, Weekly):
        days = ", ".join(WEEKDAYS[day] for day in rule.weekdays)
        return _(
            "weekly on {days} at {time}: {what}",
            days=days,
            time=rule.at.strftime("%H:%M"),
            what=what,
        )
    if isinstance(rule, EveryNDays):
        return ngettext(
            "every {n} day at {time}: {what}",
            "every {n} days at {time}: {what}",
            rule.every,
            time=rule.at.strftime("%H:%M"),
            what=what,
        )
    if isinstance(rule, AfterSession):
        values = {"after": rule.after, "unit": rule.unit, "what": what}
        if rule.at:
            return _(
                "{after} {unit} at {time} after each session: {what}",
                time=rule.at.strftime("%H:%M"),
                **values,
            )
        return _("{after} {unit} after each session: {what}", **values)
    return _("once, {when}: {what}", when=_day_time(rule.at), what=what)


def template_check(name: str) -> int:
    """A short check of a template's name, so a button from an older config is noticed."""
    return zlib.crc32(name.encode()) % 1000


def template_buttons(
    client_id: uuid.UUID, templates: Sequence[Template], current: str | None
) -> list[list[Button]]:
    return [
        [
            button(
                ("✓ " if t.name == current else "") + t.name,
                callbacks.TEMPLATE,
                client_id,
                index,
                template_check(t.name),
            )
        ]
        for index, t in enumerate(templates)
    ]


def schedule_message(
    label: str,
    client_id: uuid.UUID,
    status: str,
    paused_until: datetime | None,
    plan: Upcoming,
    templates: Sequence[Template],
) -> Message:
    until = " " + _("until {day}", day=_day(paused_until, plan.timezone)) if paused_until else ""
    none = _("none")
    lines = [
        f"{label}: {status_word(status)}{until}",
        _(
            "Schedule: {template} · time zone {zone} · quiet hours {quiet}",
            template=plan.template or none,
            zone=plan.timezone,
            quiet=plan.quiet or none,
        ),
    ]
    lines += [f"• {describe_rule(rule)}" for rule in plan.rules] or [_("No rules.")]
    if status in ("active", "paused") and plan.due:
        zone = ZoneInfo(plan.timezone)
        lines += ["", _("Next check-ins (client's local time):")]
        lines += [f"  {_day_time(t.astimezone(zone))}" for t in plan.due]
    elif status == "active":
        lines += ["", _("Nothing planned: no rules, or no session logged yet (/session).")]
    rows = template_buttons(client_id, templates, plan.template)
    if status == "paused":
        rows.append([button(_("Resume check-ins"), callbacks.PAUSE, client_id, value=0)])
    elif status == "stopped":
        # Its own position, so an old Resume button never restarts a client who stopped.
        restart = _("Restart check-ins")
        rows.append([button(restart, callbacks.PAUSE, client_id, position=RESTART, value=0)])
    elif status == "active":
        rows.append(
            [
                button(
                    ngettext("Pause {n} day", "Pause {n} days", days),
                    callbacks.PAUSE,
                    client_id,
                    value=days,
                )
                for days in PAUSE_CHOICES
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None


def invite_message(
    label: str,
    client_id: uuid.UUID,
    link: str,
    expires: datetime,
    zone: str,
    templates: Sequence[Template],
    current: str | None,
) -> Message:
    schedule = _("Schedule: {template}.", template=current or _("none yet"))
    lines = [
        _(
            "Invite for {label}. Send this link to your client; it works once, until {day}:",
            label=label,
            day=_day(expires, zone),
        ),
        link,
        "",
        schedule + (" " + _("Tap another to change it.") if templates else ""),
    ]
    markup = template_buttons(client_id, templates, current)
    return "\n".join(lines), InlineKeyboardMarkup(markup) if markup else None


def digest_status(when: DigestTime | None, zone: str) -> str:
    if when is None:
        return _("Your weekly digest is off. Turn it on with /digest on monday 08:00.")
    return _(
        "Your weekly digest comes on {weekday} at {time} ({zone}). /digest off turns it off.",
        weekday=WEEKDAYS[when.weekday],
        time=when.at.strftime("%H:%M"),
        zone=zone,
    )


def digest_waiting(waiting: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The digest's part for clients with no session time known: their signals, which no
    pre-session brief will carry. Empty when there are none."""
    if not waiting:
        return ""
    lines = ["\n\n" + _("No session time known (no brief before a session), signals since:")]
    for label, sentences in waiting:
        if sentences:
            lines += [f"• {sentence}" for sentence in sentences]
        else:
            lines.append(
                "• " + _("{label}: signals waiting; the details stay out of Telegram.", label=label)
            )
    lines.append(_("Set a regular session time with /session to get a brief before each session."))
    return "\n".join(lines)


def digest(
    rows: Sequence[ClientRow], raised: int, since: datetime, zone: str, show_scores: bool = True
) -> str:
    """The weekly summary; without `show_scores` (the practice's `minimal` detail) it shows no
    alliance or wellbeing score."""
    active = [r for r in rows if r.status in ("active", "paused", "invited")]
    completed = sum(r.completed for r in rows)
    closed = sum(r.closed for r in rows)
    open_alerts = sum(r.open_alerts for r in rows)
    rate = f" ({completed / closed:.0%})" if closed else ""
    lines = [
        _("Your week in Rapport, since {day}", day=_day(since, zone)),
        ngettext(
            "{n} client taking part; check-ins answered: {completed} of {closed}{rate}.",
            "{n} clients taking part; check-ins answered: {completed} of {closed}{rate}.",
            len(active),
            completed=completed,
            closed=closed,
            rate=rate,
        ),
        _("Alerts raised this week: {raised}; open now: {open}.", raised=raised, open=open_alerts),
    ]
    for row in rows:
        if row.closed == 0 and not row.open_alerts:
            continue
        alerts = (
            " · ⚠️ " + ngettext("{n} open", "{n} open", row.open_alerts) if row.open_alerts else ""
        )
        wellbeing = _score(row.wellbeing, unit="%")
        scores = (
            " · "
            + _(
                "alliance {alliance} · wellbeing {wellbeing}",
                alliance=_alliance(row),
                wellbeing=wellbeing,
            )
            if show_scores
            else ""
        )
        answered = _(
            "{label}: {completed}/{closed} answered",
            label=row.label,
            completed=row.completed,
            closed=row.closed,
        )
        lines.append(f"• {answered}{scores}{alerts}")
    lines.append("\n" + _("/clients shows everyone; /alerts the open alerts."))
    return "\n".join(lines)
