"""Benchmark: ``generate --crimes N`` into a fresh SQLite file.

Runs the generation (``synth.generate.generate``, profile included, exactly what the CLI
does) in a child process and reports, from the parent:

* wall time, and its two parts (creating/filling the store; reading it back for the profile);
* rows written and rows per second (all six OPUS tables, over the whole wall time);
* peak RSS: of the largest generator process (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), and
  of all generator processes together (the child, its row maker and profile workers), sampled
  from ``/proc`` every 50 ms;
* CPU time (user + system) of the whole tree, and the load average before and after, because
  a shared 2-core machine's wall time says little without them.

    .venv/bin/python bench/bench_generate.py                 # 1,000,000 crimes
    .venv/bin/python bench/bench_generate.py --crimes 200000 --keep /tmp/opus.db
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _phases import tree_rss_kb

ROOT = Path(__file__).resolve().parent.parent


def _child(url: str, crimes: int, seed: int) -> None:
    sys.path.insert(0, str(ROOT))
    from core.progress import set_quiet
    from synth.generate import generate

    set_quiet(True)
    result = generate(url, crimes=crimes, seed=seed)
    print(json.dumps({"counts": result.counts, "seconds": result.seconds,
                      "profile_seconds": result.profile_seconds,
                      "profile_cpu": result.profile.facts.get("cpu_seconds", {}),
                      "quirks_present": sum(1 for v in result.profile.quirks.values() if v > 0),
                      "quirks": len(result.profile.quirks)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crimes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--keep", metavar="FILE", help="write the store here and keep it (default: a temporary file)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "CRIMES", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "opus.db"
        if path.exists():
            path.unlink()
        url = f"sqlite:///{path}"
        load_before = os.getloadavg()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child", url, str(args.crimes), str(args.seed)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        peak_tree = [0]
        per_pid: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak_tree[0] = max(peak_tree[0], tree_rss_kb(proc.pid, per_pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            print(f"generation failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        info = json.loads(out.strip().splitlines()[-1])
        rows = sum(info["counts"].values())
        size = path.stat().st_size
    print(f"generate --crimes {args.crimes:,} --seed {args.seed} into SQLite")
    print(f"  rows written        {rows:>14,}  " + ", ".join(f"{k} {v:,}" for k, v in info["counts"].items()))
    print(f"  wall time           {wall:>14.1f} s  (fill {info['seconds']:.1f} s, profile {info['profile_seconds']:.1f} s,"
          f" start-up {wall - info['seconds'] - info['profile_seconds']:.1f} s)")
    print(f"  rows per second     {rows / wall:>14,.0f}")
    print(f"  crimes per second   {args.crimes / wall:>14,.0f}")
    print(f"  peak RSS, largest   {usage.ru_maxrss / 1024:>14.0f} MB  (one process)")
    print(f"  peak RSS, all       {peak_tree[0] / 1024:>14.0f} MB  (generator, row maker and profile workers together)")
    print(f"  peak RSS by process {'':>14}  " + ", ".join(f"{kb / 1024:.0f} MB" for kb in sorted(per_pid.values(), reverse=True)[:5]))
    print(f"  CPU time            {usage.ru_utime + usage.ru_stime:>14.1f} s  (user + system, all processes)")
    print(f"  profile CPU by pass {'':>14}  " + ", ".join(f"{k} {v:.1f} s" for k, v in info["profile_cpu"].items()))
    print(f"  store size          {size / 1e6:>14.0f} MB")
    print(f"  quirks present      {info['quirks_present']:>14} of {info['quirks']}")
    print(f"  load average        {load_before[0]:>14.2f} before, {os.getloadavg()[0]:.2f} after  ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
