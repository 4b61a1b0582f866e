"""What the benchmarks share: each measured phase runs in a fresh interpreter (so its peak RSS
is its own) and reports one JSON line; the parent adds the phase's CPU time and load.

    result = child(__file__, "migrate", [legacy, target_url, "5000"])

A script declares its phases with ``add_phase_arguments`` and dispatches with ``run_phase``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def child(script: str, phase: str, args: list[str], cwd: str | Path | None = None) -> dict:
    """Run ``script --phase phase args`` in a fresh interpreter (in folder ``cwd``, by default
    this tree's root) and return the JSON line it prints last, plus its CPU seconds (user +
    system; unless the phase measured its own) and the load average before and after."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    out = subprocess.run([sys.executable, script, "--phase", phase, *args], check=True,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT if cwd is None else cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.setdefault("cpu_seconds", (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    result.setdefault("load", (load_before, os.getloadavg()[0]))
    return result


def add_phase_arguments(ap: argparse.ArgumentParser) -> None:
    """The hidden options a script's children are started with."""
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)


def run_phase(opts: argparse.Namespace, phases: dict[str, Callable[[list[str]], dict]]) -> bool:
    """In a child (``--phase`` given): run that phase, print its JSON line, return True."""
    if not opts.phase:
        return False
    print(json.dumps(phases[opts.phase](opts.args)))
    return True


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_rss_kb(root: int, per_pid: dict[int, int] | None = None) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (Linux /proc); per-process peaks into per_pid."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                ppid = kb = 0
                for line in fh:
                    if line.startswith("PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = kb
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        if per_pid is not None:
            per_pid[pid] = max(per_pid.get(pid, 0), rss.get(pid, 0))
        todo.extend(children.get(pid, []))
    return total


class TreePeak:
    """Samples the summed RSS of this process and all its descendants (e.g. worker processes)
    every ``interval`` seconds while the block runs; ``mb`` is the largest sum seen."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.kb = max(self.kb, tree_rss_kb(os.getpid()))

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.kb / 1024


def phase_generate(legacy: Path, crimes: int) -> dict:
    from synth.generate import generate

    t = time.perf_counter()
    generate(f"sqlite:///{legacy}", crimes=crimes, seed=1)
    return {"seconds": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}


def phase_migrate(legacy: Path, target_url: str, batch_size: int, workers: int = 1) -> dict:
    from core.progress import set_quiet
    from migrate.engine import migrate

    set_quiet(True)
    t = time.perf_counter()
    with TreePeak() as tree:
        result = migrate(f"sqlite:///{legacy}", target_url, batch_size=batch_size, workers=workers)
    seconds = time.perf_counter() - t
    counts = {k: v.to_json() for k, v in result.counts.items()}
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes, once shut down
    # Worker processes: each one's peak is at most the largest child's (ru_maxrss of the children waited for).
    workers_peak = waited.ru_maxrss / 1024 if workers > 1 else 0.0
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "run_id": result.run_id, "balanced": result.balanced,
            "peak_rss_all_mb": peak_rss_mb() + workers * workers_peak,
            "peak_rss_tree_mb": tree.mb,  # the largest sum of all processes' RSS seen (sampled every 0.1 s)
            "cpu_writer": own.ru_utime + own.ru_stime, "cpu_workers": waited.ru_utime + waited.ru_stime,
            "counts": counts, "rows_written": sum(c["rows_written"] for c in counts.values()),
            "legacy_records": sum(c["read"] for c in counts.values())}
