"""The whole story on embedded SQLite, in one call (``make demo``).

1. generate a synthetic OPUS store with every quirk;
2. migrate it into a clean iOPS store with this tool;
3. simulate a faulty vendor migration of the same store beside it;
4. reconcile both against OPUS and write the auditors' reports;
5. the cutover (cutover.md), on copies of the stores of step 2: officers edit crimes in iOPS,
   OPUS users correct and delete crimes and record new ones, and a delta run reports its
   conflicts and leaves the officers' work in place.

The clean migration should reconcile with no unexplained discrepancy (its MISSING records
are the mapping's rejects, each with its reason); the vendor's should not.

Step 5 writes to a *copy* of the legacy store: the demo plays the OPUS users, whose edits are
the demo's own. The tool never writes a legacy store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import OutputError
from core.pool import Pool


@dataclass
class DemoResult:
    out_dir: Path
    crimes: int
    seconds: float
    migration: object  # migrate.engine.MigrationResult
    simulation: object  # synth.simulate.SimulationResult
    own: object  # reconcile.model.ReconResult for the tool's own migration
    vendor: object  # reconcile.model.ReconResult for the simulated vendor migration
    stores: dict[str, str] = field(default_factory=dict)
    cutover: "CutoverStory | None" = None

    def summary_lines(self) -> list[str]:
        m = self.migration
        lines = [
            f"demo: {self.crimes:,} generated OPUS crimes, whole story in {self.seconds:.0f} s",
            "",
            f"1. OPUS store:            {self.stores['legacy']}",
            f"2. migrated (this tool):  {self.stores['own']}  run {m.run_id} {m.state}; "
            f"crimes written {m.counts['crime'].written:,}, rejected {m.counts['crime'].rejected:,}, "
            f"excluded {m.counts['crime'].excluded:,}; invariant {'holds' if m.balanced else 'BROKEN'}",
            f"3. vendor (simulated):    {self.stores['vendor']}  truth: {self.stores['truth']}",
            "",
        ]
        for title, r in (("4a. reconcile own migration", self.own), ("4b. reconcile vendor migration", self.vendor)):
            verdict = "PASS" if not r.failed else "FAIL"
            counts = ", ".join(
                f"{cat} {sum(t.categories.get(cat, 0) for t in r.totals.values()):,}"
                for cat in ("MISSING", "ALTERED", "DUPLICATE", "UNEXPECTED", "PROBABLE_MATCH")
            )
            explained = sum(t.missing_explained for t in r.totals.values())
            lines.append(f"{title}: {verdict} - unexplained discrepancies {r.counted_failures:,} "
                         f"({counts}; MISSING explained by a reject reason {explained:,})")
            lines.append(f"    Excel report: {r.report_paths.get('workbook')}")
        if self.cutover is not None:
            lines += [""] + self.cutover.summary_lines()
        return lines


def demo(out_dir: Path, crimes: int = 20_000, seed: int = 2019) -> DemoResult:
    from synth.generate import generate

    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    try:
        if out_dir.exists():
            # Only ever clear a folder that a previous demo made.
            if any(out_dir.iterdir()) and not (out_dir / "opus.db").exists():
                raise OutputError(f"{out_dir} exists and is not a demo folder: choose another --out")
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot prepare demo folder {out_dir}: {exc.strerror}") from None

    stores = {
        "legacy": f"sqlite:///{out_dir / 'opus.db'}",
        "own": f"sqlite:///{out_dir / 'iops.db'}",
        "vendor": f"sqlite:///{out_dir / 'iops-vendor.db'}",
        "truth": str(out_dir / "vendor-truth.json"),
    }
    generate(stores["legacy"], crimes=crimes, seed=seed)
    # Two cores: the tool's migration and the vendor simulation are independent, and so are
    # the two reconciliations; each pair runs side by side in worker processes.
    with Pool(2, what="demo") as pool:
        own_run = pool.submit(_migrate, stores["legacy"], stores["own"])
        vendor_run = pool.submit(_simulate, stores["legacy"], stores["vendor"], seed, stores["truth"])
        migration, simulation = pool.result(own_run), pool.result(vendor_run)
        own_check = pool.submit(_reconcile, stores["legacy"], stores["own"], out_dir / "reconcile-own")
        vendor_check = pool.submit(_reconcile, stores["legacy"], stores["vendor"], out_dir / "reconcile-vendor")
        # The cutover works on copies of the stores of step 2 (made now, before anything
        # edits them), so the reconciled stores stay the ones the reports describe.
        copies = _copy_stores(out_dir, stores)
        cutover_run = pool.submit(_cutover, copies["legacy"], copies["target"], out_dir / "cutover-run")
        own, vendor = pool.result(own_check), pool.result(vendor_check)
        cutover = pool.result(cutover_run)
    cutover.stores = copies
    return DemoResult(out_dir, crimes, time.perf_counter() - started, migration, simulation, own, vendor, stores,
                      cutover)


def _quiet() -> None:
    from core.progress import set_quiet

    set_quiet(True)  # two bars from two processes would garble the terminal


def _migrate(legacy: str, target: str):
    from migrate.engine import migrate

    _quiet()
    return migrate(legacy, target, batch_size=5000)


def _simulate(legacy: str, target: str, seed: int, truth: str):
    from synth.simulate import simulate

    _quiet()
    return simulate(legacy, target, seed=seed, truth_path=Path(truth))


def _reconcile(legacy: str, target: str, out: Path):
    from reconcile.run import ReconcileOptions, reconcile
    from reports.reconciliation import write_reconciliation_reports

    _quiet()
    result = reconcile(legacy, target, ReconcileOptions())
    write_reconciliation_reports(result, out)
    # The discrepancy stream stays on disk (the reports hold it); only the totals travel back.
    return dataclasses.replace(result, discrepancies=[])


# ---- step 5: the cutover --------------------------------------------------------------------

#: How many crimes each actor touches: officers edit, OPUS corrects (some of the officers'
#: crimes among them), deletes and adds. Small: the story is in the counts, not the volume.
OFFICER_EDITS, BOTH_EDITED, OPUS_ONLY_CORRECTIONS, OPUS_DELETIONS, OPUS_NEW = 3, 2, 3, 1, 3
OFFICER_TEXT = "OFFICER ADDED: victim re-contacted, no further lines of enquiry; closed"


@dataclass
class CutoverStory:
    """What the cutover of step 5 did and found."""

    edited: list[str]  # legacy references of the crimes the officers edited in iOPS
    both: list[str]  # of them, those OPUS corrected too (conflicts)
    corrected: list[str]  # crimes only OPUS corrected
    deleted: list[str]
    added: list[str]
    delta: object  # migrate.engine.MigrationResult of the delta run
    kept: int  # officers' edits still in iOPS after the delta run
    files: dict[str, Path] = field(default_factory=dict)
    conflicts: list = field(default_factory=list)  # migrate.findings.Conflict of the delta run
    stores: dict[str, str] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        d = self.delta
        c = d.counts["crime"]
        kinds: dict[tuple[str, str], int] = {}
        for conflict in self.conflicts:
            kinds[(conflict.kind, conflict.resolution)] = kinds.get((conflict.kind, conflict.resolution), 0) + 1
        found = ", ".join(f"{kind} {resolution} {n}" for (kind, resolution), n in sorted(kinds.items())) or "none"
        return [
            f"5. cutover (copies: {Path(self.stores['legacy'][10:]).name}, {Path(self.stores['target'][10:]).name}): "
            "bulk load = step 2",
            f"   officers edit {len(self.edited)} crimes in iOPS (status FINALISED, mo_summary 'OFFICER ADDED: ...'); "
            f"OPUS corrects MO_TEXT on {len(self.both) + len(self.corrected)} ({len(self.both)} of the officers'), "
            f"flags {len(self.deleted)} deleted, records {len(self.added)} new",
            f"   delta run {d.run_id} ({(d.finished_at - d.started_at).total_seconds():.0f} s): crimes written {c.written:,}, updated {c.updated:,}, unchanged {c.unchanged:,}, "
            f"conflicted {c.conflicted:,}, deleted in OPUS {c.deleted_in_opus:,}; "
            f"invariant {'holds' if d.balanced else 'BROKEN'}; exit {d.exit_code}",
            f"   conflicts.csv: {found}",
            f"   officers' edits kept: {self.kept} of {len(self.edited)}",
            f"   files: {self.files['conflicts'].parent}  (rejects.csv, warnings.csv, conflicts.csv, run.json)",
        ]


def _copy_stores(out_dir: Path, stores: dict[str, str]) -> dict[str, str]:
    import sqlite3

    copies = {}
    for key, source, name in (("legacy", stores["legacy"], "cutover-opus.db"),
                              ("target", stores["own"], "cutover-iops.db")):
        src = sqlite3.connect(f"file:{source[len('sqlite:///'):]}?mode=ro", uri=True)
        dst = sqlite3.connect(out_dir / name)
        try:
            src.backup(dst)  # a consistent copy, WAL included
        finally:
            src.close()
            dst.close()
        copies[key] = f"sqlite:///{out_dir / name}"
    return copies


def _cutover(legacy: str, target: str, files_dir: Path) -> CutoverStory:
    import sqlalchemy as sa

    from core import schema
    from migrate.engine import migrate
    from migrate.findings import run_findings
    from reports.migration_files import write_migration_files

    _quiet()
    iops = sa.create_engine(target)
    opus = sa.create_engine(legacy)
    crime = schema.crime
    legacy_crime = schema.legacy_tables(opus)["crime"]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        # Officers at work in iOPS: they close open crimes and add to the summary.
        with iops.begin() as conn:
            edited = list(conn.execute(sa.select(crime.c.legacy_ref).where(crime.c.status == "OPEN")
                                       .order_by(crime.c.legacy_ref).limit(OFFICER_EDITS)).scalars())
            conn.execute(crime.update().where(crime.c.legacy_ref.in_(edited))
                         .values(status="FINALISED", mo_summary=OFFICER_TEXT, updated_at=now))
            others = list(conn.execute(sa.select(crime.c.legacy_ref).where(crime.c.legacy_ref.not_in(edited))
                                       .order_by(crime.c.legacy_ref.desc())
                                       .limit(OPUS_ONLY_CORRECTIONS + OPUS_DELETIONS + OPUS_NEW)).scalars())
        both = edited[:BOTH_EDITED]
        corrected = others[:OPUS_ONLY_CORRECTIONS]
        deleted = others[OPUS_ONLY_CORRECTIONS:OPUS_ONLY_CORRECTIONS + OPUS_DELETIONS]
        templates = others[OPUS_ONLY_CORRECTIONS + OPUS_DELETIONS:]
        # OPUS users at work in OPUS (the demo's own edits of its copy of the legacy store).
        stamp = now.strftime("%Y%m%d%H%M%S")
        added = []
        with opus.begin() as conn:
            trimmed = sa.func.trim(legacy_crime.c.crime_no)
            for ref in both + corrected:
                conn.execute(legacy_crime.update().where(trimmed == ref).values(
                    mo_text=legacy_crime.c.mo_text + " (CORRECTED: SEE STATEMENT OF 2ND WITNESS)", last_upd=stamp))
            conn.execute(legacy_crime.update().where(trimmed.in_(deleted)).values(del_flag="Y", last_upd=stamp))
            for n, ref in enumerate(templates, start=1):
                row = dict(conn.execute(sa.select(legacy_crime).where(trimmed == ref)).mappings().one())
                row["crime_no"] = f"CR/{900000 + n:06d}/{ref[-2:]}"
                row["last_upd"] = stamp
                conn.execute(legacy_crime.insert().values(**row))
                added.append(row["crime_no"])
        # The delta run, as `migrate --legacy ... --target ... --out DIR` runs it.
        delta = migrate(legacy, target, batch_size=5000, on_conflict="keep-iops")
        with run_findings(target, delta.run_id) as findings:
            files = write_migration_files(findings, files_dir)
            conflicts = list(findings.conflicts())  # a handful: the demo's own edits
        with iops.connect() as conn:
            kept = conn.execute(sa.select(sa.func.count()).select_from(crime).where(
                crime.c.legacy_ref.in_(edited), crime.c.status == "FINALISED",
                crime.c.mo_summary == OFFICER_TEXT)).scalar_one()
    finally:
        iops.dispose()
        opus.dispose()
    return CutoverStory(edited, both, corrected, deleted, added, delta, kept, files, conflicts)
