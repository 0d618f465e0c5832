"""The `rapport` command line: set up, run, and manage therapists, clients, check-ins and keys.

Each module here registers its own commands; `main` reports every error an admin can fix as
one plain line (or a list), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from bot import config as practice_config
from bot import logs
from bot.cli import admin, backtest, keys, people, schedule, setup, web
from bot.cli.common import CliError, Env
from bot.settings import MissingToken, Settings
from store import checkins
from store import people as store_people
from store.crypto import CryptoError

COMMAND_MODULES = (setup, people, schedule, keys, admin, backtest, web)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="rapport",
        description="Rapport: alliance check-ins between therapy sessions, over Telegram.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        sys.exit(2)
    try:
        settings = Settings()
        # A command may opt out of loading the config first (`config check` reads it itself).
        config_file = settings.resolved_config if getattr(args, "needs_config", True) else None
        env = Env(settings, practice_config.load(config_file))
        logs.configure(settings.log_level)
        args.handler(env, args)
    except ValidationError as exc:
        _fail("settings: " + "; ".join(_setting_problem(e) for e in exc.errors()))
    except practice_config.ConfigError as exc:
        _fail("the practice config has problems:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except (
        CliError,
        CryptoError,
        MissingToken,
        store_people.NotFound,
        checkins.ClientUnavailable,
        ValueError,
    ) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    print(f"rapport: {message}", file=sys.stderr)
    sys.exit(1)


def _setting_problem(error: Any) -> str:
    key = "RAPPORT_" + "_".join(str(p) for p in error["loc"]).upper()
    return f"{key}: {error['msg']}"
