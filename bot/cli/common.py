"""What every `rapport` command shares: the environment, output, ids and one transaction."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at import time: `rapport --help` builds every command's parser
# from here, and each command imports what it uses when it runs (docs/performance.md).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot import config as practice_config
    from bot.settings import Settings
    from store.vault import Vault


class CliError(Exception):
    """A problem the admin can fix; printed without a traceback."""


@dataclass(frozen=True)
class Env:
    settings: Settings
    loaded: practice_config.Loaded


Work = Callable[["AsyncSession", "Vault"], Awaitable[dict[str, Any]]]


def uuid_arg(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an id (ids look like 8-4-4-4-12 hex)"
        ) from None


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, default=str))
    else:
        print("\n".join(lines))


async def with_session(env: Env, work: Work) -> dict[str, Any]:
    """Run `work` in one transaction on a migrated database: all of it commits, or none."""
    from bot.vault import load_vault
    from store.db import create_engine, migrate, session_factory, transaction

    engine = create_engine(env.settings.resolved_database_url)
    try:
        await migrate(engine)
        vault = load_vault(env.settings)
        async with transaction(session_factory(engine)) as session:
            return await work(session, vault)
    finally:
        await engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, uuid.UUID | datetime | Path) else v) for k, v in data.items()
    }
