"""What the trend chart costs, and where: memory of the bot's process with and without
matplotlib, the chart worker's memory, and CPU per chart in the worker and in the bot.

Run: .venv/bin/python -m bench.chart_worker [--charts 20]

Each memory figure is a fresh Python process's peak resident set (ru_maxrss) after its imports:
the bot's (bot.app and the CLI, as `rapport run` imports them), the same plus matplotlib's
pyplot (as before charts moved out), and the chart worker (VmRSS read from /proc after it has
drawn --charts charts). CPU per chart: the worker's own CPU time (from /proc), and the bot's
process time spent waiting for it. It measures and prints markdown; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from handlers.charts import Charts
from store.history import Point, Trend

PEAK = "import resource, sys; {imports}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
BOT = "import bot.app, bot.cli"
PYPLOT = "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"


def peak_kib(imports: str) -> int:
    code = PEAK.format(imports=imports)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout)


def proc(pid: int) -> tuple[int, float]:
    """A process's resident memory (KiB) and CPU seconds so far."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def a_trend() -> Trend:
    start = datetime(2026, 3, 2, 18, tzinfo=UTC)
    points = [
        Point(at=start + timedelta(days=7 * week), alliance=34 - week % 4, wellbeing=60 - week)
        for week in range(12)
    ]
    return Trend(points=points, baseline=33, band=2)


async def charts_cost(count: int) -> tuple[float, int, float, float]:
    """Seconds to the first chart (worker start-up), worker KiB, and per chart: worker CPU s,
    bot process CPU s."""
    charts = Charts()
    try:
        started = time.perf_counter()
        await charts.render(a_trend())
        first = time.perf_counter() - started
        assert charts._pool is not None, "the first chart starts the worker"
        pid = next(iter(charts._pool._processes))
        _, worker0 = proc(pid)
        own0 = time.process_time()
        for _ in range(count):
            await charts.render(a_trend())
        own = (time.process_time() - own0) / count
        rss, worker1 = proc(pid)
        return first, rss, (worker1 - worker0) / count, own
    finally:
        await charts.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, default=20)
    args = parser.parse_args()
    bot = peak_kib(BOT)
    with_pyplot = peak_kib(f"{BOT}; {PYPLOT}")
    first, worker, worker_cpu, own_cpu = asyncio.run(charts_cost(args.charts))
    print("## The trend chart: memory and CPU\n")
    print(f"Command: `.venv/bin/python -m bench.chart_worker --charts {args.charts}`\n")
    print("| what | value |\n| --- | ---: |")
    print(f"| the bot's process after its imports (peak RSS) | {bot / 1024:.0f} MB |")
    print(f"| the same with matplotlib's pyplot loaded | {with_pyplot / 1024:.0f} MB |")
    print(f"| so matplotlib in the bot's process would add | {(with_pyplot - bot) / 1024:.0f} MB |")
    print(f"| the chart worker after {args.charts + 1} charts (VmRSS) | {worker / 1024:.0f} MB |")
    print(f"| first chart, worker start-up included | {first * 1000:.0f} ms |")
    print(f"| CPU per chart in the worker | {worker_cpu * 1000:.0f} ms |")
    print(f"| CPU per chart in the bot's process | {own_cpu * 1000:.1f} ms |")
    print(f"\nLoad average (1 min): {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
