"""The therapist's pages: the caseload, the alerts inbox, a client, and what a client page's
forms change. Every client is reached through store.caseload (`overview`, `owned`), exactly
as in Telegram; changes go through the same store/ and schedules/ operations, with the same
audit rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from alliance.detectors import Severity
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument
from handlers import alert_words, brief, planning
from handlers.i18n import N_, _
from handlers.therapist_views import PAUSE_CHOICES, describe_rule
from handlers.web import drop_buttons
from schedules import briefs as timing
from schedules import manage
from schedules.rules import WEEKDAYS, RuleError
from store import alerts as store_alerts
from store import caseload, clients, history, people, plans
from store.alerts import AlertAction, PendingAlert
from store.briefs import Candidate, preview
from store.models import Client, ClientStatus, Therapist
from web.app import Visit, local, plain, see_other
from web.charts import sparkline, trend_chart

SORTS = {  # the sort choices' names: `_()` where shown
    "alerts": N_("Open alerts (urgent first)"),
    "label": N_("Name"),
    "status": N_("Status"),
    "last": N_("Last check-in (newest first)"),
    "alliance": N_("Alliance (lowest first)"),
    "next": N_("Next session (soonest first)"),
}
SESSIONS_AHEAD = timedelta(days=62)
CHECKINS_SHOWN = 20
FAR = datetime.max.replace(tzinfo=UTC)


def detail(visit: Visit) -> alert_words.Detail:
    return visit.services.alert_detail


def scores_shown(visit: Visit) -> bool:
    return alert_words.shows_scores(detail(visit))


def not_found(visit: Visit) -> Response:
    """Another therapist's client, or no such client: the same answer (the refusal is in the
    audit log, written by store.caseload.owned)."""
    return plain(
        visit.web,
        404,
        _("Not found"),
        _("There is nothing here that you can see."),
        signed_in=True,
    )


def _client_id(visit: Visit) -> uuid.UUID | None:
    try:
        return uuid.UUID(visit.request.path_params["client_id"])
    except ValueError:
        return None


async def next_session(visit: Visit, client: Client) -> datetime | None:
    logged = await plans.sessions_between(
        visit.session, client.id, visit.now, visit.now + SESSIONS_AHEAD
    )
    candidate = Candidate(client.id, client.timezone, client.session_rule, tuple(logged))
    return timing.next_session(candidate, visit.now)


def _by_client(live: Sequence[PendingAlert]) -> dict[uuid.UUID, list[PendingAlert]]:
    grouped: dict[uuid.UUID, list[PendingAlert]] = {}
    for alert in live:
        grouped.setdefault(alert.client_id, []).append(alert)
    return grouped


# --- the caseload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseloadRow:
    id: uuid.UUID
    label: str
    status: str
    last_checkin: str
    last_at: datetime | None
    alliance: float | None
    alliance_max: float | None
    spark: Any
    open_alerts: int  # pushed to the therapist's phone (or about to be), still open
    brief_items: int  # kept for the brief before the next session, still open
    urgent: bool
    next_session: str
    next_at: datetime | None


async def caseload_rows(visit: Visit) -> list[CaseloadRow]:
    s = visit.services
    rows = await caseload.overview(
        visit.session, s.vault, visit.therapist.id, s.instruments, s.detection.settings, visit.now
    )
    live = _by_client(await store_alerts.live_for(visit.session, s.vault, visit.therapist, 0))
    shown = scores_shown(visit)
    table = []
    for row in rows:
        client = await visit.session.get(Client, row.id)
        assert client is not None  # overview listed it in this transaction
        spark = None
        if shown:
            trend = await history.trend(
                visit.session, s.vault, row.id, s.instruments, s.detection.settings
            )
            totals = [p.alliance for p in trend.points if p.alliance is not None]
            spark = sparkline(totals, trend.alliance_max, _("Alliance of {label}", label=row.label))
        upcoming = await next_session(visit, client)
        mine = live.get(row.id, [])
        table.append(
            CaseloadRow(
                id=row.id,
                label=row.label,
                status=row.status,
                last_checkin=local(row.last_checkin_at, s.timezone, "%d %b %Y") or _("none yet"),
                last_at=row.last_checkin_at,
                alliance=row.alliance if shown else None,
                alliance_max=row.alliance_max,
                spark=spark,
                open_alerts=sum(1 for a in mine if a.delivery != "brief"),
                brief_items=sum(1 for a in mine if a.delivery == "brief"),
                urgent=any(a.severity == Severity.URGENT for a in mine),
                next_session=(
                    local(upcoming, client.timezone, "%a %d %b, %H:%M") or _("not known")
                ),
                next_at=upcoming,
            )
        )
    return table


SORT_KEYS: Mapping[str, Callable[[CaseloadRow], Any]] = {
    "label": lambda r: r.label.casefold(),
    "status": lambda r: (r.status, r.label.casefold()),
    "last": lambda r: (r.last_at is None, -(r.last_at.timestamp() if r.last_at else 0)),
    "alliance": lambda r: (r.alliance is None, r.alliance or 0, r.label.casefold()),
    "alerts": lambda r: (not r.urgent, -r.open_alerts, -r.brief_items, r.label.casefold()),
    "next": lambda r: (r.next_at or FAR, r.label.casefold()),
}


async def caseload_page(visit: Visit) -> Response:
    table = await caseload_rows(visit)
    query = visit.request.query_params
    statuses = [status.value for status in ClientStatus]
    status = query.get("status", "all")
    status = status if status in ("all", "alerts", *statuses) else "all"
    sort = query.get("sort", "alerts")
    sort = sort if sort in SORTS else "alerts"
    rows = [
        r
        for r in table
        if status == "all"
        or (status == "alerts" and (r.open_alerts or r.brief_items))
        or r.status == status
    ]
    rows.sort(key=SORT_KEYS[sort])
    visit.audit("clients.read", detail=f"web: {len(rows)} clients")
    return visit.render(
        "caseload.html",
        rows=rows,
        total=len(table),
        sorts={key: _(name) for key, name in SORTS.items()},
        sort=sort,
        status=status,
        statuses=statuses,
        scores_shown=scores_shown(visit),
    )


# --- the alerts inbox ------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertGroup:
    """One client's open alerts, as one Telegram alert message carries them."""

    client_id: uuid.UUID
    label: str
    severity: str
    urgent: bool
    sentences: list[str]
    rules: list[tuple[str, str, str]]  # (rule, severity, tier)
    snoozed_until: str | None


