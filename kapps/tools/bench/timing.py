"""Clocks for the benchmark workers: wall and CPU time, medians, turns, resident memory."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

__all__ = ["rss_mb", "clock", "timed", "median_batch_time", "alternating", "load_average"]


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    current = peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover
        pass
    return current, peak


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    import os

    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without it
        return None


def clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds) of one call."""
    w0, c0 = clock()
    value = fn()
    w1, c1 = clock()
    return value, w1 - w0, c1 - c0


def median_batch_time(fn: Callable[[], Any], iterations: int, warmup: int) -> tuple[float, float, float]:
    """(first-call wall s, median wall s, median CPU s) of ``iterations`` calls after ``warmup``."""
    _, first, _ = timed(fn)
    for _ in range(max(0, warmup - 1)):
        fn()
    walls, cpus = [], []
    for _ in range(iterations):
        _, wall, cpu = timed(fn)
        walls.append(wall)
        cpus.append(cpu)
    return first, statistics.median(walls), statistics.median(cpus)


def alternating(fns: Sequence[Callable[[], Any]], iterations: int, warmup: int) -> list[tuple[float, float]]:
    """(median wall s, median CPU s) of each function, timed in turns (fair under a changing load)."""
    for fn in fns:
        for _ in range(max(1, warmup)):
            fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for i in range(iterations):
        order = range(len(fns)) if i % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            _, wall, cpu = timed(fns[k])
            walls[k].append(wall)
            cpus[k].append(cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus)]
