"""The whole story on embedded SQLite, in one call (``make demo``).

1. generate a synthetic OPUS store with every quirk;
2. migrate it into a clean iOPS store with this tool;
3. simulate a faulty vendor migration of the same store beside it;
4. reconcile both against OPUS and write the auditors' reports.

The clean migration should reconcile with no unexplained discrepancy (its MISSING records
are the mapping's rejects, each with its reason); the vendor's should not.
"""

from __future__ import annotations

import dataclasses
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
        own, vendor = pool.result(own_check), pool.result(vendor_check)
    return DemoResult(out_dir, crimes, time.perf_counter() - started, migration, simulation, own, vendor, stores)


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
