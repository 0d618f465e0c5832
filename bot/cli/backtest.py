"""`rapport backtest`: replay a practice's own check-ins through the detectors, to choose
thresholds. Needs no database and no keys: the input is a CSV file the practice provides
(for example from `rapport export --format csv`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.cli.common import CliError, Env


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay check-ins from a CSV file through the detectors",
        description=(
            "Input: UTF-8 CSV with the header client,checkin,due_at,answered_at,instrument,item,"
            "value. Flags go to standard output, the summary to standard error."
        ),
    )
    p.add_argument("input", type=Path, help="the CSV file")
    p.add_argument("--config", type=Path, help="a practice config file (detector settings)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format")
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="report bad rows and skip them instead of stopping",
    )
    p.set_defaults(handler=cmd_backtest, needs_config=False)


def cmd_backtest(env: Env, args: argparse.Namespace) -> None:
    from alliance.backtest import (
        BacktestError,
        render_csv,
        render_json_lines,
        render_summary,
        run_backtest,
    )
    from bot import config as practice_config

    loaded = practice_config.load(args.config or env.settings.resolved_config)
    try:
        text = args.input.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{args.input}: no such file") from None
    except IsADirectoryError:
        raise CliError(
            f"{args.input}: is a directory; give the CSV file in it "
            f"(e.g. {args.input / 'checkins.csv'})"
        ) from None
    except PermissionError:
        raise CliError(f"{args.input}: not allowed to read it (check its permissions)") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{args.input}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        result = run_backtest(
            text,
            loaded.instruments,
            loaded.detectors,
            skip_bad_rows=args.skip_bad_rows,
            language=loaded.config.practice.language,
            push=loaded.config.alerts.push.settings(),
        )
    except BacktestError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    if args.format == "json":
        sys.stdout.write(render_json_lines(result))
    else:
        sys.stdout.write(render_csv(result))
    for problem in result.problems:
        print(f"{args.input}: skipped {problem}", file=sys.stderr)
    print(render_summary(result), file=sys.stderr)
