"""Benchmark: reconcile a large OPUS store against its simulated (faulty) iOPS store, side by
side with (a) simply reading every compared row of both stores and (b) datacompy comparing
the two crime tables.

    .venv/bin/python bench/bench_reconcile.py [--crimes 1000000] [--keep DIR] [--batch-size N]
        [--persons-rate 0.05] [--rounds 3] [--out DIR] [--code-dirs old=/path/a,new=/path/b]

Needs the 'bench' extra for (b): ``pip install datacompy pandas``.

Each measured phase runs in its own child process, so its peak RSS is its own, and reports
wall *and* CPU seconds (on a shared machine the wall time depends on what else runs; the CPU
time of an all-SQLite run does not). Stores are generated (``synth.generate``) and simulated
(``synth.simulate``) once into the work folder and reused by later runs with ``--keep``.

Phases:
* ``read_driver``  — every compared row of both stores through the DB-API driver itself
  (``sqlite3``, its own text decoding, fixed SQL): the practical limit of reading them in
  Python. It uses none of the tool's code, so it is the same floor for any version of it.
* ``read_typed``   — the same rows through SQLAlchemy Core with the schema's types (aware UTC
  datetimes, floats): what any Python tool reading these stores pays.
* ``reconcile``    — ``reconcile.run.reconcile`` with its four reports; per-phase times. With
  ``--code-dirs``, once per round from each tree given (its own ``bench/bench_reconcile.py
  --phase reconcile``, so any version's API), in turn, the order reversed every other round;
  each run's ratio to the same round's driver read, side by side, and their medians.
* ``datacompy``    — pandas loads the legacy CRIME table and the iOPS crime table (joined to
  its location) and datacompy compares them on the legacy key and writes its report. It
  cannot apply the mapping, so it compares like-named columns only: a speed baseline, not an
  equivalent result.

Targets (issue 4): whole reconciliation within 4x the plain read; the crime entity faster
than datacompy; peak RSS under 1 GB.

Latest figures: bench/README.md; earlier rounds: bench/HISTORY.md.
"""

from __future__ import annotations

import argparse
import tempfile
import resource
import time
from pathlib import Path

from _phases import TreePeak, add_phase_arguments, child as _child, peak_rss_mb, run_phase

LEGACY_TABLES = ("crime", "nominal", "crime_nom", "intel")


def child(phase: str, args: list[str]) -> dict:
    return _child(__file__, phase, args)


