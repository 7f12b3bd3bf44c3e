"""Where a call's CPU goes: the service and the load generator in this one process, under
cProfile, on a seeded SQLite database. Run as `python -m bench.profile [--calls N]`.

The figures are for finding what to look at, not for the Performance table: profiling slows
every Python call, and both sides share the loop. The service's own functions are listed first
(`ivr.`), then everything, by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import LoadGenerator, Stats
from bench.seed import caller_mix, seed
from ivr.app import build_app
from ivr.clock import SystemClock
from ivr.config import build_config
from ivr.db import migrate

ALWAYS_OPEN = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def _run(work: Path, args: argparse.Namespace) -> tuple[cProfile.Profile, Stats, float]:
    url = f"sqlite+aiosqlite:///{work / 'ivr.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(seed, url, args.entries, args.past_calls, datetime.now(UTC))
    hours = {**ALWAYS_OPEN, "public_holidays": False, "closed_dates": []}
    data = {"data_dir": str(work), "database": {"url": url}, "hours": hours}
    app = build_app(build_config(data, {}), clock=SystemClock())
    await app.start("127.0.0.1", 0)
    try:
        gen = LoadGenerator("127.0.0.1", app.agi.port)
        mix = caller_mix(args.entries, args.past_calls)
        await gen.closed_loop(mix, args.concurrency, 1.0, Stats())  # warm up
        stats = Stats()
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        await gen.closed_loop(mix, args.concurrency, args.seconds, stats)
        profile.disable()
        return profile, stats, time.perf_counter() - t0
    finally:
        await app.close(grace=2.0)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--past-calls", type=int, default=100_000)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)  # not a line per call (alerts are warnings)
    with tempfile.TemporaryDirectory(prefix="ivr-profile-") as tmp:
        profile, stats, wall = asyncio.run(_run(Path(tmp), args))
    print(
        f"{stats.completed} calls in {wall:.1f} s under the profiler, {stats.error_count()} errors"
    )
    for title, restriction in (("ours", r"/ivr/"), ("everything", "")):
        out = io.StringIO()
        ps = pstats.Stats(profile, stream=out).sort_stats("cumulative")
        if restriction:
            ps.print_stats(restriction, args.top)
        else:
            ps.print_stats(args.top)
        print(f"--- {title}, by cumulative time ---")
        print(out.getvalue())


if __name__ == "__main__":
    main()
