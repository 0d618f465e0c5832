"""The `rapport` command as an admin runs it: a real process, real files, plain messages."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from store import audit
from store.crypto import load_keyring
from store.db import create_engine, migrate, session_factory, transaction


def rapport(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    base.update(RAPPORT_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_init_creates_a_private_key_file_and_is_idempotent(tmp_path: Path) -> None:
    first = ok_json(rapport(tmp_path, "init", "--json"))
    key_file = tmp_path / "data" / "rapport.key"
    assert first["key_file_created"] is True
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = load_keyring(key_file)
    second = ok_json(rapport(tmp_path, "init", "--json"))
    assert second["key_file_created"] is False
    assert load_keyring(key_file).active_id == ring.active_id


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_directory_and_database_files_are_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which new files are 0644
    try:
        ok_json(rapport(tmp_path, "init", "--json"))
        data = tmp_path / "data"
        db_file = data / "rapport.db"
        assert _mode(data) == 0o700
        assert _mode(db_file) == 0o600
        engine = create_engine(f"sqlite+aiosqlite:///{db_file}")  # as the bot opens it
        try:
            await migrate(engine)
            async with transaction(session_factory(engine)) as session:
                audit.record(session, actor_kind="admin", action="test.write")
            wal, shm = (db_file.with_name(f"rapport.db-{end}") for end in ("wal", "shm"))
            assert wal.stat().st_size > 0 and shm.exists()  # written, and still open
            assert {f.name: _mode(f) for f in (db_file, wal, shm)} == {
                "rapport.db": 0o600,
                "rapport.db-wal": 0o600,
                "rapport.db-shm": 0o600,
            }
        finally:
            await engine.dispose()
    finally:
        os.umask(previous)


def test_database_files_of_an_older_install_are_made_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        db_file = tmp_path / "rapport.db"
        with closing(sqlite3.connect(db_file)) as made:  # as SQLite left them before: 0644
            made.execute("CREATE TABLE t (x)")
        assert _mode(db_file) == 0o644
        create_engine(f"sqlite+aiosqlite:///{db_file}")
        assert _mode(db_file) == 0o600
    finally:
        os.umask(previous)


def test_init_refuses_a_new_key_when_data_exists(tmp_path: Path) -> None:
    rapport(tmp_path, "init")
    ok_json(rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada", "--json"))
    (tmp_path / "data" / "rapport.key").unlink()
    result = rapport(tmp_path, "init")
    assert result.returncode == 1
    assert "restore the key file from your backup" in result.stderr
    assert not (tmp_path / "data" / "rapport.key").exists()


def test_run_without_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = rapport(tmp_path, "run")
    assert result.returncode == 1
    assert "RAPPORT_BOT_TOKEN is not set" in result.stderr
    assert "@BotFather" in result.stderr and ".env" in result.stderr


def test_token_in_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RAPPORT_BOT_USERNAME=@practice_bot\n")
    rapport(tmp_path, "init")
    added = ok_json(rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada", "--json"))
    assert added["link"] == f"https://t.me/practice_bot?start={added['token']}"


def test_without_a_username_the_bare_token_and_a_hint_are_printed(tmp_path: Path) -> None:
    rapport(tmp_path, "init")
    result = rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada")
    assert result.returncode == 0, result.stderr
    assert (
        "Token: " in result.stdout and "https://t.me/<bot username>?start=<token>" in result.stdout
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "[practice]\ntimezone = 'Mars/Base'\n",
            "practice.timezone: unknown time zone 'Mars/Base'",
        ),
        ("[practise]\nname = 'x'\n", "practise: unknown setting; remove it or check its spelling"),
        (
            "[invites]\nttl_days = 0\n",
            "invites.ttl_days: Input should be greater than or equal to 1",
        ),
        ("[checkins]\ninstruments = ['srs']\n", "checkins.instruments: unknown instrument 'srs'"),
        ("[practice\n", "not valid TOML"),
    ],
)
def test_broken_config_names_file_key_and_fix(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "rapport.toml"
    config.write_text(content)
    result = rapport(tmp_path, "init")
    assert result.returncode == 1
    assert str(config.name) in result.stderr and expected in result.stderr


def test_rotation_and_status(tmp_path: Path) -> None:
    rapport(tmp_path, "init")
    therapist = ok_json(rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada", "--json"))
    ok_json(
        rapport(
            tmp_path,
            "client",
            "invite",
            "--therapist",
            str(therapist["therapist_id"]),
            "--label",
            "Client C",
            "--json",
        )
    )
    before = ok_json(rapport(tmp_path, "keys", "status", "--json"))
    rotated = ok_json(rapport(tmp_path, "keys", "rotate", "--json"))
    after = ok_json(rapport(tmp_path, "keys", "status", "--json"))
    old = before["keys"][0]["id"]  # type: ignore[index]
    assert rotated["rewrapped"] == 2
    assert {k["id"]: k["data_keys"] for k in after["keys"]} == {  # type: ignore[union-attr]
        old: 0,
        rotated["active_key"]: 2,
    }
    listed = ok_json(rapport(tmp_path, "client", "list", "--json"))
    assert [c["label"] for c in listed["clients"]] == ["Client C"]  # type: ignore[union-attr]


def test_checkin_for_a_client_who_has_not_joined_is_refused(tmp_path: Path) -> None:
    rapport(tmp_path, "init")
    therapist = ok_json(rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada", "--json"))
    client = ok_json(
        rapport(
            tmp_path, "client", "invite", "--therapist", str(therapist["therapist_id"]), "--json"
        )
    )
    result = rapport(tmp_path, "checkin", "send", "--client", str(client["client_id"]))
    assert result.returncode == 1
    assert "is invited: only clients who joined" in result.stderr
    bad = rapport(tmp_path, "checkin", "send", "--client", "nonsense")
    assert bad.returncode == 2 and "is not an id" in bad.stderr


SCHEDULE_CONFIG = """
[practice]
timezone = "Europe/Berlin"