def _cpu() -> float:
    """CPU seconds of this process and of the worker processes it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), _cpu()

    def figures(self, **extra) -> dict:
        return {"seconds": time.perf_counter() - self.wall, "cpu_seconds": _cpu() - self.cpu,
                "peak_rss_mb": peak_rss_mb(),
                # the largest worker process (the reconciler's; 0 when it ran none)
                "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, **extra}


# ------------------------------------------------------------------------------ phases


def phase_prepare(legacy_url: str, target_url: str, crimes: int, truth: str, persons_rate: str) -> dict:
    from core.progress import set_quiet
    from synth.generate import generate
    from synth.simulate import DefectRates, simulate

    set_quiet(True)
    clock = Clock()
    if not Path(legacy_url.removeprefix("sqlite:///")).exists():  # one OPUS store for every persons rate
        generate(legacy_url, crimes=crimes, seed=2019)
    generated = time.perf_counter() - clock.wall
    simulate(legacy_url, target_url, seed=7, truth_path=truth, rates=DefectRates().with_persons(float(persons_rate)))
    return clock.figures(generate_seconds=generated)


def _compared_selects(legacy_url: str, target_url: str):
    """(engine, select) of every compared row: the legacy tables whole, the iOPS records
    joined to their locations, persons, links."""
    from core import schema
    from core.db import open_legacy
    from core.db import open_target_read_only
    from reconcile.stores import target_iops_tables
    import sqlalchemy as sa

    legacy = open_legacy(legacy_url)
    target = open_target_read_only(target_url)
    lt = schema.legacy_tables(legacy)
    tt = target_iops_tables(target)
    loc = tt["location"]
    crime, intel = tt["crime"], tt["intelligence_report"]
    selects = [(legacy, sa.select(lt[name])) for name in LEGACY_TABLES]
    selects += [
        (target, sa.select(crime, loc).select_from(crime.outerjoin(loc, crime.c.location_id == loc.c.location_id))),
        (target, sa.select(tt["person"])),
        (target, sa.select(tt["crime_person"])),
        (target, sa.select(intel, loc).select_from(intel.outerjoin(loc, intel.c.location_id == loc.c.location_id))),
    ]
    return legacy, target, selects


#: The driver read's statements: every compared row, written out here so that the floor uses
#: none of the tool's code (the table and column names are the stores' own).
DRIVER_SELECTS = {
    "legacy": [f"SELECT * FROM {name}" for name in LEGACY_TABLES],
    "target": [
        "SELECT * FROM crime LEFT OUTER JOIN location ON crime.location_id = location.location_id",
        "SELECT * FROM person",
        "SELECT * FROM crime_person",
        "SELECT * FROM intelligence_report LEFT OUTER JOIN location"
        " ON intelligence_report.location_id = location.location_id",
    ],
}


def phase_read(legacy_url: str, target_url: str, typed: str) -> dict:
    return _read_typed(legacy_url, target_url) if typed == "1" else _read_driver(legacy_url, target_url)


def _read_driver(legacy_url: str, target_url: str) -> dict:
    """Every compared row through ``sqlite3`` alone, read-only, with its own text decoding (a
    table holding text that is not UTF-8 is read again with ``surrogateescape``, and named)."""
    import sqlite3

    clock = Clock()
    rows = {"legacy": 0, "target": 0}
    escaped = []
    for side, url in (("legacy", legacy_url), ("target", target_url)):
        conn = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        try:
            for sql in DRIVER_SELECTS[side]:
                try:
                    rows[side] += _count_rows(conn.execute(sql))
                except sqlite3.OperationalError as exc:
                    if "decode" not in str(exc):
                        raise
                    escaped.append(sql)
                    conn.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
                    rows[side] += _count_rows(conn.execute(sql))
                    conn.text_factory = str
        finally:
            conn.close()
    return clock.figures(rows=rows, escaped=escaped)


def _count_rows(cursor) -> int:
    n = 0
    while batch := cursor.fetchmany(5000):
        n += len(batch)
    return n


def _read_typed(legacy_url: str, target_url: str) -> dict:
    """The same rows through SQLAlchemy Core with the schema's types (the tool's store opening)."""
    from core.db import stream

    legacy, target, selects = _compared_selects(legacy_url, target_url)
    clock = Clock()
    rows = {"legacy": 0, "target": 0}
    for engine, stmt in selects:
        side = "legacy" if engine is legacy else "target"
        with engine.connect() as conn:
            for partition in stream(conn, stmt).partitions():
                rows[side] += len(partition)
    figures = clock.figures(rows=rows)
    legacy.dispose()
    target.dispose()
    return figures


def phase_reconcile(legacy_url: str, target_url: str, out: str, batch_size: str, workers: str) -> dict:
    from core.progress import set_quiet
    from reconcile.run import ReconcileOptions, reconcile
    from reports.reconciliation import write_reconciliation_reports

    set_quiet(True)
    timings: dict = {}
    clock = Clock()
    from reconcile.run import default_workers

    count = default_workers() if workers == "auto" else int(workers)
    with TreePeak() as tree:
        result = reconcile(legacy_url, target_url, ReconcileOptions(
            batch_size=int(batch_size), timings=timings, workers=count))
        wall, cpu = time.perf_counter(), time.process_time()
        write_reconciliation_reports(result, Path(out))
        timings["reports"] = (time.perf_counter() - wall, time.process_time() - cpu)
    totals = {e: {"legacy_total": t.legacy_total + t.legacy_excluded, "new_total": t.new_total,
                  "categories": t.categories, "missing_explained": t.missing_explained,
                  "matched_auto": t.matched_auto} for e, t in result.totals.items()}
    return clock.figures(timings=timings, totals=totals, discrepancies=result.discrepancy_count, workers=count,
                         tree_peak_rss_mb=tree.mb)


def phase_datacompy(legacy_url: str, target_url: str) -> dict:
    import datacompy
    import pandas as pd
    import sqlalchemy as sa

    legacy, target, _ = _compared_selects(legacy_url, target_url)
    from core import schema
    from reconcile.stores import target_iops_tables

    lt = schema.legacy_tables(legacy)
    tt = target_iops_tables(target)
    clock = Clock()
    with legacy.connect() as conn:
        df1 = pd.read_sql(sa.select(lt["crime"]), conn)
    crime, loc = tt["crime"], tt["location"]
    with target.connect() as conn:
        df2 = pd.read_sql(sa.select(crime, loc.c.address, loc.c.postcode, loc.c.easting, loc.c.northing,
                                    loc.c.latitude, loc.c.longitude, loc.c.beat)
                          .select_from(crime.outerjoin(loc, crime.c.location_id == loc.c.location_id)), conn)
    loaded = time.perf_counter() - clock.wall
    # Like-named columns on both sides (datacompy compares columns by name); the key trimmed.
    df1 = df1.rename(columns={"mo_text": "mo_summary", "oic": "oic_collar", "addr_line": "address",
                              "pcode": "postcode", "grid_e": "easting", "grid_n": "northing", "div": "district_code"})
    df1["legacy_ref"] = df1["crime_no"].str.strip()
    df2 = df2[df2["legacy_ref"].notna()]
    Compare = getattr(datacompy, "Compare", None) or datacompy.PandasCompare  # renamed in datacompy 1.x
    # Its nearest equivalents of our tolerances: spaces and case ignored, coordinates to 1e-5.
    compare = Compare(df1, df2, join_columns="legacy_ref", df1_name="opus", df2_name="iops",
                      ignore_spaces=True, ignore_case=True, abs_tol=0.00001)
    report = compare.report()
    figures = clock.figures(load_seconds=loaded, report_chars=len(report), rows=[len(df1), len(df2)],
                            mismatched_rows=int(len(compare.all_mismatch())))
    legacy.dispose()
    target.dispose()
    return figures


# ------------------------------------------------------------------------------ main


def _ratios(driver: dict, typed: dict, rec: dict, dc: dict | None) -> str:
    """One round's ratios, on one line."""
    text = (f"whole / driver read {rec['seconds'] / driver['seconds']:.2f}x, "
            f"whole / typed read {rec['seconds'] / typed['seconds']:.2f}x")
    if dc:
        text += f", crime entity / datacompy {rec['timings']['crime'][0] / dc['seconds']:.2f}x"
    return text + f"; {rec['tree_peak_rss_mb']:.0f} MB"


