"""The `rapport` command line: set up, run, and manage therapists, clients, check-ins and keys.

Each module here registers its own commands; `main` reports every error an admin can fix as
one plain line (or a list), never as a traceback.

Building the parser imports only the standard library: a command module imports what a
command uses inside the command, when it runs, so `rapport --help` answers at once and
`rapport client list` loads neither Telegram nor alembic (docs/performance.md;
tests/test_cli_imports.py checks it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from bot.cli import admin, backtest, keys, people, schedule, setup, web
from bot.cli.common import CliError, Env

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
    from pydantic import ValidationError

    from bot import config as practice_config
    from bot import logs
    from bot.settings import MissingToken, Settings

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
    except (CliError, MissingToken, ValueError) as exc:
        _fail(str(exc))
    except Exception as exc:
        if not isinstance(exc, _store_errors()):
            raise
        _fail(str(exc))


def _store_errors() -> tuple[type[Exception], ...]:
    """The store's errors an admin can act on, of the modules the command imported (a module
    it did not import cannot have raised one)."""
    found: list[type[Exception]] = []
    for module, name in (
        ("store.crypto", "CryptoError"),
        ("store.people", "NotFound"),
        ("store.checkins", "ClientUnavailable"),
    ):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, Exception):
            found.append(error)
    return tuple(found)


def _fail(message: str) -> NoReturn:
    print(f"rapport: {message}", file=sys.stderr)
    sys.exit(1)


def _setting_problem(error: Any) -> str:
    key = "RAPPORT_" + "_".join(str(p) for p in error["loc"]).upper()
    return f"{key}: {error['msg']}"
