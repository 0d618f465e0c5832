"""The web dashboard's application: routes, the one place each request gets its database
transaction and its signed-in therapist (`page`), and the headers every answer carries.

Like handlers/therapist.py for Telegram: `page` opens one transaction per request, finds the
therapist behind the session cookie, checks the CSRF token of every form, hands the work a
`Visit`, and runs what must happen after the commit (a Telegram edit, a message to a client,
waking the dispatcher). No page is reached without a live session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from telegram import Bot

from handlers import i18n
from handlers.context import Services
from handlers.i18n import _
from store import audit, websessions
from store.db import interactive, transaction
from store.models import Therapist

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "rapport_session"
LOGIN_COOKIE = "rapport_login"  # double-submit token for the sign-in form, before a session
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclass
class ConfigReport:
    """What `rapport config check` says about the practice config file, for the admin page."""

    source: str
    valid: bool
    problems: list[str]
    summary: list[str]


@dataclass
class Web:
    """What the dashboard needs from the running bot; built in bot/dashboard.py."""

    services: Services
    bot: Bot
    base_url: str
    check_config: Callable[[], ConfigReport]
    secure: bool = False  # cookies only over https (the base URL is https)
    environment: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        # The templates' words: the same catalogs as Telegram, in the practice's language
        # (read when a page is drawn, so they follow i18n.staff).
        self.environment.install_gettext_callables(  # type: ignore[attr-defined]
            gettext=i18n.gettext, ngettext=i18n.ngettext_plain, newstyle=True
        )
        self.environment.filters["local"] = local


# The dates a page shows, by their English form: the Babel pattern that writes it, and the CLDR
# skeletons (joined) that write it in another language.
DATE_FORMS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "%a %d %b %Y, %H:%M": ("EEE dd MMM yyyy, HH:mm", ("yMMMEd", "Hm"), ", "),
    "%a %d %b, %H:%M": ("EEE dd MMM, HH:mm", ("MMMEd", "Hm"), ", "),
    "%a %d %b %Y": ("EEE dd MMM yyyy", ("yMMMEd",), " "),
    "%d %b %Y": ("dd MMM yyyy", ("yMMMd",), " "),
}


def local(at: datetime | None, zone: str, form: str = "%a %d %b %Y, %H:%M") -> str:
    """A date in the practice's language (Babel), English as `form` writes it: by default
    'Tue 08 Dec 2026, 18:00'. Also the templates' `local` filter."""
    if at is None:
        return ""
    english, skeletons, join = DATE_FORMS[form]
    return i18n.staff_when(at.astimezone(ZoneInfo(zone)), english, skeletons, join)


AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class Visit:
    """What a page's work gets: like handlers.therapist.Ask, for one web request."""

    request: Request
    session: AsyncSession
    therapist: Therapist
    web: Web
    now: datetime
    csrf: str
    form: FormData | None = None
    after: list[AfterCommit] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return self.web.services

    def audit(self, action: str, client_id: Any = None, detail: str | None = None) -> None:
        """An audit row for what the therapist did or read on the web (as in Telegram)."""
        audit.record(
            self.session,
            actor_kind="therapist",
            actor_id=self.therapist.id,
            action=action,
            target_kind="client" if client_id else "therapist",
            target_id=client_id or self.therapist.id,
            detail=detail,
        )

    def render(self, name: str, code: int = 200, /, **values: Any) -> HTMLResponse:
        return render(
            self.web,
            name,
            code,
            therapist=self.therapist,
            csrf=self.csrf,
            path=self.request.url.path,
            **values,
        )

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]


def render(web: Web, name: str, code: int = 200, /, **values: Any) -> HTMLResponse:
    html = web.environment.get_template(name).render(**values)
    return HTMLResponse(html, status_code=code, headers={"cache-control": "no-store"})


def plain(web: Web, status: int, title: str, text: str, *, signed_in: bool = False) -> HTMLResponse:
    """A plain page for refusals and errors: no client data, a way on."""
    return render(web, "plain.html", status, title=title, text=text, signed_in=signed_in)


Work = Callable[[Visit], Awaitable[Response]]


def page(work: Work, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A page behind a session: one transaction, the therapist, CSRF on forms, after-commit
    effects. Without a live session: 401 and a plain page saying how to sign in."""

    async def endpoint(request: Request) -> Response:
        web: Web = request.app.state.web
        cookie = request.cookies.get(COOKIE)
        form = None
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=64)
        if not cookie:
            return _signed_out(web)
        csrf = websessions.csrf_token(cookie)
        if form is not None and not websessions.csrf_ok(cookie, _text(form, "csrf")):
            log.warning("refused a web form without its CSRF token")
            return plain(
                web,
                403,
                _("This form was refused"),
                _(
                    "The form did not carry this session's security token (it may be from an "
                    "old page or another site). Nothing was changed. Go back, reload the page "
                    "and try again."
                ),
                signed_in=True,
            )
        services = web.services
        now = services.clock()
        with interactive():
            async with transaction(services.sessions) as session:
                therapist = await websessions.signed_in(session, cookie, now)
                if therapist is None:
                    response: Response = _signed_out(web)
                    visit = None
                elif admin and not therapist.is_admin:
                    raise HTTPException(404)
                else:
                    visit = Visit(request, session, therapist, web, now, csrf, form)
                    response = await work(visit)
        for effect in visit.after if visit else ():
            try:
                await effect()
            except Exception as exc:  # the change is committed; only its echo failed
                log.warning("a web action's follow-up failed: %s", type(exc).__name__)
        return response

    return endpoint


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _signed_out(web: Web) -> HTMLResponse:
    return plain(
        web,
        401,
        _("Please sign in"),
        _(
            "You are not signed in, or your session has ended. Send /web to the Rapport bot in "
            "Telegram for a one-time sign-in link."
        ),
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class SecurityHeaders:
    """Adds the CSP and the other security headers to every answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def build(web: Web) -> Starlette:
    from web import admin, auth, pages

    routes = [
        Route("/", page(pages.caseload_page)),
        Route("/alerts", page(pages.alerts_page)),
        Route("/clients/{client_id}", page(pages.show_client)),
        Route("/clients/{client_id}/{action}", page(pages.client_action), methods=["POST"]),
        Route("/admin", page(admin.overview, admin=True)),
        Route("/admin/audit", page(admin.audit_log, admin=True)),
        Route("/admin/therapists", page(admin.add_therapist, admin=True), methods=["POST"]),
        Route("/admin/invite", page(admin.invite_client, admin=True), methods=["POST"]),
        Route("/login/{token}", auth.login_page),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", page(auth.logout), methods=["POST"]),
        Route("/healthz", _health),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        titles: Mapping[int, tuple[str, str]] = {
            404: (_("Not found"), _("There is nothing here that you can see.")),
            405: (_("Not allowed"), _("This address does not take that kind of request.")),
        }
        title, text = titles.get(code, (_("Something went wrong"), _("Please try again.")))
        return plain(web, code, title, text)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("a web page failed: %s", type(exc).__name__)
        return plain(web, 500, _("Something went wrong"), _("Nothing was shown. Please try again."))

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.web = web
    app.add_middleware(SecurityHeaders)
    return app


async def _health(_request: Request) -> Response:
    return Response('{"ok": true}', media_type="application/json")
