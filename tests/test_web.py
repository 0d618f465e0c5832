"""The web dashboard over real HTTP, served by the running bot (post_init starts it in the
bot's event loop): signing in with a /web link, the session cookie, CSRF, another
therapist's client, and that no page is reachable without a session."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from store.models import Alert, AlertState, AuditEvent, SessionLog
from tests.botapi import FakeBotAPI, FakeUser
from tests.conftest import database_url
from tests.rig import Rig, answer_checkin, eventually, join, link, start_rig

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login/[A-Za-z0-9_-]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", "postgres"])
async def web_rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    """The real bot with its dashboard on a free port of 127.0.0.1."""
    async with (
        database_url(request.param, tmp_path) as url,
        FakeBotAPI() as fake,
        start_rig(fake, tmp_path, url, web_port=free_port(), web_listen="127.0.0.1") as started,
    ):
        yield started


def base(rig: Rig) -> str:
    url = rig.settings.web_base_url
    assert url is not None
    return url


async def web_link(user: FakeUser) -> str:
    """Send /web as the therapist; the link from the bot's answer."""
    user.send_text("/web")
    reply = await user.wait_for_message(contains="/login/")
    found = LINK.search(reply.content)
    assert found, reply.content
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """Open the link and press "Sign in", as a person would."""
    page = await client.get(url)
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert token and nonce
    return await client.post(
        "/login", data={"token": token.group(1), "nonce": nonce.group(1)}, follow_redirects=False
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def therapist_with_client(rig: Rig, user_id: int, label: str) -> tuple[FakeUser, uuid.UUID]:
    therapist_id, token = await rig.add_therapist(f"Therapist {label}")
    client_id, c_token = await rig.invite(therapist_id, label=label)
    therapist = rig.fake.user(user_id)
    await link(therapist, token)
    await join(rig.fake.user(user_id + 1000), c_token)
    return therapist, client_id


async def test_a_web_link_signs_in_once_with_a_safe_cookie(web_rig: Rig) -> None:
    rig = web_rig
    therapist, client_id = await therapist_with_client(rig, 7101, "Client Kim")
    url = await web_link(therapist)
    link_message = therapist.last_message
    assert "works once, for 10 minutes" in link_message.content
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        done = await sign_in(browser, url)
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookie = done.headers["set-cookie"]
        assert "rapport_session=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Max-Age=43200" in cookie and "Secure" not in cookie  # http: no Secure
        caseload = await browser.get("/")
        assert caseload.status_code == 200
        assert "Client Kim" in caseload.text and f"/clients/{client_id}" in caseload.text
        assert "default-src 'none'" in caseload.headers["content-security-policy"]
        assert caseload.headers["x-frame-options"] == "DENY"
        assert caseload.headers["cache-control"] == "no-store"
        # The same link again, in another browser: refused with a plain page.
        async with httpx.AsyncClient(base_url=base(rig)) as other:
            again = await other.get(url)
            assert again.status_code == 403 and "does not work" in again.text
            assert "rapport_session" not in again.headers.get("set-cookie", "")
            altered = await other.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
            assert altered.status_code == 403
        # Signing out ends the session on the server, not only in this browser.
        token = browser.cookies["rapport_session"]
        out = await browser.post("/logout", data={"csrf": csrf_of(caseload.text)})
        assert out.status_code == 200 and "signed out" in out.text
    async with httpx.AsyncClient(base_url=base(rig), cookies={"rapport_session": token}) as stale:
        assert (await stale.get("/")).status_code == 401
    async with rig.services.sessions() as session:
        actions = set((await session.scalars(select(AuditEvent.action))).all())
    assert {"web.link", "web.login", "web.logout", "clients.read"} <= actions


async def test_an_expired_link_is_refused(web_rig: Rig) -> None:
    rig = web_rig
    therapist, _ = await therapist_with_client(rig, 7111, "Client Lee")
    url = await web_link(therapist)
    rig.clock.advance(timedelta(minutes=10, seconds=1))
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        page = await browser.get(url)
        assert page.status_code == 403 and "has expired" in page.text


async def test_forms_need_their_csrf_token_and_clients_their_therapist(web_rig: Rig) -> None:
    rig = web_rig
    ada, ada_client = await therapist_with_client(rig, 7121, "Client Ann")
    _bo, bo_client = await therapist_with_client(rig, 7122, "Client Ben")
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        await sign_in(browser, await web_link(ada))
        page = await browser.get(f"/clients/{ada_client}")
        assert page.status_code == 200 and "Client Ann" in page.text
        # Another therapist's client: 404, the same as no such client, and audited.
        other = await browser.get(f"/clients/{bo_client}")
        assert other.status_code == 404 and "Client Ben" not in other.text
        assert (await browser.get(f"/clients/{uuid.uuid4()}")).status_code == 404
        forged = await browser.post(
            f"/clients/{bo_client}/session", data={"csrf": csrf_of(page.text), "when": ""}
        )
        assert forged.status_code == 404
        # A form without its token (or with another one) changes nothing.
        for data in ({"when": ""}, {"when": "", "csrf": "x" * 64}):
            refused = await browser.post(f"/clients/{ada_client}/session", data=data)
            assert refused.status_code == 403 and "refused" in refused.text
        logged = await browser.post(
            f"/clients/{ada_client}/session",
            data={"csrf": csrf_of(page.text), "when": "yesterday 15:30"},
            follow_redirects=True,
        )
        assert logged.status_code == 200 and "Session logged." in logged.text
    async with rig.services.sessions() as session:
        sessions = (await session.scalars(select(SessionLog.client_id))).all()
        refused = (
            await session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused"))
        ).all()
    assert list(sessions) == [ada_client]
    assert {(r.action, r.target_id) for r in refused} >= {
        ("history.read", bo_client),
        ("session.add", bo_client),
    }


async def test_no_page_without_a_session(web_rig: Rig) -> None:
    rig = web_rig
    therapist, client_id = await therapist_with_client(rig, 7131, "Client Cy")
    pages = ["/", "/alerts", f"/clients/{client_id}", "/admin", "/admin/audit"]
    posts = [
        f"/clients/{client_id}/{action}"
        for action in ("acknowledge", "snooze", "session", "recurring", "template", "quiet")
    ] + ["/admin/therapists", "/admin/invite", "/logout"]
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        for path in pages:
            answer = await browser.get(path)
            assert answer.status_code == 401, path
            assert "Client Cy" not in answer.text and "Send /web" in answer.text
        for path in posts:
            assert (await browser.post(path, data={"csrf": "x"})).status_code == 401, path
        browser.cookies.set("rapport_session", "A" * 43)
        assert (await browser.get("/")).status_code == 401
        # A therapist who is not an admin does not see the admin pages at all.
        await sign_in(browser, await web_link(therapist))
        assert (await browser.get("/")).status_code == 200
        assert (await browser.get("/admin")).status_code == 404
        assert (await browser.get("/admin/audit")).status_code == 404


async def test_rapport_web_link_prints_a_working_link(web_rig: Rig) -> None:
    rig = web_rig
    therapist_id, _token = await rig.add_therapist("Therapist Dee")
    result = await rig.cli("web", "link", "--therapist", str(therapist_id))
    assert result["therapist_id"] == str(therapist_id)
    assert result["link"].startswith(f"{base(rig)}/login/")
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        done = await sign_in(browser, result["link"])
        assert done.status_code == 303
        assert "Your caseload" in (await browser.get("/")).text


async def test_pausing_quiet_hours_and_regular_time_from_the_client_page(web_rig: Rig) -> None:
    rig = web_rig
    therapist, client_id = await therapist_with_client(rig, 7141, "Client Dee")
    client = rig.fake.user(7141 + 1000)
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        await sign_in(browser, await web_link(therapist))
        page = await browser.get(f"/clients/{client_id}")
        csrf = csrf_of(page.text)
        paused = await browser.post(
            f"/clients/{client_id}/pause", data={"csrf": csrf, "days": "7"}, follow_redirects=True
        )
        assert "Check-ins paused." in paused.text and "Resume check-ins" in paused.text
        told = await rig.fake.wait_for(  # sent before the page answered
            lambda: next((m for m in client.messages if "therapist paused" in m.content), None)
        )
        assert "until" in told.content
        wrong = await browser.post(
            f"/clients/{client_id}/quiet", data={"csrf": csrf, "own": "yes", "quiet": "late"}
        )
        assert wrong.status_code == 400 and "That did not work" in wrong.text
        quiet = await browser.post(
            f"/clients/{client_id}/quiet",
            data={"csrf": csrf, "own": "yes", "quiet": "21:30-08:00"},
            follow_redirects=True,
        )
        assert "quiet hours: 21:30-08:00 (the client's own)" in quiet.text
        regular = await browser.post(
            f"/clients/{client_id}/recurring",
            data={"csrf": csrf, "weekday": ["tuesday", "friday"], "at": "10:00"},
            follow_redirects=True,
        )
        assert "Regular session time saved." in regular.text
        assert "Before your session with Client Dee" in regular.text  # the brief, as it would go
        resumed = await browser.post(
            f"/clients/{client_id}/resume", data={"csrf": csrf}, follow_redirects=True
        )
        assert "Check-ins resumed." in resumed.text
    async with rig.services.sessions() as session:
        actions = [
            a
            for a in (
                await session.scalars(
                    select(AuditEvent.action).where(AuditEvent.target_id == client_id)
                )
            ).all()
        ]
    assert {"client.paused", "client.resumed", "schedule.quiet", "session.recurring"} <= set(
        actions
    )


async def test_changing_the_schedule_and_snoozing_an_alert_from_the_client_page(
    web_rig: Rig,
) -> None:
    rig = web_rig
    therapist, client_id = await therapist_with_client(rig, 7151, "Client Eve")
    client = rig.fake.user(7151 + 1000)
    for _ in range(3):  # the usual: at the ceiling
        await answer_checkin(rig, client, client_id, ["10", "10", "10", "10", "No"])
    await answer_checkin(rig, client, client_id, ["8", "5", "8", "8", "A little"])
    alert = await therapist.wait_for_message(contains="Possible rupture", timeout=20)
    async with httpx.AsyncClient(base_url=base(rig)) as browser:
        await sign_in(browser, await web_link(therapist))
        page = await browser.get(f"/clients/{client_id}")
        csrf = csrf_of(page.text)
        unknown = await browser.post(
            f"/clients/{client_id}/template", data={"csrf": csrf, "template": "nightly"}
        )
        assert unknown.status_code == 400
        assert "choose one of the practice&#39;s schedules" in unknown.text
        changed = await browser.post(
            f"/clients/{client_id}/template",
            data={"csrf": csrf, "template": "standard"},
            follow_redirects=True,
        )
        assert "Schedule changed." in changed.text and "schedule: standard" in changed.text
        snoozed = await browser.post(
            f"/clients/{client_id}/snooze", data={"csrf": csrf, "back": "alerts"}
        )
        assert snoozed.status_code == 303 and snoozed.headers["location"] == "/alerts"
        assert "Snoozed until" in (await browser.get("/alerts")).text

    async def snoozed_everywhere() -> bool:
        async with rig.services.sessions() as session:
            states = (await session.scalars(select(Alert.state))).all()
        return bool(states) and all(s == AlertState.SNOOZED for s in states)

    await eventually(snoozed_everywhere)
    await rig.fake.wait_for(
        lambda: rig.fake.find_message(therapist.id, alert.message_id).buttons == [],  # type: ignore[union-attr]
        message="the alert message to lose its buttons",
    )
    async with rig.services.sessions() as session:
        actions = set(
            (
                await session.scalars(
                    select(AuditEvent.action).where(AuditEvent.target_id == client_id)
                )
            ).all()
        )
    assert {"schedule.set", "alert.snooze"} <= actions
