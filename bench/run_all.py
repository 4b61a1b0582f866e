"""Run every benchmark once at a size that finishes in a few minutes and print today's figures.

    python bench/run_all.py [--crimes 20000] [--keys 1000000] [--only NAME ...]

Each bench runs as its own process with this interpreter (they time themselves and print
their own tables); a summary of the wall time and exit status of each follows. Exit status 1
if any bench failed (a crash, a check of its own, or a scoring target missed). The
figures in bench/README.md are from the full sizes (1,000,000 crimes): run a bench on its
own for those.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benches(crimes: int, keys: int) -> dict[str, list[str]]:
    reconcile = ["bench_reconcile.py", "--crimes", str(crimes)]
    if importlib.util.find_spec("datacompy") is None or importlib.util.find_spec("pandas") is None:
        reconcile.append("--no-datacompy")  # the 'bench' extra is not installed
    return {
        "keyset": ["bench_keyset.py", str(keys)],
        "generate": ["bench_generate.py", "--crimes", str(crimes)],
        "migrate": ["bench_migrate.py", "--crimes", str(crimes)],
        "rollback": ["bench_rollback.py", "--crimes", str(crimes)],
        "reconcile": reconcile,
        "score": ["score_reconciliation.py", "--crimes", str(crimes), "--quiet"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crimes", type=int, default=20_000, help="OPUS crimes per bench (default 20,000)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for the key-set bench (default 1,000,000)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benches")
    opts = parser.parse_args(argv)
    chosen = benches(opts.crimes, opts.keys)
    unknown = set(opts.only or ()) - chosen.keys()
    if unknown:
        parser.error(f"unknown bench {', '.join(sorted(unknown))} (choose from {', '.join(chosen)})")
    if opts.only:
        chosen = {name: args for name, args in chosen.items() if name in opts.only}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    summary = []
    for name, (script, *args) in chosen.items():
        print(f"\n=== {name}: {script} {' '.join(args)}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE.parent, env=env)
        summary.append((name, time.perf_counter() - started, done.returncode))
    print(f"\n=== summary ({opts.crimes:,} crimes, {opts.keys:,} keys; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    for name, seconds, code in summary:
        print(f"{name:<10} {seconds:8.1f} s  {'ok' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for _, _, code in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
