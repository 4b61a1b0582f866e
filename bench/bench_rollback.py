"""Benchmark: migrate a generated OPUS store, then dry-run and execute its rollback, side by side.

    .venv/bin/python bench/bench_rollback.py [--crimes 100000] [--batch-size 5000] [--postgres] [--keep DIR]

The acceptance: the rollback dry run (with its JSON and Excel report listing every row) and
the rollback itself each take time comparable to the migration they undo. Each phase runs in
its own child process, so its peak RSS is its own. After the rollback the benchmark checks
that every iOPS table is empty again (a fresh target: the run wrote every row in it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _phases import add_phase_arguments, child as _child, peak_rss_mb, phase_generate, phase_migrate, run_phase


def child(phase: str, args: list[str]) -> dict:
    return _child(__file__, phase, args)


def phase_rollback(target_url: str, run_id: int, execute: bool, out_dir: Path) -> dict:
    from core.progress import set_quiet
    from migrate.rollback import rollback
    from reports.rollback_report import write_rollback_report

    set_quiet(True)
    t = time.perf_counter()
    with rollback(target_url, run_id, execute=execute) as result:  # as `main.py rollback` does it
        write_rollback_report(result, out_dir)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "mode": result.mode, "conflicts": result.conflict_count,
            "rows": result.delete_count + result.restore_count,
            "report_mb": sum(p.stat().st_size for p in result.report_files) / 1e6}


def phase_count(target_url: str) -> dict:
    import sqlalchemy as sa

    from core import schema

    engine = sa.create_engine(target_url)
    with engine.connect() as conn:
        counts = {name: conn.execute(sa.select(sa.func.count()).select_from(schema.target_metadata.tables[name]))
                  .scalar_one() for name in schema.TARGET_TABLES}
    engine.dispose()
    return {"rows": counts}


def bench_target(label: str, legacy: Path, target_url: str, batch_size: int, out: Path) -> list[tuple]:
    mig = child("migrate", [str(legacy), target_url, str(batch_size)])
    assert mig["balanced"], "migration invariant broken"
    run_id = str(mig["run_id"])
    dry = child("rollback", [target_url, run_id, "dry", str(out / f"{label}-dry")])
    assert dry["conflicts"] == 0 and dry["rows"] == mig["rows_written"], (dry, mig)
    exe = child("rollback", [target_url, run_id, "execute", str(out / f"{label}-execute")])
    left = child("count", [target_url])["rows"]
    assert not any(left.values()), f"rows left after the rollback: {left}"
    rows = mig["rows_written"]
    return [
        (f"migrate {label}", mig["seconds"], rows, mig["peak_rss_mb"], None),
        (f"rollback dry run {label}", dry["seconds"], rows, dry["peak_rss_mb"], dry["report_mb"]),
        (f"rollback --execute {label}", exe["seconds"], rows, exe["peak_rss_mb"], exe["report_mb"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crimes", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--postgres", action="store_true", help="also into a scratch PostgreSQL database")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    add_phase_arguments(ap)
    opts = ap.parse_args()
    if run_phase(opts, {
        "generate": lambda a: phase_generate(Path(a[0]), int(a[1])),
        "migrate": lambda a: phase_migrate(Path(a[0]), a[1], int(a[2])),
        "rollback": lambda a: phase_rollback(a[0], int(a[1]), a[2] == "execute", Path(a[3])),
        "count": lambda a: phase_count(a[0]),
    }):
        return

    work = opts.keep or Path(tempfile.mkdtemp(prefix="o2i-bench-rollback-"))
    work.mkdir(parents=True, exist_ok=True)
    legacy = work / f"opus-{opts.crimes}.db"
    if not legacy.exists():
        print(f"generating {opts.crimes:,} crimes into {legacy} ...", flush=True)
        g = child("generate", [str(legacy), str(opts.crimes)])
        print(f"  generated in {g['seconds']:.1f} s, peak RSS {g['peak_rss_mb']:.0f} MB")

    target = work / "iops.db"
    for p in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        p.unlink(missing_ok=True)
    lines = bench_target("SQLite", legacy, f"sqlite:///{target}", opts.batch_size, work)
    if opts.postgres:
        from core import db

        name = f"o2i_bench_rb_{os.getpid()}"
        url = db.create_database("postgresql", name)
        try:
            lines += bench_target("PostgreSQL", legacy, url.render_as_string(hide_password=False),
                                  opts.batch_size, work)
        finally:
            db.drop_database("postgresql", name)

    print()
    print(f"{opts.crimes:,} crimes generated; every phase in its own process")
    print(f"{'':<32}{'seconds':>10}{'target rows':>13}{'rows/s':>10}{'vs migrate':>12}{'peak RSS MB':>13}{'report MB':>11}")
    base = None
    for label, seconds, rows, rss, report in lines:
        if label.startswith("migrate"):
            base = seconds
        print(f"{label:<32}{seconds:>10.1f}{rows:>13,}{rows / seconds:>10,.0f}{seconds / base:>11.2f}x"
              f"{rss:>13.0f}{'' if report is None else f'{report:.1f}':>11}")
    print("dry run: analysis of every ledger row + rollback.json and rollback.xlsx listing every row; "
          "execute: the same analysis under row locks, then restore/delete/xref repair in one transaction")


if __name__ == "__main__":
    main()
