"""The practice admin's pages (therapists added with --admin): therapists, inviting a client
(with a QR code to show on a phone in the room), the config check, the numbers and the
audit log. The same store/ operations as the `rapport` command line, audited as this admin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import segno
from markupsafe import Markup
from starlette.responses import Response

from handlers.i18n import _
from schedules import manage
from store import admin as store_admin
from store import people, settings_kv
from web.app import Visit

AUDIT_SHOWN = 200


async def _link(visit: Visit, token: str) -> str:
    username = visit.services.bot_username or await settings_kv.get(
        visit.session, settings_kv.BOT_USERNAME
    )
    return people.invite_link(username, token) if username else f"/start {token}"


def qr_svg(link: str) -> Markup:
    """The link as a QR code, drawn as inline SVG (nothing loaded from elsewhere)."""
    code = segno.make(link, error="m")
    svg = code.svg_inline(scale=6, border=4, dark="#000000", light="#ffffff")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code of the link" ', 1))


async def overview(visit: Visit, error: str | None = None) -> Response:
    s = visit.services
    therapists = await people.list_therapists(visit.session, s.vault)
    everyone = await people.list_clients(visit.session, s.vault)
    names = {t.id: t.name for t in therapists}
    stats = await store_admin.stats(visit.session, now=visit.now)
    config = visit.web.check_config()
    visit.audit("clients.read", detail=f"web admin: {len(everyone)} clients")
    return visit.render(
        "admin.html",
        therapists=therapists,
        clients=everyone,
        names=names,
        stats=stats,
        config=config,
        templates=sorted(s.templates),
        default_template=s.default_template,
        practice_timezone=s.timezone,
        error=error,
    )


async def add_therapist(visit: Visit) -> Response:
    s = visit.services
    name = visit.field("name")
    if not name:
        return await overview(visit, error=_("Give the therapist's name."))
    therapist, invite = await people.add_therapist(
        visit.session,
        s.vault,
        name=name[:200],
        is_admin=visit.field("admin") == "yes",
        now=visit.now,
        invite_ttl=s.invite_ttl,
        actor_kind="therapist",
        actor_id=visit.therapist.id,
    )
    link = await _link(visit, invite.token)
    return visit.render(
        "link.html",
        title=_("Therapist added"),
        who=f"{name} ({_('practice admin') if therapist.is_admin else _('therapist')})",
        link=link,
        expires=invite.expires_at,
        zone=s.timezone,
        qr=None,
        note=_(
            "Send the link to the therapist yourself; opening it in Telegram links their "
            "account. It works once."
        ),
    )


async def invite_client(visit: Visit) -> Response:
    s = visit.services
    try:
        therapist_id = uuid.UUID(visit.field("therapist"))
    except ValueError:
        return await overview(visit, error=_("Choose the client's therapist."))
    name = visit.field("template") or s.default_template
    template = s.templates.get(name) if name else None
    if name and template is None:
        return await overview(
            visit, error=_("There is no schedule called {name}.", name=repr(name))
        )
    try:
        _client, invite = await manage.invite(
            visit.session,
            s.vault,
            therapist_id=therapist_id,
            label=visit.field("label")[: people.LABEL_LIMIT],
            timezone=visit.field("timezone") or s.timezone,
            template=template,
            now=visit.now,
            invite_ttl=s.invite_ttl,
            actor_kind="therapist",
            actor_id=visit.therapist.id,
        )
    except (people.NotFound, ValueError) as exc:
        return await overview(visit, error=_("That did not work: {problem}.", problem=exc))
    link = await _link(visit, invite.token)
    return visit.render(
        "link.html",
        title=_("Client invited"),
        who=visit.field("label") or _("the new client"),
        link=link,
        expires=invite.expires_at,
        zone=s.timezone,
        qr=qr_svg(link),
        note=_(
            "Let the client scan the code with their phone's camera, or send them the link "
            "yourself (not into a group). Opening it in Telegram asks them to agree, then "
            "connects them. It works once."
        ),
    )


async def audit_log(visit: Visit) -> Response:
    query = visit.request.query_params
    client_id = None
    problems = []
    if query.get("client"):
        try:
            client_id = uuid.UUID(query["client"])
        except ValueError:
            problems.append(_("The client id is not an id (8-4-4-4-12 hex)."))
    since = None
    if query.get("since"):
        try:
            day = datetime.fromisoformat(query["since"])
            since = day if day.tzinfo else datetime.combine(day.date(), time(), tzinfo=UTC)
        except ValueError:
            problems.append(_("The date is not a date (2026-11-01)."))
    action, actor, outcome = query.get("action", ""), query.get("actor", ""), query.get("outcome")
    chosen = store_admin.AuditFilter(client_id, since, action, actor, outcome or "")
    total = await store_admin.audit_count(visit.session, chosen)
    rows = await store_admin.audit_log(visit.session, chosen, newest=AUDIT_SHOWN)
    return visit.render(
        "audit.html",
        rows=rows,
        total=total,
        shown=AUDIT_SHOWN,
        problems=problems,
        filters={
            "client": query.get("client", ""),
            "since": query.get("since", ""),
            "action": action,
            "actor": actor,
            "outcome": outcome or "",
        },
        zone=visit.services.timezone,
    )
