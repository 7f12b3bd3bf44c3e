"""`make bench`: `ivr serve` as a real process against synthetic calls; prints the table.

For each database (SQLite by default; PostgreSQL with `--backends sqlite,postgresql`): migrate,
seed 1,000,000 blocklist entries (exact and prefix) and 1,000,000 past calls, start `ivr serve`,
warm up, then measure one call at a time, random arrivals at fixed rates, and back-to-back calls
with 1 to 10,000 callers held waiting in the menu. Then `ivr serve --workers N` for each further
worker count, the protocol floor (no decisions at all), and the pyst2 process-per-call baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import uvloop

from bench.loadgen import CallSpec, LoadGenerator, Stats
from bench.seed import caller_mix, seed
from ivr.db import migrate
from ivr.paths import project_root

IVR = str(Path(sys.executable).with_name("ivr"))
_HOLDERS = itertools.count()


@dataclass
class Row:
    label: str
    held: int | None
    calls_s: float
    first: tuple[float, float, float]  # p50, p99, max (ms)
    handler: tuple[float, float, float]
    command_p99: float
    cpu_pct: float
    gen_cpu_pct: float  # the load generator's own CPU: the rest of a 2-core machine
    peak_mib: float
    calls: int
    errors: int

    @classmethod
    def of(
        cls,
        label: str,
        held: int | None,
        stats: Stats,
        wall: float,
        cpu: float,
        gen_cpu: float,
        peak: float,
        errors: int,
    ) -> Row:
        """A row from one phase's client-side timings and the CPU and memory read around it."""
        return cls(
            label,
            held,
            stats.completed / wall,
            _pct(stats.first),
            _pct(stats.handler),
            _pct(stats.command)[1],
            cpu,
            gen_cpu,
            peak,
            stats.completed,
            errors,
        )