async def alert_groups(visit: Visit, live: Sequence[PendingAlert]) -> list[AlertGroup]:
    snoozed = await store_alerts.snoozed_until(visit.session, [a.alert_id for a in live])
    groups = []
    for client_id, group in _by_client(live).items():
        ordered = alert_words.ordered(group)
        top = max(group, key=lambda a: Severity(a.severity).rank)
        until = [snoozed[a.alert_id] for a in group if a.alert_id in snoozed]
        groups.append(
            AlertGroup(
                client_id=client_id,
                label=group[0].client_label,
                severity=top.severity,
                urgent=top.severity == Severity.URGENT,
                sentences=alert_words.sentences(ordered, detail(visit)),
                rules=[
                    (a.rule, a.severity, "brief" if a.delivery == "brief" else "now")
                    for a in ordered
                ],
                snoozed_until=local(min(until), visit.services.timezone)
                if len(until) == len(group)
                else None,
            )
        )
    groups.sort(key=lambda g: (-Severity(g.severity).rank, g.label.casefold()))
    return groups


async def alerts_page(visit: Visit) -> Response:
    s = visit.services
    live = await store_alerts.live_for(visit.session, s.vault, visit.therapist, 0)
    groups = await alert_groups(visit, live)
    visit.audit("alerts.read", detail=f"web: {len(live)} alerts")
    return visit.render("alerts.html", groups=groups, detail=detail(visit))


# --- a client --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinRow:
    day: str
    status: str
    scores: list[str]  # "alliance 29/40"
    answers: list[tuple[str, str]]  # (question, answer)
    comment: str | None


def checkin_rows(
    records: Sequence[CheckinRecord],
    known: Mapping[str, Instrument],
    zone: str,
    show_scores: bool,
    show_comments: bool,
) -> list[CheckinRow]:
    rows = []
    for record in reversed(records):  # newest first
        scores, answers = [], []
        if show_scores:
            for instrument in known.values():
                given = record.of(instrument.id)
                if not given:
                    continue
                total = instrument.total(given)
                shown = (
                    f"{total:g}/{instrument.max_total:g}" if total is not None else _("incomplete")
                )
                scores.append(f"{instrument.title}: {shown}")
                for item in instrument.items:
                    value = given.get(item.id)
                    if value is not None:
                        answers.append((item.prompt, item.labels.get(value, str(value))))
        status = {
            Status.COMPLETED: "answered",
            Status.MISSED: "missed",
            Status.EXPIRED: "not finished",
        }.get(record.status, record.status.value)
        rows.append(
            CheckinRow(
                day=local(record.due_at, zone, "%a %d %b %Y"),
                status=status,
                scores=scores,
                answers=answers,
                comment=record.comment if show_comments else None,
            )
        )
    return rows


