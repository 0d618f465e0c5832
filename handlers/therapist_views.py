"""How a therapist's commands look in Telegram: the caseload, history pages, a schedule, an
invite, the weekly digest. Therapist-facing words are English (like the alerts); clients'
words live in the practice-editable catalogue (handlers/texts.py)."""

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
from handlers.views import button
from schedules.manage import Upcoming
from schedules.rules import WEEKDAYS, AfterSession, EveryNDays, Rule, Template, Weekly
from store.caseload import ClientRow
from store.digests import DigestTime
from store.history import Trend

THERAPIST_COMMANDS = [
    BotCommand("clients", "Your clients: status, last scores, open alerts"),
    BotCommand("alerts", "Open alerts, to acknowledge or snooze"),
    BotCommand("history", "A client's trend and check-ins, e.g. /history Kim"),
    BotCommand("session", "Log a session, e.g. /session Kim yesterday 15:00"),
    BotCommand("schedule", "A client's schedule: change it or pause it"),
    BotCommand("invite", "A new client's invite link, e.g. /invite Kim"),
    BotCommand("digest", "A weekly summary: /digest on monday 08:00, /digest off"),
    BotCommand("web", "A one-time link to the web dashboard"),
    BotCommand("help", "What you can do here"),
]

HELP = "\n".join(
    [
        "Rapport tells you here when a client's check-ins suggest a possible rupture.",
        "",
        *[f"/{c.command} - {c.description}" for c in THERAPIST_COMMANDS],
        "",
        "Choose a client by their label (or its start), or leave it out for a list of buttons.",
    ]
)

REFUSED = "This is not one of your clients."
THERAPISTS_ONLY = "That command is for therapists."
OUT_OF_DATE = "This button is out of date; send the command again."
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
    return "-" if at is None else f"{at.astimezone(ZoneInfo(zone)):%a %d %b}"


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
        return f"{shown} (steady)"
    arrow = "↑" if row.alliance > row.alliance_before else "↓"
    return f"{shown} ({arrow} from {row.alliance_before:g})"


def caseload(rows: Sequence[ClientRow], zone: str, show_scores: bool = True) -> Message:
    """The client list; without `show_scores` (the practice's `minimal` detail) it shows no
    alliance or wellbeing score."""
    if not rows:
        return "You have no clients in Rapport yet. /invite makes an invite link.", None
    lines = [f"Your clients ({len(rows)}); completion is over the last 4 weeks."]
    for row in rows:
        done = (
            f"{row.completion:.0%} done ({row.completed}/{row.closed})"
            if row.completion is not None
            else "no check-ins due yet"
        )
        alerts = f" · ⚠️ {row.open_alerts} open alert(s)" if row.open_alerts else ""
        scores = (
            f"alliance {_alliance(row)} · wellbeing {_score(row.wellbeing, unit='%')} · "
            if show_scores
            else ""
        )
        lines += [
            "",
            f"• {row.label} - {row.status}{alerts}",
            f"  last check-in {_day(row.last_checkin_at, zone)} · {scores}{done}",
        ]
    if len(rows) > BUTTON_LIST_LIMIT:
        lines += ["", f"Buttons for the first {BUTTON_LIST_LIMIT}; /history LABEL for the others."]
    return "\n".join(lines), picker([(r.id, r.label) for r in rows], "history")


def picker(clients: Sequence[tuple[uuid.UUID, str]], command: str) -> InlineKeyboardMarkup:
    """One button per client (two per row) that runs `command` for them."""
    position = PICK_OF_COMMAND[command]
    buttons = [
        button(label[:32], callbacks.PICK, client_id, position)
        for client_id, label in clients[:BUTTON_LIST_LIMIT]
    ]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


PICK_PROMPT = {
    "history": "Whose history? (or type /history and their label)",
    "schedule": "Whose schedule? (or type /schedule and their label)",
    "session": (
        "Log a session that starts now with whom? For another time type, e.g., "
        "/session Kim yesterday 15:00"
    ),
}


def choose_client(clients: Sequence[tuple[uuid.UUID, str]], command: str) -> Message:
    if not clients:
        return "You have no clients in Rapport yet. /invite makes an invite link.", None
    text = PICK_PROMPT[command]
    if len(clients) > BUTTON_LIST_LIMIT:
        text += f"\nButtons for the first {BUTTON_LIST_LIMIT}; type the label for the others."
    return text, picker(clients, command)


