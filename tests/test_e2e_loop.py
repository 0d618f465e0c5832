"""The whole loop through real HTTP: link a therapist, enrol a client, deliver a check-in, tap
through it, alert the therapist; then read the raw database for anything in plaintext."""

from __future__ import annotations

from sqlalchemy import text

from handlers.texts import DEFAULTS
from store.db import create_engine
from tests.botapi import FakeUser
from tests.rig import Rig, first_question, join, link

THERAPIST_TG = 730_001_234
CLIENT_TG = 730_009_876
OTHER_TG = 730_005_555
LABEL = "Rosalind Quimby"
COMMENT = "I felt rushed by the homework talk"


async def _answer_checkin(client: FakeUser, values: list[str]) -> None:
    """Press one button per item, waiting for each edit, as a person would."""
    for value in values:
        shown = client.last_message.message_id
        client.press_button(shown, value)
        await client.wait_for_message(predicate=lambda m, shown=shown: m.message_id == shown)


async def test_full_loop_alerts_only_the_assigned_therapist(rig: Rig) -> None:
    fake = rig.fake
    therapist, client, other = fake.user(THERAPIST_TG), fake.user(CLIENT_TG), fake.user(OTHER_TG)

    added = await rig.cli("therapist", "add", "--name", "Therapist Ada")
    assert added["link"] == f"https://t.me/{fake.bot_username}?start={added['token']}"
    other_added = await rig.cli("therapist", "add", "--name", "Therapist Bo")
    invited = await rig.cli(
        "client",
        "invite",
        "--therapist",
        added["therapist_id"],
        "--label",
        LABEL,
        "--timezone",
        "Europe/Berlin",
    )
    await link(therapist, added["token"])
    await link(other, other_added["token"])
    await join(client, invited["token"])

    listed = await rig.cli("client", "list")
    assert [(c["label"], c["status"]) for c in listed["clients"]] == [(LABEL, "active")]

    await rig.cli("checkin", "send", "--client", invited["client_id"])
    first = await first_question(rig, client)
    assert first.buttons == [str(v) for v in range(11)]

    await _answer_checkin(client, ["8", "4", "9", "9", "Yes"])  # low, and tension: pushed
    assert "Anything you'd like your therapist to know" in client.last_message.content
    client.send_text(COMMENT)
    await client.wait_for_message(contains="Thank you")

    alert = await therapist.wait_for_message(contains="Possible rupture", timeout=10)
    assert LABEL in alert.content and "30 of 40" in alert.content
    assert "alliance answers are low" in alert.content
    assert other.messages[-1].content == DEFAULTS["therapist_linked"]  # nothing after linking
    assert not any(LABEL in m.content for m in other.messages)

    await _assert_nothing_in_plaintext(rig)


async def _assert_nothing_in_plaintext(rig: Rig) -> None:
    secrets = [LABEL, COMMENT, "Therapist Ada", str(THERAPIST_TG), str(CLIENT_TG)]
    if rig.database_url.startswith("sqlite"):
        path = rig.data_dir / "rapport.db"
        raw = b"".join(
            p.read_bytes() for p in (path, path.with_name("rapport.db-wal")) if p.exists()
        )
        dump = raw.decode("latin-1")
    else:
        engine = create_engine(rig.database_url)
        async with engine.connect() as conn:
            tables = (
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                )
                .scalars()
                .all()
            )
            rows = []
            for table in tables:
                result = await conn.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))
                rows += result.scalars().all()
        await engine.dispose()
        dump = "\n".join(rows)
    for secret in secrets:
        assert secret not in dump, f"{secret!r} is stored in plaintext"
    engine = create_engine(rig.database_url)
    async with engine.connect() as conn:
        values = (await conn.execute(text("SELECT value_enc FROM answer"))).scalars().all()
    await engine.dispose()
    assert len(values) == 5
    for blob in values:
        assert len(blob) >= 1 + 16 + 12 + 16  # a sealed blob, not a stored digit
