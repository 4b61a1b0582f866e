"""Benchmark: migrate a generated OPUS store, side by side with a plain copy of the same rows.

    .venv/bin/python bench/bench_migrate.py [--crimes 1000000] [--workers 2] [--postgres] [--keep DIR] [--first-only]

Each phase runs in its own child process so its peak RSS is its own. The plain copy reads
every legacy row and executemany-inserts it unchanged into a fresh SQLite file with the same
DDL (no mapping, no ledger): the practical limit for moving these rows on this machine.

The write floor does the same plain copy of what the migration wrote (the five iOPS tables,
the ledger, the cross-reference, warnings and rejects), read back from its target into a
fresh store with the target's DDL: what writing those rows costs with no mapping at all,
i.e. the least time any migration that keeps the ledger issue 3 asks for can take.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from _phases import add_phase_arguments, child as _child, peak_rss_mb, phase_generate, phase_migrate, run_phase


def child(phase: str, args: list[str]) -> dict:
    return _child(__file__, phase, args)


def print_row(label: str, r: dict, crimes: int, rows_key: str, plain: dict | None = None) -> None:
    """One result line, printed (and flushed) as soon as its phase ends."""
    ratio = f"{r['seconds'] / plain['seconds']:>7.2f}x" if plain else f"{'':>8}"
    print(f"{label:<28}{r['seconds']:>9.1f}{r['cpu_seconds']:>9.1f}{crimes / r['seconds']:>13,.0f}"
          f"{r[rows_key] / r['seconds']:>14,.0f}{r['peak_rss_mb']:>9.0f}{ratio}"
          f"   load {r['load'][0]:.1f}->{r['load'][1]:.1f}", flush=True)


#: What the migration must write (mapping.md's five iOPS tables; the ledger with a digest of
#: every row written and the cross-reference that makes re-runs idempotent — issue 3), in the
#: order it writes them; mig_warning and mig_reject are a few thousand rows either way.
WRITTEN_TABLES = ("person", "location", "crime", "crime_person", "intelligence_report",
                  "mig_ledger", "mig_xref", "mig_warning", "mig_reject")  # (write floor: not run by default)


def phase_plain_copy(legacy: Path, dest: Path) -> dict:
    from core.schema import legacy_ddl_statements

    def create(dst) -> None:
        for stmt in legacy_ddl_statements():
            dst.execute(stmt)

    return _copy(legacy, dest, create, ("NOMINAL", "CRIME", "CRIME_NOM", "INTEL"))


def phase_write_floor(migrated: Path, dest: Path) -> dict:
    """The same plain copy, of what the migration wrote: the rows it must write, read back
    from its target and inserted unchanged (no mapping, no digests) into a fresh store with
    the target's DDL and indexes. The floor for *any* migration writing those rows."""
    import sqlalchemy as sa

    from core import schema

    def create(_dst) -> None:
        engine = sa.create_engine(f"sqlite:///{dest}")
        schema.create_target_schema(engine)
        engine.dispose()

    return _copy(migrated, dest, create, WRITTEN_TABLES)


def _copy(source: Path, dest: Path, create, tables) -> dict:
    """Read every row of ``tables`` and executemany-insert it unchanged (5,000 at a time, one
    commit per table) into ``dest``, made by ``create``; the timer starts after ``create``."""
    dst = sqlite3.connect(dest)
    create(dst)
    dst.commit()
    t = time.perf_counter()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    rows = 0
    for table in tables:
        cur = src.execute(f"SELECT * FROM {table}")  # constant table names, not user input
        names = [d[0] for d in cur.description]
        width = len(names)
        insert = f"INSERT INTO {table} ({','.join(names)}) VALUES ({','.join('?' * width)})"
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