def not_found(text: str, command: str) -> str:
    return (
        f"No client of yours is called {text!r}. Send /{command} without a label to pick from "
        "your clients."
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
        return f"{label}: no check-ins yet.", None
    first, last = page * PAGE_SIZE + 1, page * PAGE_SIZE + len(records)
    lines = [f"{label}: check-ins {first}-{last}, newest first"]
    for record in reversed(records):
        lines.append(f"{_day(record.due_at, zone)}: {_record_line(record, known)}")
        if show_comments and record.comment:
            comment = record.comment if len(record.comment) <= 200 else record.comment[:199] + "…"
            lines.append(f'  "{comment}"')
    row = []
    if older:
        row.append(button("‹ Older", callbacks.HISTORY, client_id, page + 1, TURN_PAGE))
    if page > 0:
        row.append(button("Newer ›", callbacks.HISTORY, client_id, page - 1, TURN_PAGE))
    text = "\n".join(lines)
    return text[:MESSAGE_LIMIT], InlineKeyboardMarkup([row]) if row else None


def history_withheld(label: str) -> str:
    """History under the practice's `minimal` detail: where to look, nothing clinical."""
    return f"{label}: {ELSEWHERE}"


def chart_caption(label: str, trend: Trend) -> str:
    usual = f"; usual alliance {trend.baseline:.1f}" if trend.baseline is not None else ""
    return f"{label}: the last {len(trend.points)} check-ins{usual}"


def _record_line(record: CheckinRecord, known: Mapping[str, Instrument]) -> str:
    if record.status != Status.COMPLETED and not record.answers:
        return record.status.value
    parts = []
    for instrument in known.values():
        answers = record.of(instrument.id)
        if not answers:
            continue
        total = instrument.total(answers)
        shown = f"{total:g}/{instrument.max_total:g}" if total is not None else "incomplete"
        parts.append(f"{instrument.id} {shown}")
        for item in instrument.items:
            value = answers.get(item.id)
            if not item.scored and value:
                parts.append(f"{item.id}: {item.labels.get(value, value)}")
    if record.status != Status.COMPLETED:
        parts.append(f"({record.status.value})")
    return " · ".join(parts) or "answered"


def describe_rule(rule: Rule) -> str:
    what = ", ".join(rule.instruments) + (" + comment" if rule.comment else "")
    if isinstance(rule, Weekly):
        days = ", ".join(WEEKDAYS[day] for day in rule.weekdays)
        return f"weekly on {days} at {rule.at:%H:%M}: {what}"
    if isinstance(rule, EveryNDays):
        return f"every {rule.every} days at {rule.at:%H:%M}: {what}"
    if isinstance(rule, AfterSession):
        at = f" at {rule.at:%H:%M}" if rule.at else ""
        return f"{rule.after} {rule.unit}{at} after each session: {what}"
    return f"once, {rule.at:%a %d %b %H:%M}: {what}"


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
    lines = [
        f"{label}: {status}"
        + (f" until {_day(paused_until, plan.timezone)}" if paused_until else ""),
        f"Schedule: {plan.template or 'none'} · time zone {plan.timezone} · "
        f"quiet hours {plan.quiet or 'none'}",
    ]
    lines += [f"• {describe_rule(rule)}" for rule in plan.rules] or ["No rules."]
    if status in ("active", "paused") and plan.due:
        zone = ZoneInfo(plan.timezone)
        lines += ["", "Next check-ins (client's local time):"]
        lines += [f"  {t.astimezone(zone):%a %d %b %H:%M}" for t in plan.due]
    elif status == "active":
        lines += ["", "Nothing planned: no rules, or no session logged yet (/session)."]
    rows = template_buttons(client_id, templates, plan.template)
    if status == "paused":
        rows.append([button("Resume check-ins", callbacks.PAUSE, client_id, value=0)])
    elif status == "stopped":
        # Its own position, so an old Resume button never restarts a client who stopped.
        rows.append(
            [button("Restart check-ins", callbacks.PAUSE, client_id, position=RESTART, value=0)]
        )
    elif status == "active":
        rows.append(
            [
                button(f"Pause {days} days", callbacks.PAUSE, client_id, value=days)
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
    lines = [
        f"Invite for {label}. Send this link to your client; it works once, until "
        f"{_day(expires, zone)}:",
        link,
        "",
        f"Schedule: {current or 'none yet'}." + (" Tap another to change it." if templates else ""),
    ]
    markup = template_buttons(client_id, templates, current)
    return "\n".join(lines), InlineKeyboardMarkup(markup) if markup else None


def digest_status(when: DigestTime | None, zone: str) -> str:
    if when is None:
        return "Your weekly digest is off. Turn it on with /digest on monday 08:00."
    return (
        f"Your weekly digest comes on {WEEKDAYS[when.weekday]} at {when.at:%H:%M} ({zone}). "
        "/digest off turns it off."
    )


def digest_waiting(waiting: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The digest's part for clients with no session time known: their signals, which no
    pre-session brief will carry. Empty when there are none."""
    if not waiting:
        return ""
    lines = ["\n\nNo session time known (no brief before a session), signals since:"]
    for label, sentences in waiting:
        if sentences:
            lines += [f"• {sentence}" for sentence in sentences]
        else:
            lines.append(f"• {label}: signals waiting; the details stay out of Telegram.")
    lines.append("Set a regular session time with /session to get a brief before each session.")
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
        f"Your week in Rapport, since {_day(since, zone)}",
        f"{len(active)} clients taking part; check-ins answered: {completed} of {closed}{rate}.",
        f"Alerts raised this week: {raised}; open now: {open_alerts}.",
    ]
    for row in rows:
        if row.closed == 0 and not row.open_alerts:
            continue
        alerts = f" · ⚠️ {row.open_alerts} open" if row.open_alerts else ""
        scores = (
            f" · alliance {_alliance(row)} · wellbeing {_score(row.wellbeing, unit='%')}"
            if show_scores
            else ""
        )
        lines.append(f"• {row.label}: {row.completed}/{row.closed} answered{scores}{alerts}")
    lines.append("\n/clients shows everyone; /alerts the open alerts.")
    return "\n".join(lines)
