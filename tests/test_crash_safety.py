"""Crash safety: a migration killed with SIGKILL at any moment loses at most its batch in flight.

The real CLI runs in a subprocess and is killed at seeded random moments — while Python is
still importing, while the schema or the run row is being created, in the middle of a batch
transaction, between batches. After each kill the run is resumed with ``--resume RUN_ID`` (or
started afresh if the kill came before the run row existed) and killed again, until it
completes. Every finished target must then be row-for-row what an uninterrupted run writes,
with a ledger that accounts for every row exactly once.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import schema
from core.digest import read_written
from migrate import records
from tests.opus_fixture import make_legacy
from tests.test_migrate import table_digests

ROOT = Path(__file__).resolve().parent.parent
IOPS_TABLES = schema.TARGET_TABLES
BATCH = 10
KILLS_PER_BACKEND = 20


# ------------------------------------------------------------------ a store of a few hundred crimes


def build_legacy(url: str, crimes: int = 300, seed: int = 5, padded_duplicates: bool = True) -> str:
    """An OPUS store with ``crimes`` crimes (and as many nominals, links, a third as much
    intelligence) holding the quirks that make resume hard: excluded and rejected records,
    keys that are duplicates once trimmed, links to rejected crimes and absent nominals,
    subjects that are absent. Every LAST_UPD is set, so two runs at different times write
    identical rows. ``padded_duplicates`` needs a store that does not enforce CRIME_NO's
    VARCHAR(12) (SQLite): on a server ' CR/000030/18 ' does not fit."""
    rnd = random.Random(seed)
    crime_rows = []
    for i in range(1, crimes + 1):
        row = {"crime_no": f"CR/{i:06d}/18"}
        if i % 17 == 0:
            row["del_flag"] = "Y"  # excluded
        if i % 23 == 0:
            row["off_code"] = "OLDCODE"  # UNMAPPED_OFFENCE
        if i % 29 == 0:
            row["rec_date"] = "31/02/2018"  # INVALID_DATE
        if padded_duplicates and i % 31 == 0:
            row["crime_no"] = f" CR/{i - 1:06d}/18 "  # DUPLICATE_KEY of its neighbour once trimmed
        if i % 7 == 0:
            row["grid_e"] = row["grid_n"] = None  # a crime without a location row
        crime_rows.append(row)
    nominals = []
    for n in range(1, crimes + 1):
        row = {"nom_id": n, "surname": rnd.choice(["SMITH", "O'BRIEN, SEAN", "MÜLLER", "KHAN"])}
        if n % 19 == 0:
            row["surname"] = "  "  # MISSING_NAME
        if n % 13 == 0:
            row["del_flag"] = "Y"
        nominals.append(row)
    links = set()
    for i in range(1, crimes + 1):
        for _ in range(rnd.randint(0, 2)):  # some nominal ids beyond the last: ORPHAN_LINK
            links.add((f"CR/{i:06d}/18", rnd.randint(1, crimes + 5), rnd.choice("VSWVs")))
    intel = []
    for k in range(1, crimes // 3 + 1):
        row = {"intel_no": f"IN/{k:06d}/18", "subj_nom_id": rnd.choice([None, rnd.randint(1, crimes + 5)])}
        if k % 11 == 0:
            row["src_eval"] = "Z"  # INVALID_GRADING
        intel.append(row)
    return make_legacy(url, crimes=crime_rows, nominals=nominals,
                       links=[{"crime_no": c, "nom_id": n, "role": r} for c, n, r in sorted(links)],
                       intel=intel)


def migrate_cmd(legacy: str, target: str, *extra: str, batch_size: int = BATCH) -> list[str]:
    return [sys.executable, "main.py", "migrate", "--legacy", legacy, "--target", target,
            "--batch-size", str(batch_size), "--quiet", *extra]


class CliProcess:
    """The CLI in a subprocess, its output going to files: a pipe nobody reads while we poll the
    target would block a process that prints a lot (a traceback) and hang the test."""

    def __init__(self, args: list[str]):
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._out, stderr=self._err, text=True)
        self.pid = self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end (``TimeoutExpired`` after ``timeout``); return (stdout, stderr)."""
        self.proc.wait(timeout=timeout)
        texts = []
        for f in (self._out, self._err):
            f.seek(0)
            texts.append(f.read())
        return texts[0], texts[1]


