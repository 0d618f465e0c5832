"""The trend chart's worker process: charts arrive as PNG, and a worker that dies is replaced."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from handlers.charts import Charts
from handlers.delivery import Messenger
from handlers.texts import Texts
from store.alerts import PendingAlert
from store.history import Point, Trend
from tests.botapi import FakeBotAPI

PNG = b"\x89PNG\r\n\x1a\n"


def a_trend() -> Trend:
    start = datetime(2026, 3, 2, 18, tzinfo=UTC)
    points = [
        Point(at=start + timedelta(days=7 * week), alliance=34 - week, wellbeing=60 - 4 * week)
        for week in range(6)
    ]
    points.append(Point(at=start + timedelta(days=42), missed=True))
    return Trend(points=points, baseline=33, band=2)


async def test_a_chart_is_rendered_outside_the_bots_process_and_survives_a_killed_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    charts = Charts()
    try:
        first = await charts.render(a_trend())
        assert first.startswith(PNG)
        workers = list(charts._pool._processes) if charts._pool else []
        assert workers and os.getpid() not in workers
        os.kill(workers[0], signal.SIGKILL)  # out of memory, or an admin's kill
        again = await charts.render(a_trend())
        assert again.startswith(PNG)
        assert again == first  # the same chart from the new worker
        assert "the chart worker stopped" in caplog.text
        # Killed again while two charts are wanted at once: both arrive, from one new worker.
        assert charts._pool is not None
        os.kill(next(iter(charts._pool._processes)), signal.SIGKILL)
        both = await asyncio.gather(charts.render(a_trend()), charts.render(a_trend()))
        assert both == [first, first]
        assert len(multiprocessing.active_children()) == 1  # one new worker, not one each
    finally:
        await charts.close()
    assert multiprocessing.active_children() == []


def test_the_bots_own_process_does_not_load_matplotlib() -> None:
    """matplotlib is about 40 MB of memory: only the chart worker imports it."""
    probe = (
        "import sys, bot.app, bot.cli; print(sorted(m for m in sys.modules if 'matplotlib' in m))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


async def test_an_alert_goes_out_without_its_chart_when_the_chart_cannot_be_drawn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = replace(a_trend(), alliance_max="forty")  # type: ignore[arg-type]
    charts = Charts()
    async with FakeBotAPI() as fake:
        therapist = fake.user(5301)
        therapist.open_chat()
        bot = fake.make_bot()
        await bot.initialize()
        try:
            assert await charts.render(broken) is None
            assert "a chart could not be drawn" in caplog.text
            alert = PendingAlert(
                alert_id=uuid.uuid4(),
                client_id=uuid.uuid4(),
                therapist_chat_id=therapist.id,
                client_label="Client Kim",
                rule="drop",
                severity="warn",
                reason="alliance fell",
                trend=broken,
            )
            outcome, sent = await Messenger(bot, Texts(), charts).send_alerts([alert])
            assert outcome == "sent" and sent is not None
            assert therapist.last_message.photo is None
            assert "Client Kim" in therapist.last_message.content
            assert (await charts.render(a_trend()) or b"").startswith(PNG)  # still drawing
        finally:
            await charts.close()
            await bot.shutdown()
