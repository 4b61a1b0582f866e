"""How well does the reconciler find what a faulty vendor migration did? Measured, not claimed.

    python bench/score_reconciliation.py [--crimes 100000] [--seed 7] [--out DIR] [--keep]
        [--legacy-backend sqlite|mysql|postgresql] [--target-backend sqlite|mysql|postgresql]
        [--persons-rate 0.05] [--no-person-targets]

1. generate an OPUS store (``synth.generate``), 2. simulate a faulty vendor migration into an
empty iOPS store with its ground truth (``synth.simulate``), 3. reconcile the two
(``reconcile.run``), 4. score ``discrepancies.csv`` and ``crime_stats.csv`` against the truth
(``synth.truth.score``) and print precision/recall per category, the statistics check and the
time of each step. Exit 0 when every target of issue 4 is met, 1 otherwise.

Targets: MISSING, ALTERED, DUPLICATE, UNEXPECTED precision and recall 1.000; PROBABLE_MATCH
AUTO precision >= 0.995 and AUTO+REVIEW recall >= 0.97; crime_stats.csv equal to the truth.
Persons (issue 20, unless ``--no-person-targets``): person PROBABLE_MATCH and PROBABLE_DUPLICATE
AUTO precision >= 0.995 and AUTO+REVIEW recall >= 0.99, printed per variation kind too.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import db  # noqa: E402
from core.progress import set_quiet  # noqa: E402
from synth.truth import PERSON_TARGETS, TARGETS, person_kind_table, score, score_table, shortfalls  # noqa: E402


def _store(backend: str, label: str, folder: Path, created: list) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / (label + '.db')}"
    name = f"o2i_bench_{label}_{uuid.uuid4().hex[:8]}"
    url = db.create_database(backend, name)
    created.append((backend, name))
    return url.render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crimes", type=int, default=100_000, help="OPUS crimes to generate (default 100,000)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--generate-seed", type=int, default=2019, help="generator seed (default 2019)")
    parser.add_argument("--out", type=Path, help="folder for the stores, truth and reports (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the folder and server databases afterwards")
    parser.add_argument("--legacy-backend", default="sqlite", choices=("sqlite", "mysql", "postgresql"))
    parser.add_argument("--target-backend", default="sqlite", choices=("sqlite", "mysql", "postgresql"))
    parser.add_argument("--json", type=Path, help="also write the full scores here as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--persons-rate", type=float, default=None,
                        help="fraction of persons re-keyed or re-entered, half each, with as many look-alikes as "
                             "either (default: the simulator's rates, 2.5%% + 2.5%% + 2.5%%)")
    parser.add_argument("--no-person-targets", action="store_true",
                        help="print the person scores but leave them out of the exit status")
    args = parser.parse_args(argv)
    set_quiet(args.quiet)

    from reconcile.run import ReconcileOptions, reconcile
    from reports.reconciliation import write_reconciliation_reports
    from synth.generate import generate
    from synth.simulate import DefectRates, simulate

    folder = args.out or Path(tempfile.mkdtemp(prefix="o2i-score-"))
    folder.mkdir(parents=True, exist_ok=True)
    created: list[tuple[str, str]] = []
    timings: dict[str, float] = {}
    peak_mb: dict[str, float] = {}

    def peak() -> float:  # peak resident memory of this process so far (Linux: KiB)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        legacy = _store(args.legacy_backend, "opus", folder, created)
        target = _store(args.target_backend, "vendor", folder, created)
        for path in (folder / "opus.db", folder / "vendor.db"):
            if path.exists():
                sys.exit(f"{path} exists: give an empty --out folder")
        truth_path = folder / "truth.json"
        out = folder / "reconciliation"

        t = time.perf_counter()
        generate(legacy, crimes=args.crimes, seed=args.generate_seed)
        timings["generate"] = time.perf_counter() - t
        peak_mb["generate"] = peak()

        t = time.perf_counter()
        rates = DefectRates() if args.persons_rate is None else DefectRates().with_persons(args.persons_rate)
        sim = simulate(legacy, target, seed=args.seed, truth_path=truth_path, rates=rates)
        timings["simulate"] = time.perf_counter() - t
        peak_mb["simulate"] = peak()

        t = time.perf_counter()
        recon = reconcile(legacy, target, ReconcileOptions())
        write_reconciliation_reports(recon, out)
        timings["reconcile"] = time.perf_counter() - t
        peak_mb["reconcile"] = peak()

        t = time.perf_counter()
        scores = score(truth_path, out / "discrepancies.csv", out / "crime_stats.csv")
        timings["score"] = time.perf_counter() - t

        print(f"score_reconciliation: {args.crimes:,} crimes, legacy {args.legacy_backend}, "
              f"target {args.target_backend}, simulation seed {args.seed}")
        print("\n".join(sim.summary_lines()))
        print()
        print("\n".join(score_table(scores)))
        print()
        print("\n".join(person_kind_table(scores)))
        print()
        print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
              + f"; reconciler thresholds {recon.thresholds}")
        print("peak resident memory after each step (cumulative): "
              + ", ".join(f"{k} {v:,.0f} MB" for k, v in peak_mb.items()))
        failures = shortfalls(scores, persons=not args.no_person_targets)
        targets = ", ".join(f"{c} {m} >= {v}" for (c, m), v in TARGETS.items() if c == "PROBABLE_MATCH")
        if not args.no_person_targets:
            targets += ", person " + ", ".join(f"{c} {m} >= {v}" for (c, m), v in PERSON_TARGETS.items())
        print(f"targets (keyed categories 1.000; {targets}; stats equal): "
              + ("ALL MET" if not failures else "MISSED:\n  " + "\n  ".join(failures)))
        if failures:
            for category, s in scores["categories"].items():
                if s["false_positives"] or s["false_negatives"]:
                    print(f"  {category} false positives e.g. {s['false_positives']}; "
                          f"false negatives e.g. {s['false_negatives']}")
            p = scores["probable_match"]
            print(f"  PROBABLE_MATCH wrong AUTO e.g. {p['wrong_auto_examples']}; unfound e.g. {p['unfound_examples']}")
            for category, p in scores["persons"].items():
                print(f"  person {category} wrong AUTO e.g. {p['wrong_auto_examples']}; "
                      f"unfound e.g. {p['unfound_examples']}")
            if scores["stats"]["examples"]:
                print(f"  crime_stats differences e.g. {scores['stats']['examples'][:3]}")
        if args.json:
            args.json.write_text(json.dumps({"crimes": args.crimes, "timings": timings, "scores": scores},
                                            indent=1, default=str), encoding="utf-8")
        if args.keep or args.out:
            print(f"files kept in {folder}")
        return 1 if failures else 0
    finally:
        if not args.keep:
            for backend, name in created:
                db.drop_database(backend, name)
            if args.out is None:
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
