"""The dashboard in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
Playwright, against the real bot with its dashboard started by post_init and the Bot API
fake. A therapist signs in from a /web link, finds their client, opens the chart, acknowledges
an alert (the database and the Telegram alert message both follow) and logs a session; a
second therapist gets 404 for that client; a form without its CSRF token is refused; a used
or expired link is refused; the session cookie has its flags; an admin signs in with
`rapport web link` and invites a client with a QR code. Screenshots of each page go to the
test's tmp dir (`screenshots/`); RAPPORT_SCREENSHOTS=DIR writes them there too (the README's
docs/images/caseload.png comes from here).

Without Chromium or Playwright the tests skip and say so; with RAPPORT_REQUIRE_BROWSER=1
(.ci/run sets it) they fail instead, so CI always runs them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store.models import Alert, AlertState, SessionLog
from tests.botapi import FakeBotAPI, FakeUser
from tests.rig import Rig, answer_checkin, eventually, join, link, start_rig
from tests.test_web import free_port, web_link

CHROMIUM = Path(os.environ.get("RAPPORT_CHROMIUM", "/usr/bin/chromium"))
PHONE = {"width": 390, "height": 844}

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]


def _missing() -> str | None:
    if async_playwright is None:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    missing = _missing()
    if missing:
        if os.environ.get("RAPPORT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here, but {missing}")
        pytest.skip(f"browser tests need Chromium and Playwright: {missing}")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def web_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        FakeBotAPI() as fake,
        start_rig(
            fake,
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}",
            web_port=free_port(),
            web_listen="127.0.0.1",
        ) as started,
    ):
        yield started


class Shots:
    """Screenshots with the test's output, and in RAPPORT_SCREENSHOTS when set."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "screenshots"
        self.dir.mkdir()
        extra = os.environ.get("RAPPORT_SCREENSHOTS")
        self.extra = Path(extra) if extra else None

    async def take(self, page: Page, name: str, **options: Any) -> Path:
        path = self.dir / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True, **options)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)
        return path