def start_migrate(legacy: str, target: str, *extra: str, batch_size: int = BATCH) -> CliProcess:
    return CliProcess(migrate_cmd(legacy, target, *extra, batch_size=batch_size))


# ------------------------------------------------------------------ reading a target


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def target_exists(url: str) -> bool:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False  # do not let our own probe create the file
    return True


def runs_of(url: str) -> list[dict]:
    """The mig_run rows of the target (empty if the table does not exist yet)."""
    if not target_exists(url):
        return []
    engine = _engine(url)
    try:
        if not sa.inspect(engine).has_table("mig_run"):
            return []
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(schema.mig_run).order_by(schema.mig_run.c.run_id))
                    .mappings()]
    finally:
        engine.dispose()


def batches_committed(url: str) -> int:
    if not target_exists(url):
        return 0
    engine = _engine(url)
    try:
        if not sa.inspect(engine).has_table("mig_checkpoint"):
            return 0
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(schema.mig_checkpoint.c.batches), 0))
                                ).scalar_one()
    finally:
        engine.dispose()


def all_rows(url: str, table_name: str) -> list[dict]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(schema.target_metadata.tables[table_name])).mappings()]
    finally:
        engine.dispose()


def bookkeeping(url: str) -> dict:
    """What the run recorded about itself, independent of run ids and row order."""
    xref = sorted((r["entity"], r["legacy_key"], bytes(r["source"]), bytes(r["written"]))
                  for r in all_rows(url, "mig_xref"))
    rejects = sorted((r["entity"], r["legacy_key"], r["reason"], r["field"] or "", r["value"] or "", r["raw_row"])
                     for r in all_rows(url, "mig_reject"))
    warnings = sorted((r["entity"], r["legacy_key"], r["reason"], r["field"] or "", r["value"] or "")
                      for r in all_rows(url, "mig_warning"))
    ledger = sorted((r["table_name"], r["row_key"], r["legacy_key"], r["action"], r["digest"])
                    for r in all_rows(url, "mig_ledger"))
    return {"xref": xref, "rejects": rejects, "warnings": warnings, "ledger": ledger}


def assert_consistent(url: str, reference: dict) -> None:
    """The target at ``url`` is what the uninterrupted run wrote, and its ledger adds up."""
    runs = runs_of(url)
    assert len(runs) == 1, f"a killed run must be resumed, not restarted: {[r['run_id'] for r in runs]}"
    run = runs[0]
    assert run["state"] == "complete"
    counts = json.loads(run["counts"])
    assert counts == reference["counts"]
    for entity, c in counts.items():
        assert c["read"] == c["written"] + c["updated"] + c["unchanged"] + c["excluded"] + c["rejected"], entity

    assert table_digests(url) == reference["digests"]

    # No duplicates: each legacy record has one target row.
    for table_name, column in (("crime", "legacy_ref"), ("intelligence_report", "legacy_ref"),
                               ("person", "legacy_nominal_id")):
        refs = collections.Counter(r[column] for r in all_rows(url, table_name))
        assert refs and max(refs.values()) == 1, (table_name, [k for k, n in refs.items() if n > 1][:5])

    # Every target row is named exactly once by the bookkeeping — by the mig_xref row of the
    # record it belongs to (a first run writes no ledger row) — and it names nothing else.
    assert all_rows(url, "mig_ledger") == []
    ledger_keys = collections.Counter()
    for r in all_rows(url, "mig_xref"):
        keys = records.target_keys(r["entity"], r["legacy_key"])
        for table_name in read_written(bytes(r["written"]), schema.TARGET_TABLES, records.WIDTH):
            ledger_keys[(table_name, keys[table_name])] += 1
    assert max(ledger_keys.values()) == 1
    target_keys = set()
    for table_name in IOPS_TABLES:
        keys = schema.TARGET_KEYS[table_name]
        target_keys |= {(table_name, "|".join(str(r[k]) for k in keys)) for r in all_rows(url, table_name)}
    assert set(ledger_keys) == target_keys

    # Cross-references = the accepted records; rejects and warnings recorded once each.
    book = bookkeeping(url)
    xref_by_entity = collections.Counter(entity for entity, *_ in book["xref"])
    assert {e: n for e, n in xref_by_entity.items()} == {e: c["written"] for e, c in counts.items() if c["written"]}
    assert sum(c["rejected"] for c in counts.values()) == len(book["rejects"])
    assert book == reference["book"]

    # Every entity's checkpoint says done.
    checkpoints = all_rows(url, "mig_checkpoint")
    assert {r["entity"] for r in checkpoints if r["done"]} == set(counts), checkpoints

    # Nothing left holding the target.
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.mig_lock)).scalar_one() == 0
    finally:
        engine.dispose()


