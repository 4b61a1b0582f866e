"""Benchmark: migrate a generated OPUS store, side by side with a plain copy of the same rows.

    .venv/bin/python bench/bench_migrate.py [--crimes 1000000] [--postgres] [--keep DIR]

Each phase runs in its own child process so its peak RSS is its own. The plain copy reads
every legacy row and executemany-inserts it unchanged into a fresh SQLite file with the same
DDL (no mapping, no ledger): the practical limit for moving these rows on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(phase: str, args: list[str]) -> dict:
    """Run one phase in a fresh interpreter; it prints one JSON line with its figures."""
    out = subprocess.run([sys.executable, __file__, "--phase", phase, *args], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_generate(legacy: Path, crimes: int) -> dict:
    from synth.generate import generate

    t = time.perf_counter()
    generate(f"sqlite:///{legacy}", crimes=crimes, seed=1)
    return {"seconds": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}


def phase_plain_copy(legacy: Path, dest: Path) -> dict:
    from core.schema import legacy_ddl_statements

    t = time.perf_counter()
    src = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    for stmt in legacy_ddl_statements():
        dst.execute(stmt)
    rows = 0
    for table in ("NOMINAL", "CRIME", "CRIME_NOM", "INTEL"):
        cur = src.execute(f"SELECT * FROM {table}")  # constant table names, not user input
        width = len(cur.description)
        insert = f"INSERT INTO {table} VALUES ({','.join('?' * width)})"
        while True:
            chunk = cur.fetchmany(5000)
            if not chunk:
                break
            dst.executemany(insert, chunk)
            rows += len(chunk)
        dst.commit()
    dst.close()
    src.close()
    return {"seconds": time.perf_counter() - t, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def phase_migrate(legacy: Path, target_url: str, batch_size: int) -> dict:
    from core.progress import set_quiet
    from migrate.engine import migrate

    set_quiet(True)
    t = time.perf_counter()
    result = migrate(f"sqlite:///{legacy}", target_url, batch_size=batch_size)
    seconds = time.perf_counter() - t
    counts = {k: v.to_json() for k, v in result.counts.items()}
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "balanced": result.balanced, "counts": counts,
            "rows_written": sum(c["rows_written"] for c in counts.values()),
            "legacy_records": sum(c["read"] for c in counts.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--postgres", action="store_true", help="also migrate into a scratch PostgreSQL database")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = ap.parse_args()

    if opts.phase:
        a = opts.args
        result = {
            "generate": lambda: phase_generate(Path(a[0]), int(a[1])),
            "plain_copy": lambda: phase_plain_copy(Path(a[0]), Path(a[1])),
            "migrate": lambda: phase_migrate(Path(a[0]), a[1], int(a[2])),
        }[opts.phase]()
        print(json.dumps(result))
        return

    work = opts.keep or Path(tempfile.mkdtemp(prefix="o2i-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    legacy = work / f"opus-{opts.crimes}.db"
    if not legacy.exists():
        print(f"generating {opts.crimes:,} crimes into {legacy} ...", flush=True)
        g = child("generate", [str(legacy), str(opts.crimes)])
        print(f"  generated in {g['seconds']:.1f} s, peak RSS {g['peak_rss_mb']:.0f} MB")

    copy_db = work / "plain-copy.db"
    copy_db.unlink(missing_ok=True)
    copy = child("plain_copy", [str(legacy), str(copy_db)])
    target = work / "iops.db"
    for p in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        p.unlink(missing_ok=True)
    mig = child("migrate", [str(legacy), f"sqlite:///{target}", str(opts.batch_size)])

    crimes = mig["counts"]["crime"]["read"]
    print()
    print(f"{'':<28}{'seconds':>10}{'legacy crimes/s':>17}{'rows written/s':>16}{'peak RSS MB':>13}")
    print(f"{'plain copy (sqlite3)':<28}{copy['seconds']:>10.1f}{crimes / copy['seconds']:>17,.0f}"
          f"{copy['rows'] / copy['seconds']:>16,.0f}{copy['peak_rss_mb']:>13.0f}")
    print(f"{'migrate SQLite->SQLite':<28}{mig['seconds']:>10.1f}{crimes / mig['seconds']:>17,.0f}"
          f"{mig['rows_written'] / mig['seconds']:>16,.0f}{mig['peak_rss_mb']:>13.0f}")
    print(f"ratio migrate / plain copy: {mig['seconds'] / copy['seconds']:.2f}x (target <= 3x); "
          f"invariant {'holds' if mig['balanced'] else 'BROKEN'}; rows written {mig['rows_written']:,}")

    if opts.postgres:
        from core import db

        name = f"o2i_bench_{os.getpid()}"
        url = db.create_database("postgresql", name)
        try:
            pg = child("migrate", [str(legacy), url.render_as_string(hide_password=False), str(opts.batch_size)])
            print(f"{'migrate SQLite->PostgreSQL':<28}{pg['seconds']:>10.1f}{crimes / pg['seconds']:>17,.0f}"
                  f"{pg['rows_written'] / pg['seconds']:>16,.0f}{pg['peak_rss_mb']:>13.0f}")
        finally:
            db.drop_database("postgresql", name)


if __name__ == "__main__":
    main()