async def _signed_in(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    base = url.split("/login/")[0]
    context = await browser.new_context(viewport={"width": 1200, "height": 900}, base_url=base)
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/$"))
    return context, page


async def _alert_for(rig: Rig, therapist: FakeUser, client: FakeUser, client_id: Any) -> Any:
    for _ in range(3):  # the usual: at the ceiling
        await answer_checkin(rig, client, client_id, ["10", "10", "10", "10", "No"])
    await answer_checkin(rig, client, client_id, ["8", "5", "8", "8", "A little"])
    return await therapist.wait_for_message(contains="Possible rupture", timeout=20)


async def test_a_therapist_works_through_the_dashboard(
    web_rig: Rig, browser: Browser, tmp_path: Path
) -> None:
    rig = web_rig
    shots = Shots(tmp_path)
    ada_id, ada_token = await rig.add_therapist("Therapist Ada")
    _bo_id, bo_token = await rig.add_therapist("Therapist Bo")
    kim_id, kim_token = await rig.invite(ada_id, label="Client Kim")
    _lee_id, lee_token = await rig.invite(ada_id, label="Client Lee")
    ada, bo = rig.fake.user(5301), rig.fake.user(5302)
    kim, lee = rig.fake.user(6301), rig.fake.user(6302)
    await link(ada, ada_token)
    await link(bo, bo_token)
    await join(kim, kim_token)
    await join(lee, lee_token)
    await answer_checkin(rig, lee, _lee_id, ["9", "10", "9", "10", "No"], then=timedelta(days=1))
    alert = await _alert_for(rig, ada, kim, kim_id)
    assert alert.buttons == ["Acknowledge", "Snooze 1 day", "History", "Why?"]

    # Signing in from the bot's /web link; the session cookie's flags.
    url = await web_link(ada)
    context, page = await _signed_in(browser, url)
    [cookie] = [c for c in await context.cookies() if c["name"] == "rapport_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on 127.0.0.1; https sets Secure
    assert cookie["path"] == "/"

    # The caseload: both clients, Kim's open alert first.
    await page.get_by_role("heading", name="Your caseload").wait_for()
    rows = page.locator("table.caseload tbody tr")
    assert await rows.count() == 2
    assert "Client Kim" in await rows.nth(0).inner_text()
    assert await page.locator("svg.spark").count() == 2
    await shots.take(page, "caseload")
    phone = await context.new_page()
    await phone.set_viewport_size(PHONE)
    await phone.goto(page.url)
    await shots.take(phone, "caseload-phone")
    # The keyboard reaches the skip link first.
    await phone.keyboard.press("Tab")
    assert await phone.evaluate("document.activeElement.textContent") == "Skip to the content"
    await phone.close()

    # Sorting and filtering (a plain GET form).
    await page.get_by_label("Sort by").select_option("label")
    await page.get_by_label("Show").select_option("alerts")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(re.compile(r"sort=label"))
    assert await page.locator("table.caseload tbody tr").count() == 1

    # The alerts inbox.
    await page.get_by_role("link", name="Alerts").click()
    await page.get_by_role("heading", name="Open alerts").wait_for()
    assert "Client Kim" in await page.locator("section.alert").inner_text()
    await shots.take(page, "alerts")

    # The client page, with its chart.
    await page.get_by_role("link", name="Client Kim").first.click()
    await page.wait_for_url(re.compile(f"/clients/{kim_id}$"))
    chart = page.locator("svg.chart")
    await chart.wait_for()
    assert "alliance 29" in (await chart.locator("desc").text_content() or "")
    await shots.take(page, "client")

    # Acknowledge: the database and the Telegram alert message both follow.
    await page.locator("#alerts").get_by_role("button", name="Acknowledge").click()
    await page.get_by_text("Acknowledged.").wait_for()

    async def acknowledged() -> bool:
        async with rig.services.sessions() as session:
            states = (await session.scalars(select(Alert.state))).all()
        return bool(states) and all(s == AlertState.ACKNOWLEDGED for s in states)

    await eventually(acknowledged)
    await rig.fake.wait_for(
        lambda: rig.fake.find_message(ada.id, alert.message_id).buttons == [],  # type: ignore[union-attr]
        message="the alert message to lose its buttons",
    )
    assert "No open alerts." in await page.locator("#alerts").inner_text()

    # Log a session.
    await page.get_by_label("Log a session").fill("yesterday 15:30")
    await page.get_by_role("button", name="Log session").click()
    await page.get_by_text("Session logged.").wait_for()
    async with rig.services.sessions() as session:
        logged = (await session.scalars(select(SessionLog.client_id))).all()
    assert list(logged) == [kim_id]

    # A form posted without its CSRF token: refused, nothing changes.
    refused = await page.request.post(f"/clients/{kim_id}/session", form={"when": "today"})
    assert refused.status == 403
    async with rig.services.sessions() as session:
        assert len((await session.scalars(select(SessionLog))).all()) == 1

    # The link again (used): refused with a plain page.
    other = await browser.new_context()
    used = await other.new_page()
    answer = await used.goto(url)
    assert answer is not None and answer.status == 403
    assert "does not work" in await used.content()
    await shots.take(used, "link-refused")

    # A second therapist: 404 for Ada's client.
    bo_context, bo_page = await _signed_in(browser, await web_link(bo))
    answer = await bo_page.goto(f"/clients/{kim_id}")
    assert answer is not None and answer.status == 404
    assert "Client Kim" not in await bo_page.content()

    # An expired link: refused.
    late = await web_link(bo)
    rig.clock.advance(timedelta(minutes=11))
    answer = await used.goto(late)
    assert answer is not None and answer.status == 403

    # Sign out.
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", name="Signed out").wait_for()
    answer = await page.goto("/")
    assert answer is not None and answer.status == 401
    for opened in (context, other, bo_context):
        await opened.close()


async def test_an_admin_signs_in_from_the_command_line(
    web_rig: Rig, browser: Browser, tmp_path: Path
) -> None:
    rig = web_rig
    shots = Shots(tmp_path)
    added = await rig.cli("therapist", "add", "--name", "Admin Ada", "--admin")
    admin = rig.fake.user(5401)
    await link(admin, added["token"])
    made = await rig.cli("web", "link", "--therapist", added["therapist_id"])
    context, page = await _signed_in(browser, made["link"])
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    await page.get_by_role("heading", name="Practice admin").wait_for()
    assert "valid" in await page.locator("#config-h + p").inner_text()
    await shots.take(page, "admin")

    await page.get_by_label("Name").fill("Therapist Eve")
    await page.get_by_role("button", name="Add therapist").click()
    await page.get_by_role("heading", name="Therapist added").wait_for()
    assert "t.me/rapport_test_bot?start=" in await page.locator("p.link").inner_text()

    await page.goto("/admin")
    await page.get_by_label("Label (how the therapist knows them, e.g. initials)").fill("R.S.")
    await page.get_by_role("button", name="Invite").click()
    await page.get_by_role("heading", name="Client invited").wait_for()
    assert await page.get_by_role("img", name="QR code of the link").count() == 1
    await shots.take(page, "invite")

    await page.goto("/admin/audit?outcome=ok")
    await page.get_by_role("heading", name="Audit log").wait_for()
    text = await page.locator("table.audit").inner_text()
    assert "client.invite" in text and "therapist.add" in text and "web.login" in text
    await shots.take(page, "audit")
    await context.close()
