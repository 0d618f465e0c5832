"""The trend chart's worker process: charts arrive as PNG, and a worker that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from handlers.charts import Charts
from store.history import Point, Trend

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
        assert charts._pool is not None and len(charts._pool._processes) == 1
    finally:
        await charts.close()
    assert charts._pool is None


def test_the_bots_own_process_does_not_load_matplotlib() -> None:
    """matplotlib is about 40 MB of memory: only the chart worker imports it."""
    probe = (
        "import sys, bot.app, bot.cli; print(sorted(m for m in sys.modules if 'matplotlib' in m))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
