"""Errors a person can read: the `rapport` command as a real process, with mistakes in its
input, says what is wrong in plain lines, all at once, and never prints a traceback or the
bot token."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.test_cli import rapport

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijklmnop"

# One or more problems for each stage of the check: the sections' own validation, the
# instrument files, instrument names, texts, templates, quiet hours and detector settings.
BROKEN = """
colour = "blue"

[practice]
timezone = "Mars/Olympus"

[invites]
ttl_days = 0

[checkins]
instruments = ["alliance", "nope"]
default_template = "missing"

[instruments]
directory = "no-such-folder"

[texts.en]
no_such_text = "x"

[quiet_hours]
start = "25:00"
end = "08:00"

[templates.broken]
description = "a rule of an unknown kind"
[[templates.broken.rules]]
kind = "fortnightly"

[detectors]
missed_in_a_row = 0
"""

EXPECTED = [
    "colour: unknown setting",
    "practice.timezone:",
    "invites.ttl_days:",
    "instruments.directory:",
    "texts.en.no_such_text",
    "quiet_hours",
    "templates.broken",
    "missed_in_a_row must be at least 1",
]


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and 'File "' not in stderr, stderr
    assert TOKEN not in stderr and TOKEN.split(":")[1] not in stderr


def test_config_check_reports_every_problem_in_one_pass(tmp_path: Path) -> None:
    config = tmp_path / "rapport.toml"
    config.write_text(BROKEN)
    result = rapport(tmp_path, "config", "check", str(config))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    _no_traceback(output)
    missing = [needle for needle in EXPECTED if needle not in output]
    assert missing == [], output


def test_config_check_names_an_unknown_instrument_and_template_beside_other_problems(
    tmp_path: Path,
) -> None:
    config = tmp_path / "rapport.toml"
    config.write_text(
        '[invites]\nttl_days = 0\n\n[checkins]\ninstruments = ["nope"]\n'
        'default_template = "missing"\n'
    )
    result = rapport(tmp_path, "config", "check", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    for needle in ("invites.ttl_days", "unknown instrument 'nope'", "no template named 'missing'"):
        assert needle in output, output


def test_the_bot_refuses_to_start_on_a_broken_config_with_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "rapport.toml"
    config.write_text(BROKEN)
    result = rapport(tmp_path, "run", RAPPORT_CONFIG=str(config), RAPPORT_BOT_TOKEN=TOKEN)
    assert result.returncode == 1
    _no_traceback(result.stderr)
    assert [needle for needle in EXPECTED if needle not in result.stderr] == []


def test_backtest_of_a_directory_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    result = rapport(tmp_path, "backtest", str(folder))
    assert result.returncode == 1
    _no_traceback(result.stderr)
    assert result.stderr.strip().splitlines() == [
        f"rapport: {folder}: is a directory; give the CSV file in it (e.g. {folder}/checkins.csv)"
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections to it are refused


def test_run_with_the_bot_api_unreachable_says_so_in_one_line(tmp_path: Path) -> None:
    assert rapport(tmp_path, "init").returncode == 0
    api = f"http://127.0.0.1:{_closed_port()}"
    result = rapport(tmp_path, "run", RAPPORT_BOT_TOKEN=TOKEN, RAPPORT_TELEGRAM_API_URL=api)
    assert result.returncode == 1
    _no_traceback(result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"rapport: cannot reach the Telegram Bot API at {api}: ")
    assert "RAPPORT_TELEGRAM_API_URL" in line  # what to check