def _print_medians(rounds: list) -> None:
    import statistics

    def median(values) -> str:
        values = sorted(values)
        return f"{statistics.median(values):.2f}x (rounds: {', '.join(f'{v:.2f}' for v in values)})"

    print(f"\nmedians over {len(rounds)} rounds:")
    print(f"  whole / driver read        {median(r['seconds'] / d['seconds'] for d, _, r, _ in rounds)}  (target <= 4x)")
    print(f"  whole / typed read         {median(r['seconds'] / t['seconds'] for _, t, r, _ in rounds)}  (target <= 4x)")
    if all(dc for *_, dc in rounds):
        print(f"  crime entity / datacompy   "
              f"{median(r['timings']['crime'][0] / dc['seconds'] for _, _, r, dc in rounds)}  (target < 1)")
    print(f"  peak RSS, all processes    {max(r['tree_peak_rss_mb'] for _, _, r, _ in rounds):.0f} MB at most"
          f"  (target < 1024)")


def _code_dirs(text: str | None) -> dict[str, Path]:
    """``old=/path,new=/path`` -> {name: tree}; none given: this tree alone."""
    if not text:
        return {}
    trees = {}
    for item in text.split(","):
        name, sep, folder = item.partition("=")
        tree = Path(folder).resolve()
        if not sep or not name or not (tree / "bench" / "bench_reconcile.py").is_file():
            raise SystemExit(f"--code-dirs: {item!r} is not NAME=FOLDER of a tree with bench/bench_reconcile.py")
        trees[name] = tree
    return trees


