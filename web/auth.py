"""Signing in with a one-time link, and out.

Opening the link shows a page with one button: only pressing it uses the link. So a link
preview, a virus scanner or a browser's prefetch that fetches the address does not use it
up. The sign-in form carries a double-submit token (a SameSite=Strict cookie set with the
page), so another site cannot sign a browser in to someone else's session.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.requests import Request
from starlette.responses import Response

from store import websessions
from store.db import interactive, transaction
from web.app import COOKIE, LOGIN_COOKIE, Visit, Web, plain, render, see_other

log = logging.getLogger(__name__)

REFUSED_TITLE = "This link does not work"
REFUSED_TEXT = (
    "This sign-in link has been used already, has expired, or is not complete. Each link "
    "works once, for 10 minutes. Send /web to the Rapport bot in Telegram for a new one."
)


def _refused(web: Web) -> Response:
    return plain(web, 403, REFUSED_TITLE, REFUSED_TEXT)


async def login_page(request: Request) -> Response:
    web: Web = request.app.state.web
    token = request.path_params["token"]
    services = web.services
    async with transaction(services.sessions) as session:
        usable = await websessions.login_usable(session, token, services.clock())
    if not usable:
        log.info("a web sign-in link was refused")
        return _refused(web)
    nonce = secrets.token_urlsafe(24)
    response = render(web, "login.html", token=token, nonce=nonce)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=int(websessions.LOGIN_TTL.total_seconds()),
        path="/login",
        secure=web.secure,
        httponly=True,
        samesite="strict",
    )
    return response


async def login(request: Request) -> Response:
    web: Web = request.app.state.web
    form = await request.form(max_files=0, max_fields=8)
    token, nonce = form.get("token"), form.get("nonce")
    expected = request.cookies.get(LOGIN_COOKIE)
    if not isinstance(token, str) or not isinstance(nonce, str) or not expected:
        return _refused(web)
    if not hmac.compare_digest(nonce.encode(), expected.encode()):
        log.warning("refused a web sign-in form without its double-submit token")
        return _refused(web)
    services = web.services
    with interactive():
        async with transaction(services.sessions) as session:
            started = await websessions.redeem_login(session, token, services.clock())
    if started is None:
        log.info("a web sign-in link was refused")
        return _refused(web)
    response = see_other("/")
    response.set_cookie(
        COOKIE,
        started.token,
        max_age=int(websessions.SESSION_TTL.total_seconds()),
        path="/",
        secure=web.secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(visit: Visit) -> Response:
    cookie = visit.request.cookies.get(COOKIE, "")
    await websessions.sign_out(visit.session, cookie, visit.now)
    response = plain(
        visit.web,
        200,
        "Signed out",
        "You are signed out. Send /web to the Rapport bot for a new link when you need one.",
    )
    response.delete_cookie(COOKIE, path="/", secure=visit.web.secure, httponly=True)
    return response