async def show_client(visit: Visit, error: str | None = None) -> Response:
    """A client's page; again with `error` when one of its forms was refused."""
    client_id = _client_id(visit)
    if client_id is None:
        return not_found(visit)
    s = visit.services
    client = await caseload.owned(
        visit.session, visit.therapist, client_id, "history.read", admin_may=True
    )
    if client is None:
        return not_found(visit)
    owner = client.therapist_id == visit.therapist.id
    label = await clients.label(visit.session, s.vault, client)
    shown = scores_shown(visit)
    trend = await history.trend(
        visit.session, s.vault, client.id, s.instruments, s.detection.settings, last=24
    )
    records = await history.client_history(visit.session, s.vault, client.id, limit=CHECKINS_SHOWN)
    live = await store_alerts.live_alerts_of(visit.session, s.vault, client, 0, None)
    groups = await alert_groups(visit, live)
    plan = await manage.upcoming(visit.session, client, s.quiet, visit.now)
    logged = await plans.sessions_between(
        visit.session, client.id, visit.now - timedelta(days=90), visit.now + SESSIONS_AHEAD
    )
    upcoming = await next_session(visit, client)
    brief_text = None
    if upcoming is not None:
        content = await preview(
            visit.session,
            s.vault,
            client,
            upcoming,
            visit.now,
            s.instruments,
            s.detection.settings,
        )
        brief_text = brief.brief_text(content, detail(visit))
    recurring = manage_recurring(client)
    visit.audit("history.read", client.id, detail="web")
    template = s.templates.get(plan.template or "")
    done = FORMS.get(visit.request.query_params.get("done", ""))  # the form just sent
    return visit.render(
        "client.html",
        400 if error else 200,
        client=client,
        label=label,
        owner=owner,
        admin_view=not owner,
        detail=detail(visit),
        scores_shown=shown,
        chart=trend_chart(trend, s.timezone, label) if shown else None,
        checkins=checkin_rows(
            records, s.instruments, s.timezone, shown, alert_words.shows_comments(detail(visit))
        ),
        alert_group=groups[0] if groups else None,
        plan=plan,
        template=template,
        templates=sorted(s.templates),
        rules=[describe_rule(rule) for rule in plan.rules],
        due=[local(t, client.timezone) for t in plan.due],
        sessions=[local(at, client.timezone) for at in reversed(logged)],
        next_session=local(upcoming, client.timezone),
        brief_text=brief_text,
        recurring=recurring,
        weekdays=WEEKDAYS,
        pause_choices=PAUSE_CHOICES,
        paused_until=local(client.paused_until, client.timezone, "%d %b %Y"),
        message=_(done.done) if done else None,
        error=error,
    )


def manage_recurring(client: Client) -> dict[str, Any]:
    if not client.session_rule:
        return {"weekdays": [], "at": ""}
    spec = json.loads(client.session_rule)
    return {"weekdays": list(spec.get("weekdays", [])), "at": spec.get("at", "")}


# --- what a client page's forms change --------------------------------------------------------


async def client_action(visit: Visit) -> Response:
    action = visit.request.path_params["action"]
    form = FORMS.get(action)
    client_id = _client_id(visit)
    if client_id is None or form is None:
        return not_found(visit)
    # Alerts: as the Telegram buttons, a practice admin may act too; the rest is the
    # therapist's own (as /session and /schedule).
    client = await caseload.owned(
        visit.session, visit.therapist, client_id, form.audit, admin_may=form.alert
    )
    if client is None:
        return not_found(visit)
    try:
        await form.change(visit, client)
    except (RuleError, ValueError) as exc:
        # Nothing was changed (the transaction has only the refused input): the page again,
        # saying what to fix.
        return await show_client(visit, error=_("That did not work: {problem}.", problem=exc))
    if not form.alert:  # the schedule or the client's state changed: the dispatcher looks now
        visit.after.append(_kick(visit))
    if visit.field("back") == "alerts":
        return see_other("/alerts")
    return see_other(f"/clients/{client.id}?done={action}#{form.anchor}")


def _kick(visit: Visit) -> Callable[[], Any]:
    async def kick() -> None:
        visit.services.kick()

    return kick


async def _acknowledge(visit: Visit, client: Client) -> None:
    await _alert_action(visit, client, AlertAction.ACKNOWLEDGE)


async def _snooze(visit: Visit, client: Client) -> None:
    await _alert_action(visit, client, AlertAction.SNOOZE)


