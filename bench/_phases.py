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
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def child(script: str, phase: str, args: list[str]) -> dict:
    """Run ``script --phase phase args`` in a fresh interpreter and return the JSON line it
    prints last, plus its CPU seconds (user + system; unless the phase measured its own) and
    the load average before and after."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    out = subprocess.run([sys.executable, script, "--phase", phase, *args], check=True,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
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


def phase_generate(legacy: Path, crimes: int) -> dict:
    from synth.generate import generate

    t = time.perf_counter()
    generate(f"sqlite:///{legacy}", crimes=crimes, seed=1)
    return {"seconds": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}


def phase_migrate(legacy: Path, target_url: str, batch_size: int) -> dict:
    from core.progress import set_quiet
    from migrate.engine import migrate

    set_quiet(True)
    t = time.perf_counter()
    result = migrate(f"sqlite:///{legacy}", target_url, batch_size=batch_size)
    seconds = time.perf_counter() - t
    counts = {k: v.to_json() for k, v in result.counts.items()}
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "run_id": result.run_id, "balanced": result.balanced,
            "counts": counts, "rows_written": sum(c["rows_written"] for c in counts.values()),
            "legacy_records": sum(c["read"] for c in counts.values())}