def _pct(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return (q[49] * 1000, q[98] * 1000, max(values) * 1000)


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


class Service:
    """`ivr serve` (or `argv` given the port) in its own process, with its memory sampled."""

    def __init__(
        self, workdir: Path, url: str, argv: list[str] | None = None, workers: int = 1
    ) -> None:
        self.port = _free_port()
        self._argv = [*argv, str(self.port)] if argv else [IVR, "serve", f"--workers={workers}"]
        self.log = workdir / "serve.log"
        spool = workdir / "spool"
        spool.mkdir(exist_ok=True)
        days = "\n".join(f'{d} = ["00:00-24:00"]' for d in "mon tue wed thu fri sat sun".split())
        self.config = workdir / "ivr.toml"
        self.config.write_text(
            f'data_dir = "{workdir}"\n'
            f'[agi]\nlisten = "127.0.0.1:{self.port}"\n'
            # The held-session rows keep up to 10,000 sessions open from one address.
            "max_sessions = 12000\nmax_sessions_per_peer = 12000\n"
            f'[database]\nurl = "{url}"\n'
            f'[recording]\nspool_dir = "{spool}"\n'
            f"[hours]\n{days}\npublic_holidays = false\nclosed_dates = []\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self._peak = 0
        self._stop = threading.Event()

    def start(self) -> None:
        env = {**os.environ, "IVR_CONFIG": str(self.config)}
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - our own executable, no shell
                self._argv, env=env, stderr=log, stdout=log, preexec_fn=_raise_nofile
            )
        self.ps = psutil.Process(self._proc.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log_text = self.log.read_text()
                    raise RuntimeError(f"ivr serve did not start:\n{log_text}") from None
                time.sleep(0.1)
        threading.Thread(target=self._sample, daemon=True).start()

    def _tree(self) -> list[psutil.Process]:
        """The service and its workers, if any."""
        assert self.ps is not None
        return [self.ps, *self.ps.children(recursive=True)]

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self._peak = max(self._peak, sum(p.memory_info().rss for p in self._tree()))
            except psutil.Error:
                continue  # a process ended between listing and reading

    def take_peak(self) -> float:
        """Peak resident memory (MiB) since the last call."""
        peak, self._peak = self._peak, 0
        return peak / 2**20

    def cpu(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
        return total

    def stop(self) -> int:
        """SIGTERM, wait; the number of error lines the service logged."""
        self._stop.set()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        self._proc.wait(60)
        text = self.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '"level": "ERROR"' in line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _phase(
    svc: Service,
    gen: LoadGenerator,
    label: str,
    held: int,
    load: int | float,
    args: argparse.Namespace,
    mix: Callable[[], CallSpec],
) -> Row:
    """One row: `load` calls in flight back to back (an int), or offered at random at `load`
    calls a second (a float)."""
    svc.take_peak()
    hold_stats = Stats()
    # Callers seen nowhere else, so no repeat-call limit applies to them.
    specs = [CallSpec(f"0906{next(_HOLDERS):07d}", "route", "menu", hold=True) for _ in range(held)]
    holders = await gen.hold(specs, hold_stats)
    stats = Stats()
    cpu0, own0 = svc.cpu(), time.process_time()
    if isinstance(load, float):
        rng = random.Random(int(load))  # the same arrivals on every run
        wall = await gen.open_loop(mix, load, args.seconds, stats, rng)
        label = f"{label}, {load:g}/s offered"
    else:
        wall = await gen.closed_loop(mix, load, args.seconds, stats)
        label = f"{label}, {load} in flight"
    cpu = (svc.cpu() - cpu0) / wall * 100
    own = (time.process_time() - own0) / wall * 100
    await gen.release_all(holders)
    peak = svc.take_peak()
    errors = stats.error_count() + hold_stats.error_count()
    for kind, n in (stats.errors + hold_stats.errors).items():
        print(f"  {label} held={held}: {n} x {kind}", file=sys.stderr)
    return Row.of(label, held, stats, wall, cpu, own, peak, errors)


async def _serve_runs(label: str, url: str, workdir: Path, args: argparse.Namespace) -> list[Row]:
    # One call at a time: the service's own latency, with no queueing in front of it. Then
    # callers arriving at random at fixed rates: the latency a caller meets at that load.
    # Then the most the service sustains, with callers held in the menu.
    runs: list[tuple[int, int | float]] = [(0, 1)]
    runs += [(0, float(rate)) for rate in args.rates]
    runs += [(held, args.concurrency) for held in args.held]
    mix = caller_mix(args.entries, args.past_calls)
    rows = await _drive(Service(workdir, url), f"{label}, 1 worker", mix, runs, args)
    for workers in args.workers:
        if workers > 1:
            svc = Service(workdir, url, workers=workers)
            many = f"{label}, {workers} workers"
            rows += await _drive(svc, many, mix, [(0, args.concurrency)], args)
    return rows


async def _drive(
    svc: Service,
    label: str,
    mix: Callable[[], CallSpec],
    runs: list[tuple[int, int | float]],
    args: argparse.Namespace,
) -> list[Row]:
    """Start `svc`, warm it up, then one row per (held, load) in `runs`; its logged errors
    count in the last row."""
    svc.start()
    rows: list[Row] = []
    try:
        gen = LoadGenerator("127.0.0.1", svc.port)
        await gen.closed_loop(mix, args.concurrency, args.warmup, Stats())
        for held, load in runs:
            rows.append(await _phase(svc, gen, label, held, load, args, mix))
            print(_format(rows[-1]), file=sys.stderr, flush=True)
    finally:
        logged = svc.stop()
    if logged:
        print(f"  {label}: the service logged {logged} errors (see {svc.log})", file=sys.stderr)
        rows[-1].errors += logged
    return rows


async def _baseline(url: str, workdir: Path, args: argparse.Namespace) -> Row:
    svc = Service(workdir, url)  # only for its configuration file
    gen = LoadGenerator("127.0.0.1", 0)
    mix = caller_mix(args.entries, args.past_calls)
    argv = [sys.executable, "-m", "bench.pyst2_inbound", str(svc.config)]
    stats = Stats()
    cpu0, own0 = _children_cpu(), time.process_time()
    wall = await gen.closed_loop(
        mix,
        args.baseline_concurrency,
        args.baseline_seconds,
        stats,
        place=lambda spec, st: gen.spawn(argv, spec, st),
    )
    cpu = (_children_cpu() - cpu0) / wall * 100
    own = (time.process_time() - own0) / wall * 100
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest script
    label = f"pyst2, process per call (SQLite), {args.baseline_concurrency} in flight"
    return Row.of(label, None, stats, wall, cpu, own, peak, stats.error_count())


async def _floor(workdir: Path, args: argparse.Namespace) -> list[Row]:
    """The same loads (1 and `--concurrency` in flight) against `bench.floor`: seven commands,
    no decisions. What the kernel, uvloop and the generator cost before our code runs."""
    svc = Service(workdir, "", argv=[sys.executable, "-m", "bench.floor"])
    numbers = itertools.count()

    def mix() -> CallSpec:
        return CallSpec(f"0905{next(numbers) % 10_000_000:07d}", "route", "menu")

    runs: list[tuple[int, int | float]] = [(0, 1), (0, args.concurrency)]
    return await _drive(svc, "protocol floor (bench/floor.py)", mix, runs, args)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _prepare(url: str, args: argparse.Namespace) -> None:
    t = time.monotonic()
    migrate.upgrade(url)
    seed(url, args.entries, args.past_calls, datetime.now(UTC))
    print(f"  seeded {url.split(':', 1)[0]} in {time.monotonic() - t:.0f} s", file=sys.stderr)


HEADER = (
    "| run | held in menu | calls/s | first command p50 / p99 / max (ms) "
    "| handler p50 / p99 / max (ms) | command p99 (ms) | service CPU (% of a core) "
    "| generator CPU | peak RSS (MiB) | calls | errors |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def _format(r: Row) -> str:
    def three(v: tuple[float, float, float]) -> str:
        return " / ".join(f"{x:.2f}" for x in v)

    held = "" if r.held is None else f"{r.held:,}"
    return (
        f"| {r.label} | {held} | {r.calls_s:,.0f} | {three(r.first)} | {three(r.handler)} "
        f"| {r.command_p99:.2f} | {r.cpu_pct:.0f} | {r.gen_cpu_pct:.0f} | {r.peak_mib:.0f} "
        f"| {r.calls:,} | {r.errors} |"
    )


async def main(args: argparse.Namespace) -> None:
    rows: list[Row] = []
    baseline: Row | None = None
    work = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    sqlite_url = f"sqlite+aiosqlite:///{work / 'sqlite' / 'ivr.sqlite3'}"
    try:
        if "sqlite" in args.backends or args.baseline_seconds:
            (work / "sqlite").mkdir()
            await asyncio.to_thread(_prepare, sqlite_url, args)
        if args.baseline_seconds:
            # First, so that the children's peak memory is the baseline scripts' alone; its
            # calls go into a copy, so the service starts from the same data.
            base = work / "baseline"
            base.mkdir()
            shutil.copy(work / "sqlite" / "ivr.sqlite3", base / "ivr.sqlite3")
            baseline = await _baseline(f"sqlite+aiosqlite:///{base / 'ivr.sqlite3'}", base, args)
            print(_format(baseline), file=sys.stderr, flush=True)
        if "sqlite" in args.backends:
            rows += await _serve_runs("ivr serve, SQLite", sqlite_url, work / "sqlite", args)
        if args.floor_seconds:
            (work / "floor").mkdir()
            rows += await _floor(
                work / "floor", argparse.Namespace(**{**vars(args), "seconds": args.floor_seconds})
            )
        if "postgresql" in args.backends:
            from tests.support.pg import PgServer

            pg = PgServer()
            pg.start()
            try:
                url = await pg.create_database("bench")
                (work / "pg").mkdir()
                await asyncio.to_thread(_prepare, url, args)
                rows += await _serve_runs("ivr serve, PostgreSQL", url, work / "pg", args)
            finally:
                pg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_summary(args))
    print(HEADER)
    for r in rows + ([baseline] if baseline else []):
        print(_format(r))
    served = [r for r in rows if r.held and "SQLite, 1 worker" in r.label]
    if served and baseline and baseline.calls_s:
        slowest = min(r.calls_s for r in served)
        print(f"\nivr serve (SQLite, slowest row) / pyst2: {slowest / baseline.calls_s:.0f}x")


def _summary(args: argparse.Namespace) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()} ({Path(sys.executable).resolve()}), "
        f"{platform.system()} {platform.release()}; "
        f"{args.entries:,} blocklist entries, {args.past_calls:,} past calls; "
        f"{args.seconds:g} s per row\n"
    )


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--backends", default="sqlite", type=lambda s: s.split(","))
    p.add_argument(
        "--workers",
        default="1,2",
        type=lambda s: [int(x) for x in s.split(",")],
        help="worker counts; 1 runs every row, each other count the back-to-back row",
    )
    p.add_argument(
        "--held", default="1,100,1000,10000", type=lambda s: [int(x) for x in s.split(",")]
    )
    p.add_argument(
        "--rates",
        default="100,300",
        type=lambda s: [float(x) for x in s.split(",") if x],
        help="offered loads (calls/s, random arrivals), one row each; empty: none",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per row")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--past-calls", type=int, default=1_000_000)
    p.add_argument("--baseline-seconds", type=float, default=10.0, help="0: no pyst2 baseline")
    p.add_argument("--floor-seconds", type=float, default=10.0, help="0: no protocol floor row")
    p.add_argument("--baseline-concurrency", type=int, default=4)
    return p.parse_args(argv)


if __name__ == "__main__":
    os.chdir(project_root())
    _raise_nofile()
    uvloop.run(main(_args()))