async def _alert_action(visit: Visit, client: Client, action: AlertAction) -> None:
    """As the alert's Telegram button: the same store operation and audit row; after the
    commit the alert message in Telegram loses its buttons, as when the button is pressed."""
    acted = await store_alerts.act(
        visit.session, client_id=client.id, therapist=visit.therapist, action=action, now=visit.now
    )
    owner = await visit.session.get(Therapist, client.therapist_id)
    chat = await people.chat_id(visit.session, visit.services.vault, owner) if owner else None
    message_ids = [alert.message_id for alert in acted]
    if chat is not None and any(message_ids):
        bot = visit.web.bot

        async def echo() -> None:
            await drop_buttons(bot, chat, message_ids)

        visit.after.append(echo)


async def _log_session(visit: Visit, client: Client) -> None:
    await manage.log_session(
        visit.session,
        client,
        visit.field("when"),
        visit.now,
        actor_kind="therapist",
        actor_id=visit.therapist.id,
    )


async def _set_recurring(visit: Visit, client: Client) -> None:
    weekdays = [d for d in visit.fields("weekday") if d in WEEKDAYS]
    manage.set_recurring(
        visit.session,
        client,
        weekdays,
        visit.field("at"),
        visit.now,
        actor_kind="therapist",
        actor_id=visit.therapist.id,
    )


async def _set_template(visit: Visit, client: Client) -> None:
    template = visit.services.templates.get(visit.field("template"))
    if template is None:
        raise ValueError("choose one of the practice's schedules")
    await manage.apply_template(
        visit.session,
        client,
        template,
        visit.now,
        actor_kind="therapist",
        actor_id=visit.therapist.id,
    )


async def _set_quiet(visit: Visit, client: Client) -> None:
    hours = visit.field("quiet") if visit.field("own") == "yes" else None
    manage.set_quiet_hours(
        visit.session,
        client,
        hours or None,
        visit.now,
        actor_kind="therapist",
        actor_id=visit.therapist.id,
    )


# Pause, resume and restart, as the /schedule buttons do; the client is told.


async def _pause(visit: Visit, client: Client) -> None:
    try:
        days = int(visit.field("days"))
    except ValueError:
        days = 0
    if days not in PAUSE_CHOICES:
        choices = ", ".join(map(str, PAUSE_CHOICES))
        raise ValueError(_("pause for {choices} days", choices=choices))
    await _change_pause(visit, client, days, "only an active client's check-ins can be paused")


async def _resume(visit: Visit, client: Client) -> None:
    await _change_pause(visit, client, 0, "check-ins are not paused")


async def _restart(visit: Visit, client: Client) -> None:
    await _change_pause(
        visit, client, 0, "the client has not stopped their check-ins", restart=True
    )


async def _change_pause(
    visit: Visit, client: Client, days: int, refused: str, *, restart: bool = False
) -> None:
    told = await planning.change_pause(
        visit.session,
        visit.services,
        client,
        visit.therapist.id,
        days,
        visit.now,
        restart=restart,
    )
    if told is None:
        raise ValueError(refused)
    await _tell(visit, client, told)


async def _tell(visit: Visit, client: Client, text: str) -> None:
    """After the commit, the client is told in their chat (if they have one)."""
    chat = await people.chat_id(visit.session, visit.services.vault, client)
    if chat is None:
        return
    bot = visit.web.bot

    async def tell() -> None:
        await bot.send_message(chat, text)

    visit.after.append(tell)


@dataclass(frozen=True)
class Form:
    """One of a client page's forms (POST /clients/{id}/{action})."""

    audit: str  # what it is audited as, also when refused (not the therapist's client)
    change: Callable[[Visit, Client], Awaitable[None]]  # ValueError: refused, say why
    done: str  # what the page says after it: `_()` where shown
    anchor: str  # where on the page it lands
    alert: bool = False  # an alert's: a practice admin may act too, the dispatcher not woken


FORMS: Mapping[str, Form] = {
    "acknowledge": Form("alert.acknowledge", _acknowledge, N_("Acknowledged."), "alerts", True),
    "snooze": Form("alert.snooze", _snooze, N_("Snoozed until tomorrow."), "alerts", True),
    "session": Form("session.add", _log_session, N_("Session logged."), "sessions"),
    "recurring": Form(
        "session.recurring", _set_recurring, N_("Regular session time saved."), "schedule"
    ),
    "template": Form("schedule.set", _set_template, N_("Schedule changed."), "schedule"),
    "quiet": Form("schedule.quiet", _set_quiet, N_("Quiet hours saved."), "schedule"),
    "pause": Form("client.pause", _pause, N_("Check-ins paused."), "schedule"),
    "resume": Form("client.pause", _resume, N_("Check-ins resumed."), "schedule"),
    "restart": Form("client.pause", _restart, N_("Check-ins restarted."), "schedule"),
}
