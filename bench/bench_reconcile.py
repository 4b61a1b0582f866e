"""Benchmark: reconcile a large OPUS store against its simulated (faulty) iOPS store, side by
side with (a) simply reading every compared row of both stores and (b) datacompy comparing
the two crime tables.

    .venv/bin/python bench/bench_reconcile.py [--crimes 1000000] [--keep DIR] [--batch-size N]

Needs the 'bench' extra for (b): ``pip install datacompy pandas``.

Each measured phase runs in its own child process, so its peak RSS is its own, and reports
wall *and* CPU seconds (on a shared machine the wall time depends on what else runs; the CPU
time of an all-SQLite run does not). Stores are generated (``synth.generate``) and simulated
(``synth.simulate``) once into the work folder and reused by later runs with ``--keep``.

Phases:
* ``read_driver``  — every compared row of both stores through the DB-API driver, no type
  conversion: the practical limit of reading them in Python.
* ``read_typed``   — the same rows through SQLAlchemy Core with the schema's types (aware UTC
  datetimes, floats): what any Python tool reading these stores pays.
* ``reconcile``    — ``reconcile.run.reconcile`` with its four reports; per-phase times.
* ``datacompy``    — pandas loads the legacy CRIME table and the iOPS crime table (joined to
  its location) and datacompy compares them on the legacy key and writes its report. It
  cannot apply the mapping, so it compares like-named columns only: a speed baseline, not an
  equivalent result.

Targets (issue 4): whole reconciliation within 4x the plain read; the crime entity faster
than datacompy; peak RSS under 1 GB.

Session 8 (2026-11-28, commit ab3a5f6: a legacy date and time are each parsed once per stored
text — mappings/parse.py, _pair's _DAYS/_MINUTES — and an instant on a day with one UTC offset
is its local midnight in UTC plus the minutes), same machine type, far less loaded than in
session 7 (the driver read took 21 s instead of 44-47 s). Nine rounds in three runs of
``--rounds 3``; run A is the code before ab3a5f6, runs B and C the code after it:

  1,000,000 crimes         driver read  typed read  reconcile  crime entity  datacompy   whole/driver  whole/typed  crime/datacompy
  run A, round 1                     -           -          -             -          -         3.35x        2.54x        0.72x
  run A, round 2                     -           -          -             -          -         3.44x        2.73x        0.80x
  run A, round 3                  21.3        28.3       78.3          34.2       43.4         3.67x        2.77x        0.79x
  run B, round 1                     -           -          -             -          -         3.61x        2.73x        0.77x
  run B, round 2                     -           -          -             -          -         3.57x        2.67x        0.77x
  run B, round 3                  21.9        27.5       75.8          33.1       40.6         3.47x        2.76x        0.82x
  run C, round 1                     -           -          -             -          -         3.66x        2.78x        0.84x
  run C, round 2                     -           -          -             -          -         3.45x        2.82x        0.82x
  run C, round 3                  21.0        26.1       73.0          31.9       41.5         3.48x        2.80x        0.77x
  median of the nine                                                                           3.48x        2.76x        0.79x
  (peak RSS 420-425 MB in every round)

  Every target held in all nine rounds. The crime entity's CPU in the last round of each run:
  63.6 s (A), 61.3 s (B), 59.2 s (C) — against datacompy's 40.5-43.3 s of CPU (CPU ratio
  1.43-1.47x): the reconciler is faster in wall time because it uses both cores and datacompy
  one. That is why the crime-entity ratio moves with the machine's load: in session 7, with
  other work on the host, it was 0.88-1.06x; here 0.72-0.84x.
  What changed, measured side by side (old and new code, same process type, same rows):
  * map_crimes (the reconciler's mapping, 60,000 crimes of the 1M store, min of 5): 17.2 ->
    13.0 us a crime; the worker's whole path for a crime batch (legacy range read, mapping,
    target look-up, comparison, statistics cells; 150 batches): 49.0-51.3 -> 45.8-46.8 us.
  * The 1M run's discrepancies.csv and crime_stats.csv are byte-identical to the code before;
    scores against the truth unchanged (MISSING 49,284, ALTERED 63,485, DUPLICATE 3,949,
    UNEXPECTED 1,626: precision and recall 1.0000 each; PROBABLE_MATCH AUTO precision 1.0000,
    AUTO+REVIEW recall 0.9990; crime_stats.csv EQUAL).
  Where a crime's CPU goes now (worker, single process, 1M store): mapping ~13 us, target
  look-up ~14 (of which SQLite's own B-tree work ~10), legacy range read ~6-8 (SQLite ~4, the
  row dicts ~2), comparison and statistics cells ~6; the main process ~5 s for the pass
  (outcomes applied in key order, key ranges) and the census thread ~2.5 s.
  Measured and not kept:
  * the storability check with one test per value (12.6-13.2 against 12.2-13.1 us a crime);
  * the target look-up's IN list as one JSON array (json_each) or as 2,000 fixed parameters
    instead of SQLAlchemy's expanding parameter: 9.5-10.5 and 10.5-11.5 against 10.4-10.9 us;
  * raw DB-API rows for the legacy range read: the same 6.1-6.8 us once the row dicts are
    built (SQLAlchemy's own overhead there is small);
  * a bigger SQLite page cache for the link look-ups (16 MB / 64 MB: 11.4-11.6 / 11.4 against
    10.6-10.8 us a link of user+system CPU), and the key ranges cut by a window function (row_number)
    instead of streaming the keys (0.51 against 0.54 s for a million keys);
  * the intelligence subject's NOM_ID joined into the report's look-up instead of a second
    query: 40.2-43.5 against 40.6-42.3 us a report (the same B-tree seeks either way);
  * memory-mapped SQLite reads (mmap_size): ~24% less CPU for the link look-ups (7.9-8.1
    against 10.3-10.8 us a link, nearly all of it system time saved), neutral for the crime look-ups — not
    kept, because every page of the store a worker touches would count in its resident memory
    (two workers over a 1.5 GB store would pass the 1 GB target).

Session 7 (2026-11-28, commits de7aa2e..: plain rows written into the workbook as XML text,
reports/xlsx.py RowStream; instants read without datetime.replace, core/schema.py; the
reconciler's mapping does not parse LAST_UPD), same machine type. Nine rounds, in three runs of
``--rounds 3`` (wall seconds; ratios within a round):

  1,000,000 crimes         driver read  typed read  reconcile  crime entity  datacompy   whole/driver  whole/typed  crime/datacompy
  run A, round 1                     -           -          -             -          -         3.15x        2.71x        0.90x
  run A, round 2                     -           -          -             -          -         2.74x        2.49x        0.95x
  run A, round 3                  45.6        55.1      163.8          78.1       73.5         3.59x        2.97x        1.06x
  run B, round 1                     -           -          -             -          -         3.60x        4.09x        0.94x
  run B, round 2                     -           -          -             -          -         3.13x        2.56x        1.05x
  run B, round 3                  43.6        58.1      160.0          69.8       72.2         3.67x        2.76x        0.97x
  run C, round 1                     -           -          -             -          -         2.86x        2.72x        1.02x
  run C, round 2                     -           -          -             -          -         3.56x        2.93x        0.98x
  run C, round 3                  46.9        53.0      151.2          65.7       75.0         3.23x        2.85x        0.88x
  median of the nine                                                                           3.23x        2.76x        0.97x
  (peak RSS 418-422 MB in every round; B1's typed read ran faster than its driver read)

  The whole reconciliation is within 4x the driver read in all nine rounds (session 6: 5 of 9,
  median 3.97x), within 4x the typed read in 8 of 9; the crime entity beats datacompy in 6 of 9
  (session 6: 3 of 9, median 1.03x).
  Where it came from, A/B interleaved (reconcile alone, 2 workers, two pairs):
  * the workbook's rows: openpyxl made a cell object per value and wrote it element by element
    (~170-190 us a discrepancy row with its CSV row); plain rows are now written as XML text,
    byte for byte the same (~50-60 us): whole 179.5/182.7 s against 187.7/190.4 s; the reports
    after the last pass 11.2 -> 4.0 s; the crime rows written beside the link pass 23 -> 8-10 s
    of CPU (the link pass 46 -> 40-42 s).
  * instants: fromisoformat(text + "+00:00") and epoch arithmetic instead of parse-then-
    datetime.replace (0.27 against 1.9 us a value, two or three a crime) — within the noise of
    a whole run (178.3/166.7 against 172.2/175.2 s);
  * LAST_UPD not parsed by the reconciler (it compares no created_at/updated_at): map_crimes
    47 -> ~41 us a crime (single process, 60,000 crimes).
  Scores of run B's output against the truth: unchanged (every category 1.0000; AUTO
  precision 1.0000, AUTO+REVIEW recall 0.9990; crime_stats.csv EQUAL).
  Measured and not kept: target look-ups by key range instead of IN (17-20 against 19-20 us a
  crime, and a second look-up for the keys not in the range). Measured, not pursued: the link
  pass's look-ups in the legacy key's text order are ~10% cheaper (target links ~21-22 against
  ~23-25 us a crime), but the key sets give year-then-number order, and merging a million keys
  into text order would be new work for the main process (not measured).

Session 6 (2026-11-28, commits 2df8014..: the new store's keys are read by a thread beside the
keyed pass — reconcile/census.py — instead of scanned after it; --rounds), same machine type as
session 5 and as noisy. Nine rounds of the same code, in three runs of ``--rounds 3``, each round
all four phases in turn (wall seconds; ratios within a round):

  1,000,000 crimes         driver read  typed read  reconcile  crime entity  datacompy   whole/driver  whole/typed  crime/datacompy
  run A, round 1                     -           -          -             -          -         3.55x        2.57x        1.03x
  run A, round 2                     -           -          -             -          -         3.72x        2.76x        1.10x
  run A, round 3                  36.4        53.9      189.3          81.0       93.2         5.19x        3.51x        0.87x
  run B, round 1                     -           -          -             -          -         4.09x        2.49x        1.45x
  run B, round 2                     -           -          -             -          -         4.13x        2.10x        1.01x
  run B, round 3                  36.1        53.5      134.9          58.5       60.2         3.74x        2.52x        0.97x
  run C, round 1                     -           -          -             -          -         4.53x        2.54x        1.44x
  run C, round 2                     -           -          -             -          -         3.97x        2.63x        0.66x
  run C, round 3                  60.1       102.2      176.0          73.0       70.6         2.93x        1.72x        1.03x
  median of the nine                                                                           3.97x        2.54x        1.03x
  (only the last round of each run prints its phases in full; peak RSS 417-420 MB in every round)

  The whole reconciliation is within 4x the driver read in 5 rounds of 9 (median 3.97x) and
  within 4x the typed read in all 9; the crime entity beats datacompy in 3 of 9 (median 1.03x).
  The machine: the same driver read took 36.1 s in one round and 60.1 s in another, datacompy
  60.2 s and 93.2 s, the reconciliation 134.9 s and 189.3 s.
  Scores of run B's output against the truth: unchanged (every category 1.0000; AUTO precision
  1.0000, AUTO+REVIEW recall 0.9990; crime_stats.csv EQUAL).

  The census, A/B interleaved against the code before it (reconcile alone, 2 workers, first
  pair; the machine slowed ~15% during the second): crime scan after the pass 4.2 -> 0.8 s,
  similarity 6.3 -> 4.5 s, but the keyed pass 50.9 -> 55.3 s, since on 2 vCPUs the thread's
  4.5 s of CPU comes out of the busy workers: crime entity 61.9 -> 61.0 s, whole 146.7 -> 146.4
  s. Neutral here; the serial tail after each pass is ~5 s shorter at 1M crimes, which pays
  where a core or the database server has room.
  Measured and not kept: each batch's locations fetched apart in one sorted IN instead of
  joined (raw SQLite 11.0 -> 8.0 us a crime, but through SQLAlchemy the second statement's
  2,000 bound ids cost it back: 20.2 -> 24.9 us in the look-up).

Session 5 (2026-11-28, commits b9564a1..: the crime rows and the crime statistics are written
into the reports by a thread while the link and intelligence passes run; the link pass takes
its crimes from the key sets; a key is claimed with one look-up), on a slower and noisier
machine than session 4's — its two vCPUs slow each other down (a pure-Python loop: 2.1-2.9 s
alone, 2.9-3.5 s with a second one running), which the 2-worker reconciliation pays and the
single-process read does not; the same code's CPU seconds varied by 13% between runs:

  1,000,000 crimes              start (code of 7698fc3)   end (this code), three runs
                                    wall s   CPU s       wall s  CPU s   wall s  CPU s   wall s  CPU s
  plain read, driver values           39.0    38.7         34.5   34.1     42.0   41.2     37.2   36.6
  plain read, SQLAlchemy typed        61.6    61.5         54.7   54.6     53.1   53.0     55.7   55.7
  reconcile, whole with reports      226.9   383.8        173.0  311.0    201.1  357.0    135.1  245.0
    reports (at the end)              26.2    26.4          8.1    8.2      8.7    8.7      6.3    6.4
    crime rows + statistics, early       -       -         32.1   19.9     28.3   17.7     23.5   14.7
  crime entity (keyed+scan+similarity) 94.4  164.0         67.8  122.3     93.3  164.2     59.9  109.6
  datacompy, crime tables             81.8    81.3         67.8   67.7     63.6   63.5     54.3   54.3
  ratios: whole / driver read        5.82x                 5.02x           4.79x           3.63x
          whole / typed read         3.68x                 3.16x           3.79x           2.43x
          crime entity / datacompy   1.15x                 1.00x           1.47x           1.10x
  peak RSS, all processes           425 MB                413 MB          410 MB          407 MB
  A fourth run with the final code (commit 3be93a8, storable check on OPUS text only): driver
  read 37.3 s, typed 53.8 s, reconcile 211.5 s (CPU 377.3 s) = 5.67x / 3.93x;
  crime entity 88.4 s against datacompy 76.5 s = 1.16x; reports at the end 10.0 s; 417 MB —
  the same machine's slow phase (every phase's CPU seconds up ~20% on run 3's).

  Interleaved, reconcile alone (2 workers; session 4's code / the first change, link keys from
  the key sets, plus the early reports): 201.4 / 180.9 / 196.8 / 207.1 s — within the machine's
  noise of each other; the reports phase itself went 25.2 / 21.6 s -> 10.6 / 12.9 s.
  Scores of the end run against the truth: unchanged (every category 1.0000; AUTO precision
  1.0000, AUTO+REVIEW recall 0.9990; crime_stats.csv EQUAL).
  Measured and not kept: SQLite memory-mapped reads (target look-ups ~13-20 -> ~10.5-14 us a
  key, but every page a worker touches counts in its RSS — two workers over the 1.5 GB iOPS
  store would pass the 1 GB target — and a disk error would become SIGBUS instead of a
  one-line StoreUnavailable); a vectorised storable check (slower, as in session 4).

Session 4 (2026-11-28, commit 5b87f70: workers read their batches by key range, compare links
themselves, and the reconciler maps without computing ids), SQLite both sides, one run on a
machine faster than session 3's (the same driver read took 39.3 s then, 21.1 s now):

  1,000,000 crimes (7,738,902 legacy + new records, 130,071 discrepancies)
                                    wall s   CPU s   peak RSS
  plain read, driver values           21.1    21.0      50 MB
  plain read, SQLAlchemy typed        35.0    35.0      77 MB
  reconcile, whole with reports       90.3   155.6     428 MB all processes (main 223, each worker <= 223)
                                                               2.58x the typed read, 4.27x the driver read (wall)
    person 13.1 / crime 38.4 (keyed 32.3, scan of iOPS 2.3, similarity 3.7) / links 16.5 /
    intelligence 9.5 / reports 11.3 s wall
  datacompy, crime tables only        46.9    46.9    3870 MB  (37.9 s of it pandas loading)
                                                               crime entity 0.82x its wall
  scores against the truth unchanged (below); at 100k discrepancies.csv and crime_stats.csv are
  byte-identical to session 3's, with 1 and with 2 workers.
  A second run 15 minutes later: reconcile 90.3 s against 22.5 s driver / 31.9 s typed read
  (4.02x / 2.83x), crime entity 36.7 s = 0.79x datacompy (46.2 s), 426 MB.

Measured this session and not kept (same machine, interleaved runs of the whole 1M
reconciliation): comparing a crime's links inside its keyed batch (crime + links 53.8 s before,
54.6 s after; and the crime entity's own time could no longer be measured apart from its
links); starting the next pass's workers (at lower priority) while this process runs a pass's
serial tail (87.5 s mean of 3 against 87.2 s); 6 instead of 2 batches in flight per worker
(no difference); 3 workers on 2 cores (91.0 s against 88.4 s); a 16-64 MB SQLite page cache
(no difference); the workbook written by a forked process beside the CSVs (reports 10.1 s
against 10.8 s: the workbook alone is ~9 s of them).

Session 3 (2026-11-28, commit 02d9090: keyed and link passes shared by 2 worker
processes, reconcile/parallel.py; lxml under openpyxl; mapping without the caches that missed),
quiet machine, SQLite both sides, one run:

  1,000,000 crimes (7,738,902 legacy + new records, 130,071 discrepancies)
                                    wall s   CPU s   peak RSS
  plain read, driver values           39.3    38.7      50 MB
  plain read, SQLAlchemy typed        63.6    63.5      76 MB
  reconcile, whole with reports      233.9   408.5     488 MB all processes (main 233, each worker <= 233)
                                                               3.68x the typed read, 5.95x the driver read (wall)
    person 32.9 / crime 92.5 (keyed 76.5, scan of iOPS 4.8, similarity 10.8) / links 53.4 /
    intelligence 28.2 / reports 24.7 s wall
  datacompy, crime tables only        67.4    67.3    3863 MB  (53.2 s of it pandas loading)
                                                               crime entity 1.37x its wall
  scored against the simulator's truth (synth.truth.score): MISSING 49,284, ALTERED 63,485,
  DUPLICATE 3,949, UNEXPECTED 1,626 — each precision and recall 1.0000; PROBABLE_MATCH AUTO
  precision 1.0000, AUTO recall 0.9935, AUTO+REVIEW recall 0.9990 of 11,739 re-keyed;
  crime_stats.csv equal (13,444 rows) — the same as the single-process run of session 2.

Earlier the same day, commit 077220b (before the mapping caches were dropped): 295.7 s wall /
522.1 s CPU against 84.5 s typed / 48.8 s driver read (3.50x / 6.05x), crime entity 123.6 s =
1.46x datacompy (84.9 s), 558 MB all processes. The machine's speed varied by ~25% between
runs (the driver read took 60.1, 48.8 and 39.3 s in three runs): only ratios within one run
compare.

This machine is not the one of session 2: compare ratios within one run. A first run this session (before the key sets moved to bitmaps and the statistics cells
were pickled once per batch) measured 369.3 s wall vs 110.6 s typed / 60.1 s driver read, crime
entity 1.51x datacompy, and up to 1,098 MB for all processes counted as main + 2 x the largest
worker; the tree is now sampled instead.

The whole reconciliation is within 4x the typed read, and its memory well under 1 GB. It is
not within 4x of the driver read, and the crime entity is not faster than datacompy: the work
is CPU-bound on both cores (408 s of CPU in 234 s), most of it the mapping of ``mappings/``
(which the reconciler must run: it defines the expected values; ~50 us a crime on this
machine), the keyed look-ups and the comparison — none of which datacompy does.

Session 2 (2026-11-27, single process, code of 3ecf336; other machine): reconcile 350.1 s wall /
345.9 s CPU, 551 MB = 5.9x the typed read (59.2 s); crime entity 147.0 s = 2.05x datacompy (71.6 s).
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


def phase_prepare(legacy_url: str, target_url: str, crimes: int, truth: str) -> dict:
    from core.progress import set_quiet
    from synth.generate import generate
    from synth.simulate import simulate

    set_quiet(True)
    clock = Clock()
    generate(legacy_url, crimes=crimes, seed=2019)
    generated = time.perf_counter() - clock.wall
    simulate(legacy_url, target_url, seed=7, truth_path=truth)
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


def phase_read(legacy_url: str, target_url: str, typed: str) -> dict:
    from core.db import stream

    legacy, target, selects = _compared_selects(legacy_url, target_url)
    clock = Clock()
    rows = {"legacy": 0, "target": 0}
    for engine, stmt in selects:
        side = "legacy" if engine is legacy else "target"
        with engine.connect() as conn:
            if typed == "1":
                result = stream(conn, stmt)
            else:  # the driver's own values: no SQLAlchemy type processing
                sql = str(stmt.compile(dialect=engine.dialect))
                result = conn.execution_options(stream_results=True, yield_per=5000).exec_driver_sql(sql)
            for partition in result.partitions():
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crimes", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--workers", default="auto",
                    help="the reconciler's worker processes (default: as the reconciler chooses, one per core up to 4)")
    ap.add_argument("--keep", type=Path, help="work folder to keep and reuse (default: a temporary one)")
    ap.add_argument("--no-datacompy", action="store_true", help="skip the datacompy comparison")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every phase this many times, in turn (read, typed read, reconcile, datacompy; "
                         "again ...), and give each round's ratios and their medians: on a shared machine whose "
                         "speed drifts by 20%% within minutes, one round's ratio is one sample")
    add_phase_arguments(ap)
    opts = ap.parse_args()
    if run_phase(opts, {
        "prepare": lambda a: phase_prepare(a[0], a[1], int(a[2]), a[3]),
        "read": lambda a: phase_read(a[0], a[1], a[2]),
        "reconcile": lambda a: phase_reconcile(a[0], a[1], a[2], a[3], a[4]),
        "datacompy": lambda a: phase_datacompy(a[0], a[1]),
    }):
        return

    work = opts.keep or Path(tempfile.mkdtemp(prefix="o2i-bench-recon-"))
    work.mkdir(parents=True, exist_ok=True)
    legacy_db, target_db = work / f"opus-{opts.crimes}.db", work / f"vendor-{opts.crimes}.db"
    legacy, target = f"sqlite:///{legacy_db}", f"sqlite:///{target_db}"
    if not (legacy_db.exists() and target_db.exists()):
        for p in (legacy_db, target_db):
            p.unlink(missing_ok=True)
        print(f"generating {opts.crimes:,} crimes and simulating the vendor's store in {work} ...", flush=True)
        prep = child("prepare", [legacy, target, str(opts.crimes), str(work / f"truth-{opts.crimes}.json")])
        print(f"  generated in {prep['generate_seconds']:.0f} s, simulated in "
              f"{prep['seconds'] - prep['generate_seconds']:.0f} s")

    rounds = []
    for n in range(max(1, opts.rounds)):
        if opts.rounds > 1:
            print(f"round {n + 1} of {opts.rounds} ...", flush=True)
        driver = child("read", [legacy, target, "0"])
        typed = child("read", [legacy, target, "1"])
        rec = child("reconcile", [legacy, target, str(work / "reconciliation"), str(opts.batch_size), opts.workers])
        dc = None if opts.no_datacompy else child("datacompy", [legacy, target])
        rounds.append((driver, typed, rec, dc))
        if opts.rounds > 1:
            print("  " + _ratios(driver, typed, rec, dc), flush=True)
    if opts.rounds > 1:
        _print_medians(rounds)
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
