"""The practice admin's commands as an admin runs them: a real `rapport` process on a real
database, with the data put there through the store as the bot would."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import func, select

from alliance.detectors import DetectorSettings, parse_settings
from bot.config import PracticeConfig, load
from store import people
from store.crypto import load_keyring
from store.db import create_engine, session_factory, transaction
from store.models import Alert, Client
from store.vault import Vault
from tests.conftest import Database
from tests.factories import NOW, TTL, team
from tests.test_store_admin import CLIENT_TG, COMMENT, LABEL, _checkin, _stored

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "rapport.example.toml"


def rapport(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    base.update(RAPPORT_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env=base,
        input=stdin,  # a pipe, never a terminal
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@asynccontextmanager
async def practice(tmp_path: Path, *, init: bool = True) -> AsyncIterator[tuple[Database, Vault]]:
    """The database and keys that `rapport init` created in tmp_path, opened in this process."""
    if init:
        assert rapport(tmp_path, "init").returncode == 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'rapport.db'}"
    engine = create_engine(url)
    try:
        database = Database("sqlite", url, engine, session_factory(engine))
        yield database, Vault(load_keyring(tmp_path / "data" / "rapport.key"))
    finally:
        await engine.dispose()


async def _clients(tmp_path: Path) -> int:
    async with practice(tmp_path, init=False) as (database, _), database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Client)) or 0)


# --- config --------------------------------------------------------------------------------


def test_the_example_config_is_valid_and_shows_every_setting() -> None:
    loaded = load(EXAMPLE)
    assert set(loaded.instruments) >= {"alliance", "who5"} and loaded.quiet is not None
    assert loaded.config.checkins.default_template in loaded.templates
    text = EXAMPLE.read_text()
    raw = tomllib.loads(text)

    def shown(key: str) -> bool:  # set, or shown commented out with an example value
        return f"\n{key} = " in text or f"\n# {key} = " in text

    for name, info in PracticeConfig.model_fields.items():
        assert f"[{name}]" in text or f"[{name}." in text, name
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            missing = []
            for key, field in model.model_fields.items():
                inner = field.annotation
                if isinstance(inner, type) and issubclass(inner, BaseModel):  # a [name.key] table
                    assert f"[{name}.{key}]" in text, f"[{name}.{key}]"
                    missing += [f"{key}.{k}" for k in inner.model_fields if not shown(k)]
                elif not shown(key):
                    missing.append(key)
            assert missing == [], f"[{name}] lacks {missing}"
    assert {"texts", "quiet_hours", "templates"} <= raw.keys()
    detectors = [f.name for f in dataclasses.fields(DetectorSettings)]
    assert [key for key in detectors if not shown(key)] == []
    # What is commented out is written correctly too: uncommented, it is accepted.
    section = text[text.index("[detectors]") : text.index("[retention]")]
    uncommented = "\n".join(
        line.removeprefix("# ") for line in section.splitlines() if re.match(r"# \w+ = ", line)
    )
    every = parse_settings(tomllib.loads(uncommented), "example")
    assert every.low_alliance_cutoff == 36 and "de" in every.negations


def test_retention_can_be_turned_off_and_must_warn_before_it_erases(tmp_path: Path) -> None:
    off = tmp_path / "off.toml"
    off.write_text("[retention]\ninactive_days = 0\n")
    assert load(off).config.retention.inactive_days is None
    bad = tmp_path / "bad.toml"
    bad.write_text("[retention]\ninactive_days = 40\nwarn_days = 60\n")
    checked = rapport(tmp_path, "config", "check", str(bad))
    assert checked.returncode == 1
    assert f"{bad}: retention: warn_days (60) must be shorter than inactive_days (40)" in (
        checked.stdout
    )
    short = tmp_path / "short.toml"
    short.write_text("[retention]\ninactive_days = 7\n")
    assert (
        "retention.inactive_days: 7 days is too short"
        in rapport(tmp_path, "config", "check", str(short)).stdout
    )


def test_config_check_lists_every_problem_even_when_the_default_file_is_broken(
    tmp_path: Path,
) -> None:
    (tmp_path / "rapport.toml").write_text(
        "[practice]\ntimezone = 'Mars/Base'\n[invites]\nttl_days = 0\n[practise]\nname = 'x'\n"
    )
    broken = rapport(tmp_path, "config", "check")
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.splitlines() == [
        "rapport.toml: practice.timezone: unknown time zone 'Mars/Base': use an IANA name such "
        "as Europe/Berlin",
        "rapport.toml: invites.ttl_days: Input should be greater than or equal to 1",
        "rapport.toml: practise: unknown setting; remove it or check its spelling",
        "3 problem(s): Rapport does not start until they are fixed.",
    ]

    later = tmp_path / "later.toml"
    later.write_text(
        "[checkins]\ndefault_template = 'weekly'\n"
        "[texts.en]\npaused = 'until {when}'\n"
        "[quiet_hours]\nstart = '21:00'\nend = '21:00'\n"
        "[templates.weekly]\n[[templates.weekly.rules]]\nkind = 'weekly'\n"
        "weekdays = ['Mon']\nat = '09:00'\ninstruments = ['alliance']\n"
    )
    result = rapport(tmp_path, "config", "check", str(later), "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    keys = [p.split(": ")[1] for p in problems]
    assert keys == [
        "texts.en.paused",
        "templates.weekly.rules[0].weekdays[0]",
        "quiet_hours.end",
    ], problems
    assert all(p.startswith(f"{later}: ") for p in problems)

    good = rapport(tmp_path, "config", "check", str(EXAMPLE))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[:4] == [
        f"OK: {EXAMPLE} is valid.",
        "  instruments: alliance, who5",
        "  templates: fortnightly, standard, weekly-post-session",
        "  languages: de, en, es",
    ]


# --- export, erasure, audit ----------------------------------------------------------------


async def test_export_both_formats_and_a_pseudonymised_research_export(tmp_path: Path) -> None:
    async with practice(tmp_path) as (database, vault):
        made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
        done = await _checkin(
            database, vault, made.client.id, [8, 4, 9, 9, 1], at=NOW, comment=COMMENT
        )
        missed = await _checkin(database, vault, made.client.id, [], at=NOW + timedelta(days=2))
        stored = await _stored(database, vault, done)

    client = str(made.client.id)
    as_csv = rapport(tmp_path, "export", "--client", client, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {
        f"{r['instrument']}/{r['item']}": int(r["value"]) for r in rows if r["instrument"]
    } == stored
    assert [(r["checkin"], r["item"], r["value"]) for r in rows if not r["instrument"]] == [
        (str(done), "comment", COMMENT),
        (str(missed), "", ""),
    ]

    out = tmp_path / "client.json"
    written = rapport(tmp_path, "export", "--client", client, "--out", str(out))
    assert written.returncode == 0 and "Exported 1 client(s)" in written.stdout
    assert out.stat().st_mode & 0o077 == 0
    doc = json.loads(out.read_text())
    assert doc["client"]["label"] == LABEL and doc["checkins"][0]["comment"] == COMMENT
    again = rapport(tmp_path, "export", "--client", client, "--out", str(out))
    assert again.returncode == 1 and "exists already" in again.stderr

    codes = []
    for run in ("first", "second"):
        folder = tmp_path / run
        result = rapport(
            tmp_path, "export", "--all", "--format", "csv", "--pseudonymise", "--out", str(folder)
        )
        assert result.returncode == 0, result.stderr
        text = (folder / "checkins.csv").read_text()
        for secret in (LABEL, str(CLIENT_TG), COMMENT, client, str(done)):
            assert secret not in text
        codes.append({r["client"] for r in csv.DictReader(io.StringIO(text))})
    assert codes[0] == codes[1] and len(codes[0]) == 1

    audit = ok_json(rapport(tmp_path, "audit", "--client", client, "--json"))
    exports = [e for e in audit["events"] if e["action"] == "client.export"]  # type: ignore[union-attr]
    assert [e["detail"] for e in exports] == [
        "format=csv",
        "format=json",
        "format=csv pseudonymised",
        "format=csv pseudonymised",
    ]


async def test_erase_asks_first_and_leaves_only_the_audit_row(tmp_path: Path) -> None:
    async with practice(tmp_path) as (database, vault):
        made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
        await _checkin(database, vault, made.client.id, [8, 4, 9, 9, 1], at=NOW, comment=COMMENT)
    client = str(made.client.id)

    refused = rapport(tmp_path, "erase", "--client", client, stdin="erase\n")
    assert refused.returncode == 1
    assert "standard input is not a terminal; add --yes" in refused.stderr
    assert await _clients(tmp_path) == 1

    erased = ok_json(rapport(tmp_path, "erase", "--client", client, "--yes", "--json"))
    assert erased == {"client_id": client, "erased": True}
    assert await _clients(tmp_path) == 0
    log = rapport(tmp_path, "audit", "--client", client)
    assert log.returncode == 0
    lines = log.stdout.splitlines()
    assert f"admin  client.erase  client {client}  ok" in lines[-1]
    for secret in (LABEL, COMMENT, str(CLIENT_TG)):
        assert secret not in log.stdout


async def test_reassign_then_deactivate_retention_and_stats(tmp_path: Path) -> None:
    async with practice(tmp_path) as (database, vault):
        made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
        await _checkin(database, vault, made.client.id, [3, 3, 3, 3, 2], at=NOW)
        async with transaction(database.sessions) as session:
            raised = await session.scalar(select(func.count()).select_from(Alert))
            bea, _ = await people.add_therapist(
                session, vault, name="Therapist Bea", is_admin=False, now=NOW, invite_ttl=TTL
            )
    leaving = str(made.therapist.id)

    refused = rapport(tmp_path, "therapist", "deactivate", "--therapist", leaving)
    assert refused.returncode == 1
    assert "still has 1 client(s)" in refused.stderr and "reassign them first" in refused.stderr

    moved = ok_json(
        rapport(
            tmp_path,
            "client",
            "reassign",
            "--client",
            str(made.client.id),
            "--therapist",
            str(bea.id),
            "--json",
        )
    )
    assert raised and moved["alerts_moved"] == raised and moved["to_therapist"] == str(bea.id)
    gone = rapport(tmp_path, "therapist", "deactivate", "--therapist", leaving)
    assert gone.returncode == 0, gone.stderr
    assert "no active practice admin" in gone.stdout

    dry = ok_json(rapport(tmp_path, "retention", "run", "--dry-run", "--json"))
    assert dry["enabled"] is True and dry["inactive_days"] == 365 and dry["warned"] == []

    stats = ok_json(rapport(tmp_path, "stats", "--json"))
    assert stats["clients"]["active"] == 1  # type: ignore[index]
    assert stats["therapists"] == {"active": 1, "deactivated": 1}
    assert stats["median_hours_to_acknowledge"] is None
    assert sum(stats["open_alerts_by_rule"].values()) == raised  # type: ignore[union-attr]
