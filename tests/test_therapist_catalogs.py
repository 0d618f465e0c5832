"""Therapist-facing texts go through the same catalogs as clients' texts: a practice's own
German catalog ([practice] locales) changes alerts, briefs and the dashboard, no code change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from bot.config import load
from handlers import alert_words, brief, i18n
from handlers.catalog_tool import template
from handlers.i18n import LOCALES
from store.alerts import PendingAlert
from store.briefs import BriefContent
from web.app import Web

GERMAN = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

msgid "{who} said there was tension between you in or since the last session"
msgstr "{who} sprach von Spannungen zwischen Ihnen in oder seit der letzten Sitzung"

msgid "Before your session with {who} ({when})"
msgstr "Vor Ihrer Sitzung mit {who} ({when})"

msgid "Open alerts"
msgstr "Offene Hinweise"
"""


@pytest.fixture
def german_staff(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "locales").mkdir()
    (tmp_path / "locales" / "de.po").write_text(GERMAN, encoding="utf-8")
    config = tmp_path / "rapport.toml"
    config.write_text('[practice]\nlanguage = "de"\nlocales = "locales"\n')
    texts = load(config).config.make_texts()
    i18n.staff.use(texts.catalogs, "de")
    yield
    i18n.staff.use(i18n.Catalogs(), "en")


def _tension() -> PendingAlert:
    return PendingAlert(
        alert_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        therapist_chat_id=1,
        client_label="Kim",
        rule="tension",
        severity="warn",
        reason="tension answered 2",
        evidence={"value": 2.0},
    )


def _brief(alerts: tuple[PendingAlert, ...]) -> BriefContent:
    return BriefContent(
        brief_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        therapist_chat_id=1,
        client_label="Kim",
        session_at=datetime(2026, 12, 8, 17, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
        since=None,
        alerts=alerts,
        records=(),
        trend=None,
    )


def _dashboard() -> str:
    web = Web(services=Any, bot=Any, base_url="", check_config=Any)  # type: ignore[arg-type]
    return web.environment.get_template("alerts.html").render(groups=[], path="/alerts")


def test_english_reads_as_before() -> None:
    assert alert_words.sentence(_tension(), "full") == (
        "Kim said there was tension between you in or since the last session."
    )
    assert brief.brief_text(_brief((_tension(),)), "full").startswith(
        "📋 Before your session with Kim (Tue 08 Dec, 18:00)"
    )
    assert "<h1>Open alerts</h1>" in _dashboard()


@pytest.mark.usefixtures("german_staff")
def test_a_practice_catalog_translates_alerts_briefs_and_the_dashboard() -> None:
    assert alert_words.sentence(_tension(), "full") == (
        "Kim sprach von Spannungen zwischen Ihnen in oder seit der letzten Sitzung."
    )
    text = brief.brief_text(_brief((_tension(),)), "full")
    # The date in the practice's language (Babel), the line from the practice's catalog.
    assert text.startswith("📋 Vor Ihrer Sitzung mit Kim (Di., 8. Dez., 18:00)")
    assert "• Kim sprach von Spannungen" in text
    assert "<h1>Offene Hinweise</h1>" in _dashboard()
    # What the practice did not translate stays English.
    assert "Skip to the content" in _dashboard()


def test_every_therapist_text_is_in_every_shipped_catalog() -> None:
    """The German and Spanish catalogs carry every therapist msgid of today's code and
    templates (an empty msgstr reads English until someone translates it)."""
    fresh = {str(m.id) for m in template() if m.id and not m.context}
    assert len(fresh) > 250
    assert "Open alerts" in fresh and "Before your session with {who} ({when})" in fresh
    for code in ("de", "es"):
        with (LOCALES / code / "LC_MESSAGES" / "rapport.po").open("rb") as handle:
            catalog = read_po(handle, locale=code)
        have = {str(m.id) for m in catalog if m.id and not m.context}
        assert fresh - have == set(), code
