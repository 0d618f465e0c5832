"""The trend chart sent with an alert and with /history, as PNG bytes from a worker process
(the drawing itself is handlers.chart_drawing)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from store.history import Trend

log = logging.getLogger(__name__)


class Charts:
    """Renders charts in one worker process, started at the first chart.

    A chart costs about 100 ms of CPU in matplotlib, which holds the GIL: in the bot's own
    process (even in a thread) every client's tap would wait behind it. The worker is
    spawned, not forked, since the bot's process runs threads; a worker that dies (killed,
    out of memory) is replaced at the next chart.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def render(self, trend: Trend) -> bytes | None:
        """The chart as PNG, or None when it could not be drawn: the message it belongs to
        (an alert, a history) goes out without it rather than not at all."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            if self._closed:
                return None
            pool = self._pool or self._start()
            try:
                return await loop.run_in_executor(pool, _draw, trend)
            except BrokenProcessPool:
                log.warning("the chart worker stopped (attempt %d); starting another", attempt)
                if self._pool is pool:  # not yet replaced by a chart drawn alongside this one
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            except Exception as exc:
                log.error("a chart could not be drawn: %s", type(exc).__name__)
                return None
        return None

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _start(self) -> ProcessPoolExecutor:
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool


def _draw(trend: Trend) -> bytes:
    """The worker's side: matplotlib is imported there, at the first chart."""
    from handlers.chart_drawing import render

    return render(trend)