def phase_plain_read(legacy: Path) -> dict:
    """Every row of the four migrated legacy tables read with sqlite3, nothing done with them."""
    t = time.perf_counter()
    src = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    rows = 0
    for table in ("NOMINAL", "CRIME", "CRIME_NOM", "INTEL"):
        cur = src.execute(f"SELECT * FROM {table}")  # constant table names
        while True:
            chunk = cur.fetchmany(5000)
            if not chunk:
                break
            rows += len(chunk)
    src.close()
    return {"seconds": time.perf_counter() - t, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def phase_change(legacy: Path, percent: float) -> dict:
    """Change ``percent`` % of the crimes and nominals in OPUS (their MO / forenames), as a delta would."""
    conn = sqlite3.connect(legacy)
    every = max(1, round(100 / percent))
    n = conn.execute("UPDATE CRIME SET MO_TEXT = COALESCE(MO_TEXT, '') || ' (corrected)' "
                     "WHERE rowid % ? = 0", (every,)).rowcount
    n += conn.execute("UPDATE NOMINAL SET FORENAMES = COALESCE(FORENAMES, '') || ' X' WHERE rowid % ? = 0",
                      (every,)).rowcount
    conn.commit()
    conn.close()
    return {"changed": n, "seconds": 0, "peak_rss_mb": peak_rss_mb()}


def sizes(target: Path) -> dict:
    """Bytes of the iOPS tables and of the mig_ tables (SQLite dbstat: pages of each table and its indexes)."""
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    by_table = {}
    for name, table, size in conn.execute("SELECT name, tbl_name, 0 FROM sqlite_master WHERE type IN ('table','index')"):
        pass
    for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        owner = conn.execute("SELECT tbl_name FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        owner = owner[0] if owner else name
        by_table[owner] = by_table.get(owner, 0) + size
    conn.close()
    mig = sum(v for k, v in by_table.items() if k.startswith("mig_"))
    iops = sum(v for k, v in by_table.items() if k in ("person", "location", "crime", "crime_person",
                                                          "intelligence_report"))
    return {"mig": mig, "iops": iops, "by_table": by_table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--postgres", action="store_true", help="also migrate into a scratch PostgreSQL database")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=2, help="migration worker processes (1: all in one process)")
    ap.add_argument("--first-only", action="store_true",
                    help="the plain copy and the first run(s) only (no plain read, no-op re-run or delta)")
    add_phase_arguments(ap)
    opts = ap.parse_args()
    if run_phase(opts, {
        "generate": lambda a: phase_generate(Path(a[0]), int(a[1])),
        "plain_copy": lambda a: phase_plain_copy(Path(a[0]), Path(a[1])),
        "write_floor": lambda a: phase_write_floor(Path(a[0]), Path(a[1])),
        "migrate": lambda a: phase_migrate(Path(a[0]), a[1], int(a[2]), int(a[3]) if len(a) > 3 else 1),
        "plain_read": lambda a: phase_plain_read(Path(a[0])),
        "change": lambda a: phase_change(Path(a[0]), float(a[1])),
    }):
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
    crimes = _legacy_crimes(legacy)
    print(f"\n{'':<28}{'wall s':>9}{'CPU s':>9}{'crimes/s':>13}{'rows out/s':>14}{'RSS MB':>9}{'ratio':>8}")
    copy = child("plain_copy", [str(legacy), str(copy_db)])
    print_row("plain copy (sqlite3)", copy, crimes, "rows")
    copy_db.unlink(missing_ok=True)  # gigabytes the migration may need
    target = work / "iops.db"
    for p in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        p.unlink(missing_ok=True)
    mig = child("migrate", [str(legacy), f"sqlite:///{target}", str(opts.batch_size), str(opts.workers)])
    print(f"  (workers {opts.workers}; CPU s includes the worker processes)", flush=True)
    print_row("migrate SQLite->SQLite", mig, crimes, "rows_written", copy)
    print(f"  invariant {'holds' if mig['balanced'] else 'BROKEN'}; legacy records {mig['legacy_records']:,}; "
          f"target rows written {mig['rows_written']:,}", flush=True)
    print_cpu(mig, copy)
    if opts.first_only:
        if opts.postgres:
            phase_postgres(opts, legacy, crimes, copy)
        return
    read = child("plain_read", [str(legacy)])
    print_row("plain read (sqlite3)", read, crimes, "rows")
    noop = child("migrate", [str(legacy), f"sqlite:///{target}", str(opts.batch_size), str(opts.workers)])
    print_row("no-op re-run", noop, crimes, "rows_written", read)
    print(f"  mapped {sum(c['mapped'] for c in noop['counts'].values()):,} records", flush=True)
    work_copy = work / "opus-delta.db"
    # Copied by the file system, not through this process: a 667 MB read here would be inherited
    # by every later child forked from it and show in their peak RSS (ru_maxrss).
    shutil.copyfile(legacy, work_copy)
    changed = child("change", [str(work_copy), "1"])
    delta = child("migrate", [str(work_copy), f"sqlite:///{target}", str(opts.batch_size), str(opts.workers)])
    work_copy.unlink()
    print_row("delta, 1% changed", delta, crimes, "rows_written", read)
    print(f"  changed {changed['changed']:,} legacy rows; updated "
          f"{sum(c['updated'] for c in delta['counts'].values()):,}, mapped "
          f"{sum(c['mapped'] for c in delta['counts'].values()):,}", flush=True)
    size = sizes(target)
    print(f"\n{'figure':<44}{'measured':>12}{'target':>10}")
    for label, value, goal in (
            ("first run / plain copy", mig["seconds"] / copy["seconds"], "<= 6x"),
            ("first run CPU (all processes) / copy CPU", mig["cpu_seconds"] / copy["cpu_seconds"], ""),
            ("no-op re-run / plain read", noop["seconds"] / read["seconds"], "<= 3x"),
            ("delta 1% / plain read", delta["seconds"] / read["seconds"], "<= 4x"),
            ("peak RSS MB (all processes, sampled)", max(r.get("peak_rss_tree_mb", r["peak_rss_mb"])
                                                         for r in (mig, noop, delta)), "< 500"),
            ("mig_ size / iOPS size", size["mig"] / size["iops"], "<= 0.5")):
        print(f"{label:<44}{value:>12.2f}{goal:>10}")
    print(f"  mig_ {size['mig'] / 1e6:,.1f} MB, iOPS {size['iops'] / 1e6:,.1f} MB: " + ", ".join(
        f"{k} {v / 1e6:,.1f}" for k, v in sorted(size["by_table"].items()) if k.startswith("mig_")), flush=True)
    if opts.postgres:
        phase_postgres(opts, legacy, crimes, copy)
    print("\nratio = wall time / the plain copy's wall time for a first run (target <= 6x), / the plain read's "
          "for a re-run (no-op <= 3x, 1% delta <= 4x); rows out/s counts target rows only")


def print_cpu(r: dict, copy: dict) -> None:
    """The first run's CPU: the writer (the critical path) and the workers, against the copy's."""
    print(f"  CPU writer {r['cpu_writer']:.1f} s ({r['cpu_writer'] / copy['cpu_seconds']:.2f}x the copy's), workers "
          f"{r['cpu_workers']:.1f} s; all {r['cpu_seconds']:.1f} s ({r['cpu_seconds'] / copy['cpu_seconds']:.2f}x); "
          f"peak RSS of all processes {r['peak_rss_tree_mb']:.0f} MB (target < 500)", flush=True)


def phase_postgres(opts, legacy: Path, crimes: int, copy: dict) -> None:
    """The first run again, into a scratch PostgreSQL database (reported beside the SQLite one)."""
    from core import db

    name = f"o2i_bench_{os.getpid()}"
    url = db.create_database("postgresql", name)
    try:
        pg = child("migrate", [str(legacy), url.render_as_string(hide_password=False), str(opts.batch_size),
                               str(opts.workers)])
        print_row("migrate SQLite->PostgreSQL", pg, crimes, "rows_written", copy)
        print(f"  (CPU s: the tool's processes; the PostgreSQL server's own work is not in it) "
              f"invariant {'holds' if pg['balanced'] else 'BROKEN'}", flush=True)
        print_cpu(pg, copy)
    finally:
        db.drop_database("postgresql", name)


def _legacy_crimes(legacy: Path) -> int:
    with sqlite3.connect(f"file:{legacy}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM CRIME").fetchone()[0]

if __name__ == "__main__":
    main()