[quiet_hours]
start = "21:00"
end = "08:00"

[templates.weekly]
[[templates.weekly.rules]]
kind = "weekly"
weekdays = ["tuesday"]
at = "09:00"
instruments = ["alliance"]

[templates.after-session]
[[templates.after-session.rules]]
kind = "after_session"
after_hours = 24
instruments = ["alliance"]
comment = true
"""


def test_schedule_show_set_and_sessions(tmp_path: Path) -> None:
    (tmp_path / "rapport.toml").write_text(SCHEDULE_CONFIG)
    rapport(tmp_path, "init")
    therapist = ok_json(rapport(tmp_path, "therapist", "add", "--name", "Therapist Ada", "--json"))
    client = ok_json(
        rapport(
            tmp_path,
            "client",
            "invite",
            "--therapist",
            str(therapist["therapist_id"]),
            "--schedule",
            "weekly",
            "--json",
        )
    )
    cid = str(client["client_id"])
    shown = ok_json(rapport(tmp_path, "schedule", "show", "--client", cid, "--json"))
    assert shown["template"] == "weekly" and shown["quiet_hours"] == "21:00-08:00"
    assert len(shown["next"]) == 5  # type: ignore[arg-type]
    for due in shown["next"]:  # type: ignore[union-attr]
        local = datetime.fromisoformat(due["local"])
        assert (local.strftime("%A %H:%M"), local.utcoffset() is not None) == (
            "Tuesday 09:00",
            True,
        )
        assert datetime.fromisoformat(due["utc"]) == local

    ok_json(
        rapport(
            tmp_path, "schedule", "set", "--client", cid, "--template", "after-session", "--json"
        )
    )
    empty = ok_json(rapport(tmp_path, "schedule", "show", "--client", cid, "--json"))
    assert empty["next"] == []  # after-session rules need a session first
    ok_json(
        rapport(
            tmp_path,
            "session",
            "recurring",
            "--client",
            cid,
            "--weekday",
            "thursday",
            "--at",
            "10:00",
            "--json",
        )
    )
    after = ok_json(rapport(tmp_path, "schedule", "show", "--client", cid, "--json"))
    first = datetime.fromisoformat(after["next"][0]["local"])  # type: ignore[index]
    assert first.strftime("%A %H:%M") == "Friday 10:00"  # 24 h after a Thursday 10:00 session

    bad = rapport(tmp_path, "schedule", "set", "--client", cid, "--template", "nightly")
    assert bad.returncode == 1 and "no template named 'nightly'" in bad.stderr
    wrong = rapport(tmp_path, "schedule", "quiet", "--client", cid, "--hours", "late")
    assert wrong.returncode == 1 and "HH:MM-HH:MM" in wrong.stderr
    ok_json(
        rapport(tmp_path, "schedule", "quiet", "--client", cid, "--hours", "22:00-07:00", "--json")
    )
    audit = ok_json(rapport(tmp_path, "audit", "--client", cid, "--json"))
    actions = [event["action"] for event in audit["events"]]  # type: ignore[index, union-attr]
    assert "session.recurring" in actions and "schedule.quiet" in actions
    ok_json(
        rapport(tmp_path, "session", "add", "--client", cid, "--at", "2026-03-03T10:00", "--json")
    )


def test_backtest_command_prints_flags_and_a_summary(tmp_path: Path) -> None:
    sample = Path(__file__).parent / "data" / "backtest_sample.csv"
    result = rapport(tmp_path, "backtest", str(sample))
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].startswith("client,checkin,")
    assert any(",risk,urgent," in row for row in rows) and len(rows) == 11
    assert "15 check-ins" in result.stderr and "10 flags" in result.stderr

    broken = tmp_path / "broken.csv"
    broken.write_text(sample.read_text().replace("2024-03-06T17:30:00+00:00", "yesterday", 1))
    failed = rapport(tmp_path, "backtest", str(broken))
    assert failed.returncode == 1 and "line " in failed.stderr and failed.stdout == ""
    skipped = rapport(tmp_path, "backtest", str(broken), "--skip-bad-rows", "--format", "json")
    assert skipped.returncode == 0 and "skipped line" in skipped.stderr