# ------------------------------------------------------------------ the test


class Progress:
    """Polls how many batches the target has committed (0 while it has no checkpoint table)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = None

    def batches(self) -> int:
        if not target_exists(self.url):
            return 0
        if self.engine is None:
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with self.engine.connect() as conn:
                total = conn.execute(sa.select(sa.func.sum(schema.mig_checkpoint.c.batches))).scalar_one()
        except sa.exc.DBAPIError:  # no table yet, or the file is mid-creation
            return 0
        return total or 0

    def wait_for(self, proc: "CliProcess", batches: int, timeout: float = 60) -> bool:
        """True once ``batches`` are committed; False if the process ended first."""
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if self.batches() >= batches:
                return True
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress to {batches} batches in {timeout} s")
            time.sleep(0.005)
        return False

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def kill(proc: CliProcess) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()  # reap it: a zombie would still look alive to the lock's pid check


@pytest.mark.parametrize("target_backend", ["sqlite", "postgresql"])
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(target_backend, make_store, tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}")

    # The uninterrupted run, through the same CLI. How long it takes to commit its first
    # batch scales the kills aimed at start-up (imports, schema, lock, run row).
    straight = make_store(target_backend, "straight")
    began = time.monotonic()
    proc = start_migrate(legacy, straight)
    progress = Progress(straight)
    assert progress.wait_for(proc, 1)
    startup = time.monotonic() - began
    progress.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "run 1 complete" in out
    (straight_run,) = runs_of(straight)
    reference = {"counts": json.loads(straight_run["counts"]), "digests": table_digests(straight),
                 "book": bookkeeping(straight)}
    assert all(c["written"] > 0 and c["rejected"] > 0 for c in reference["counts"].values())

    rnd = random.Random(f"crash-{target_backend}")
    kills = {"startup": 0, "mid_run": 0}
    chains = 0
    target = make_store(target_backend, f"crash{chains}")
    while True:
        runs = runs_of(target)
        assert len(runs) <= 1
        if runs and runs[0]["state"] == "complete":
            # This chain reached the end: check it, then start another on a fresh target.
            assert_consistent(target, reference)
            chains += 1
            if sum(kills.values()) >= KILLS_PER_BACKEND:
                break
            target = make_store(target_backend, f"crash{chains}")
            continue
        # Killed before the run row existed: start afresh (the dead holder's lock must be taken over).
        extra = ("--resume", str(runs[0]["run_id"])) if runs else ()
        progress = Progress(target)
        before = progress.batches()
        proc = start_migrate(legacy, target, *extra)
        try:
            if sum(kills.values()) >= KILLS_PER_BACKEND:
                out, err = proc.communicate(timeout=120)  # enough kills: let this chain finish
            elif rnd.random() < 0.3:
                # While starting: importing, creating the schema, taking the lock, writing the run row.
                out, err = proc.communicate(timeout=rnd.uniform(0.0, startup * 1.2))
            else:
                # After a random number of committed batches, plus a random fraction of a batch:
                # inside a batch transaction, or between two.
                if progress.wait_for(proc, before + rnd.randint(1, 8)):
                    time.sleep(rnd.uniform(0.0, 0.03))
                    kill(proc)
                    kills["mid_run"] += 1
                    continue
                out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            kill(proc)
            kills["startup"] += 1
            continue
        finally:
            progress.close()
        assert proc.returncode == 0, f"run exited {proc.returncode}: {err}"
        assert "complete" in out

    print(f"{target_backend}: kills {kills}, chains {chains}, startup {startup:.2f} s")
    # The kills must have hit the work itself, not only Python starting up.
    assert sum(kills.values()) >= KILLS_PER_BACKEND
    assert kills["mid_run"] >= 10 and kills["startup"] >= 3, kills