def _side_by_side(rounds: list, names: list[str]) -> None:
    """Each tree's whole run against the same round's driver read, per round, and the medians."""
    import statistics

    base = names[0]
    print(f"\nside by side (whole reconciliation with reports / the same round's driver read; "
          f"'vs {base}': the run's own time over {base}'s in that round):")
    header = f"{'round':<7}{'driver wall/CPU s':>19}"
    for name in names:
        header += f"{name + ' wall/CPU s':>22}{'wall x':>8}{'CPU x':>8}"
        if name != base:
            header += f"{'vs ' + base + ' CPU':>14}"
    print(header)
    per = {name: {"wall": [], "cpu": [], "vs": []} for name in names}
    for n, (driver, _, recs, _) in enumerate(rounds, 1):
        line = f"{n:<7}{driver['seconds']:>10.1f}/{driver['cpu_seconds']:<8.1f}"
        for name in names:
            rec = recs[name]
            wall, cpu = rec["seconds"] / driver["seconds"], rec["cpu_seconds"] / driver["cpu_seconds"]
            per[name]["wall"].append(wall)
            per[name]["cpu"].append(cpu)
            line += f"{rec['seconds']:>13.1f}/{rec['cpu_seconds']:<8.1f}{wall:>7.2f}x{cpu:>7.2f}x"
            if name != base:
                vs = rec["cpu_seconds"] / recs[base]["cpu_seconds"]
                per[name]["vs"].append(vs)
                line += f"{vs:>13.3f}x"
        print(line)
    line = f"{'median':<7}{'':>19}"
    for name in names:
        line += f"{'':>22}{statistics.median(per[name]['wall']):>7.2f}x{statistics.median(per[name]['cpu']):>7.2f}x"
        if name != base:
            line += f"{statistics.median(per[name]['vs']):>13.3f}x"
    print(line)
    for name in names:
        rec = rounds[-1][2][name]
        phases = ", ".join(f"{phase.strip()} {cpu:.1f}" for phase, (_, cpu) in rec["timings"].items()
                           if not phase.startswith(" "))
        print(f"  {name}, last round, CPU s by phase: {phases}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--workers", default="auto",
                    help="the reconciler's worker processes (default: as the reconciler chooses, one per core up to 4)")
    ap.add_argument("--keep", type=Path, help="work folder to keep and reuse (default: a temporary one)")
    ap.add_argument("--no-datacompy", action="store_true", help="skip the datacompy comparison")
    ap.add_argument("--persons-rate", type=float, default=0.05,
                    help="fraction of persons re-keyed or re-entered in the simulated store, half each, with as "
                         "many look-alikes as either (default 0.05: issue 20's \"5%% of persons re-keyed or "
                         "duplicated\")")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every phase this many times, in turn (read, typed read, reconcile, datacompy; "
                         "again ...), and give each round's ratios and their medians: on a shared machine whose "
                         "speed drifts by 20%% within minutes, one round's ratio is one sample")
    ap.add_argument("--out", type=Path,
                    help="folder for the reconciliation's reports (default: WORK/reconciliation, one folder "
                         "per tree with --code-dirs); give one when the work folder is not yours to write in")
    ap.add_argument("--code-dirs", metavar="NAME=DIR,...",
                    help="reconcile from each of these source trees in turn every round (e.g. "
                         "old=/work/wt/x-old,new=/work/wt/x): each tree's own reconcile phase, the same stores, "
                         "the same driver read; prints their ratios side by side. The first named is the base")
    add_phase_arguments(ap)
    opts = ap.parse_args()
    if run_phase(opts, {
        "prepare": lambda a: phase_prepare(a[0], a[1], int(a[2]), a[3], a[4]),
        "read": lambda a: phase_read(a[0], a[1], a[2]),
        "reconcile": lambda a: phase_reconcile(a[0], a[1], a[2], a[3], a[4]),
        "datacompy": lambda a: phase_datacompy(a[0], a[1]),
    }):
        return

    # Absolute: the children run in other folders (this tree's root, or each of --code-dirs).
    work = (opts.keep or Path(tempfile.mkdtemp(prefix="o2i-bench-recon-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # The vendor's store (and its truth) per persons rate: the OPUS store is shared.
    tag = f"{opts.crimes}-p{opts.persons_rate:g}"
    legacy_db, target_db = work / f"opus-{opts.crimes}.db", work / f"vendor-{tag}.db"
    truth_json = work / f"truth-{tag}.json"
    legacy, target = f"sqlite:///{legacy_db}", f"sqlite:///{target_db}"
    if not (legacy_db.exists() and target_db.exists()):
        target_db.unlink(missing_ok=True)
        print(f"generating {opts.crimes:,} crimes (unless kept) and simulating the vendor's store "
              f"({opts.persons_rate:.1%} of persons re-keyed or re-entered) in {work} ...", flush=True)
        prep = child("prepare", [legacy, target, str(opts.crimes), str(truth_json), str(opts.persons_rate)])
        print(f"  generated in {prep['generate_seconds']:.0f} s, simulated in "
              f"{prep['seconds'] - prep['generate_seconds']:.0f} s")

    trees = _code_dirs(opts.code_dirs)
    out = (opts.out or work / "reconciliation").resolve()
    outs = {name: out / name for name in trees} or {"": out}
    rounds = []
    for n in range(max(1, opts.rounds)):
        if opts.rounds > 1:
            print(f"round {n + 1} of {opts.rounds} ...", flush=True)
        driver = child("read", [legacy, target, "0"])
        typed = child("read", [legacy, target, "1"])
        args = [legacy, target, None, str(opts.batch_size), opts.workers]
        if trees:
            recs = {}
            for name in (list(trees) if n % 2 == 0 else list(reversed(trees))):  # alternating
                args[2] = str(outs[name])
                recs[name] = _child(str(trees[name] / "bench" / "bench_reconcile.py"), "reconcile", args,
                                    cwd=trees[name])
                print(f"  {name}: reconcile {recs[name]['seconds']:.1f} s wall, {recs[name]['cpu_seconds']:.1f} s CPU"
                      f" (driver read {driver['seconds']:.1f} / {driver['cpu_seconds']:.1f})", flush=True)
            rec = recs[list(trees)[-1]]  # printed in full: the last named (the new code)
        else:
            args[2] = str(out)
            rec = child("reconcile", args)
            recs = {"": rec}
        dc = None if opts.no_datacompy else child("datacompy", [legacy, target])
        rounds.append((driver, typed, recs, dc))
        if opts.rounds > 1 and not trees:
            print("  " + _ratios(driver, typed, rec, dc), flush=True)
    if trees:
        _side_by_side(rounds, list(trees))
        print(f"\nthe last round in full ({list(trees)[-1]}):")
    elif opts.rounds > 1:
        _print_medians([(d, t, r[""], dc) for d, t, r, dc in rounds])
        print("\nthe last round in full:")

    totals = rec["totals"]
    records = sum(t["legacy_total"] + t["new_total"] for t in totals.values())
    crime_records = totals["crime"]["legacy_total"] + totals["crime"]["new_total"]
    crime_wall, crime_cpu = rec["timings"]["crime"]
    print()
    print(f"{opts.crimes:,} OPUS crimes; {records:,} legacy + new records compared "
          f"({crime_records:,} crimes); {rec['discrepancies']:,} discrepancies")
    print(f"{'':<34}{'wall s':>9}{'CPU s':>9}{'records/s (wall)':>18}{'peak RSS MB':>13}")

    def line(name, f, n=None, wall=None, cpu=None):
        wall = f["seconds"] if wall is None else wall
        cpu = f["cpu_seconds"] if cpu is None else cpu
        rate = f"{n / wall:>18,.0f}" if n else f"{'':>18}"
        rss = f"{f['peak_rss_mb']:>13.0f}" if f else f"{'':>13}"
        print(f"{name:<34}{wall:>9.1f}{cpu:>9.1f}{rate}{rss}")

    line("(a) plain read, driver values", driver, sum(driver["rows"].values()))
    line("(a) plain read, SQLAlchemy typed", typed, sum(typed["rows"].values()))
    line("reconcile (whole, with reports)", rec, records)
    for phase, (wall, cpu) in rec["timings"].items():
        print(f"  {phase:<32}{wall:>9.1f}{cpu:>9.1f}")
    line("reconcile: crime entity alone", rec, crime_records, crime_wall, crime_cpu)
    if dc:
        line("(b) datacompy, crime tables", dc, dc["rows"][0] + dc["rows"][1])
        print(f"  {'of which pandas load':<32}{dc['load_seconds']:>9.1f}")
    print()
    for name, base in (("driver", driver), ("typed", typed)):
        print(f"reconcile / plain read ({name}): wall {rec['seconds'] / base['seconds']:.2f}x, "
              f"CPU {rec['cpu_seconds'] / base['cpu_seconds']:.2f}x  (target <= 4x)")
    if dc:
        print(f"crime entity / datacompy: wall {crime_wall / dc['seconds']:.2f}x, CPU {crime_cpu / dc['cpu_seconds']:.2f}x"
              f"  (target < 1)")
    if truth_json.exists():  # the person matching's quality on the same run
        from synth.truth import score

        shown = list(outs.values())[-1]
        try:
            persons = score(truth_json, shown / "discrepancies.csv", shown / "crime_stats.csv")["persons"]
        except KeyError as exc:  # reports of an older tree, without a column this scorer reads
            print(f"persons not scored: {shown}'s reports lack {exc}")
            persons = {}
        for category, p in persons.items():
            print(f"person {category}: {p['expected']:,} in the truth, AUTO precision {p['auto_precision']:.4f}, "
                  f"AUTO+REVIEW recall {p['auto_review_recall']:.4f} ({p['auto_pairs']:,} AUTO, "
                  f"{p['review_pairs']:,} REVIEW)")
    workers = rec.get("workers", 1)
    if workers > 1:
        print(f"peak RSS of the reconciliation, all its processes together (sampled every 0.1 s): "
              f"{rec['tree_peak_rss_mb']:.0f} MB (target < 1024); main process {rec['peak_rss_mb']:.0f} MB, "
              f"largest of its {workers} workers {rec['worker_peak_rss_mb']:.0f} MB")
        print("CPU above includes the workers'; wall and CPU per phase likewise")
    else:
        print(f"peak RSS of the reconciliation: {rec['peak_rss_mb']:.0f} MB (target < 1024)")


if __name__ == "__main__":
    main()
