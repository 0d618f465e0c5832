"""The dispatch settings of a process: RAPPORT_DISPATCH=false leaves dispatching to other
processes, RAPPORT_SEND_RATE sets how fast the bot starts messages itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import AIORateLimiter

from bot import config as practice_config
from bot.app import build_application, running
from bot.cli.setup import initialise
from bot.settings import Settings
from handlers.context import RapportApp
from tests.botapi import FakeBotAPI
from tests.rig import rig_settings


@asynccontextmanager
async def _bot(tmp_path: Path, **settings: Any) -> AsyncIterator[RapportApp]:
    """The real Application, started (no polling), with these settings."""
    async with FakeBotAPI() as fake:
        url = f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}"
        configured = rig_settings(fake, tmp_path, url, **settings)
        await initialise(configured)
        app = build_application(configured, practice_config.load(None))
        async with running(app):
            yield app


def _jobs(app: RapportApp) -> set[str]:
    assert app.job_queue is not None
    return {job.name for job in app.job_queue.jobs() if job.name}


async def test_a_process_with_dispatching_off_never_ticks(tmp_path: Path) -> None:
    async with _bot(tmp_path, dispatch=False) as app:
        services = app.bot_data.services
        assert services is not None
        services.kick()  # what an update that changes what is due does
        assert "dispatch" not in _jobs(app) and "dispatch-now" not in _jobs(app)


async def test_a_process_dispatches_by_default(tmp_path: Path) -> None:
    async with _bot(tmp_path) as app:
        assert "dispatch" in _jobs(app)


async def test_the_send_rate_is_the_rate_limiters_overall_rate(tmp_path: Path) -> None:
    async with _bot(tmp_path, send_rate=300) as app:
        limiter = app.bot.rate_limiter
        assert isinstance(limiter, AIORateLimiter)
        # PTB keeps the bot-wide bucket as an aiolimiter.AsyncLimiter
        assert limiter._base_limiter is not None
        assert limiter._base_limiter.max_rate == 300
        assert limiter._base_limiter.time_period == 1


def test_the_send_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="send_rate"):
        Settings(_env_file=None, send_rate=0)  # type: ignore[call-arg]
