"""The `rapport` command imports only what a command uses: help loads no Telegram, SQLAlchemy
or alembic, and a command on an up-to-date database no Telegram and no alembic. Times are
measured in bench/cli_start.py, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from store.db import alembic_config, head_revisions

HEAVY = ("telegram", "sqlalchemy", "alembic")

# Runs `rapport ARGS...`, then prints which of HEAVY it imported (also after a SystemExit).
WRAPPER = """
import json, sys
from bot.cli import main
try:
    main(sys.argv[2:])
finally:
    heavy = sys.argv[1].split(",")
    print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
"""


def imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, ",".join(HEAVY), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return done, found


@pytest.mark.parametrize(
    "args",
    [["--help"], [], ["client", "--help"], ["backtest", "--help"], ["run", "--help"]],
    ids=["help", "no command", "client help", "backtest help", "run help"],
)
def test_help_imports_no_telegram_sqlalchemy_or_alembic(tmp_path: Path, args: list[str]) -> None:
    done, found = imported(tmp_path, *args)
    assert "usage: rapport" in done.stdout
    assert found == []


def test_a_command_on_an_up_to_date_database_loads_no_telegram_and_no_alembic(
    tmp_path: Path,
) -> None:
    done, found = imported(tmp_path, "init")  # creates the schema: alembic, once
    assert done.returncode == 0, done.stderr
    assert "alembic" in found and "telegram" not in found
    done, found = imported(tmp_path, "client", "list")
    assert done.returncode == 0, done.stderr
    assert "No clients yet" in done.stdout
    assert found == ["sqlalchemy"]


def test_the_newest_revisions_read_from_the_files_are_alembics() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert head_revisions() == frozenset(heads)
