"""Splink (DuckDB backend) on the simulator's person re-keys and duplicates: quality against the
truth, wall time, peak RSS, installed size — the yardstick for the reconciler's own person
matching (issue 20).

    .venv/bin/python bench/bench_splink_persons.py [--crimes 100000] [--work DIR]
        [--auto 0.999] [--review 0.05] [--threads N]

Needs ``pip install splink`` (5.x: splink, duckdb, pyarrow, sqlglot) — for measuring only, not
a dependency of the project. The stores are generated (``synth.generate``, seed 2019) and
simulated (``synth.simulate``, seed 7, default rates) into ``--work`` unless already there
(``bench/score_reconciliation.py --out DIR`` leaves the same three files: opus.db, vendor.db,
truth.json).

The linkage, as Splink's documentation builds one (Fellegi–Sunter, link_only):

* left: the live legacy nominals left without a keyed iOPS counterpart (their particulars
  as the mapping reads them: mapping.md's person ← NOMINAL), and the migrated (keyed) iOPS
  persons; right: the unkeyed iOPS persons. A pair with a nominal is a ``PROBABLE_MATCH``;
  with a migrated person, and the right entered in iOPS (source_system IOPS), a
  ``PROBABLE_DUPLICATE``.
* comparisons: surname (exact with term-frequency adjustment, equal once Mc/Mac, apostrophes,
  hyphens and spaces are normalised, Damerau-Levenshtein 1, Jaro-Winkler 0.92, one part of a
  double-barrelled name, swapped with the forename, Jaro-Winkler 0.8); forename (exact with
  term frequencies, the same forename per ``mappings/forename_variants.csv`` — WM, BILL →
  WILLIAM —, Damerau-Levenshtein 1, Jaro-Winkler 0.9, swapped with the surname); date of birth
  (exact, day and month swapped, one character, same year); sex; PNC id (exact,
  Damerau-Levenshtein 1).
* blocking (OR): same date of birth; same normalised surname and forename; same PNC id;
  surname (Soundex or normalised) and year of birth; forename and year of birth; surname and
  forename Soundex; initials and year of birth; initials and day and month of birth; surname
  and forename swapped, or one of them swapped and the year of birth.
* training: u by random sampling (2M pairs, seed 1), λ from a deterministic rule (recall 0.6),
  m by expectation-maximisation in two sessions — blocked on the PNC id (names, date of birth,
  sex), then on names and date of birth (PNC id) —, every record
  (``record_sample_proportion=1``). Blocked on the names alone or the date of birth alone (as
  Splink's tutorials do), EM learnt "same name" or "same family and birthday" as the match
  class: namesakes and twins dominate those pairs.
* decision: per unkeyed iOPS person its best candidate; one-to-one, greedy by match weight;
  ``AUTO`` at match probability >= ``--auto`` and at least 3 (log2) ahead of the runner-up,
  ``REVIEW`` at >= ``--review``. Also printed: the AUTO threshold the truth would choose for
  precision >= 0.995 (an upper bound, tuned on the answers).

Scored with ``synth.truth.score`` (the same scoring as the reconciler's output).
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata as md
import os
import re
import resource
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from core import schema  # noqa: E402
from core.progress import set_quiet  # noqa: E402
from mappings.parse import INVALID, UNKNOWN, code, is_deleted, normalise_pnc, parse_date, parse_nom_id  # noqa: E402
from mappings.person import SEXES, split_name  # noqa: E402
from synth.truth import load_truth, person_kind_table, score  # noqa: E402

DISTRIBUTIONS = ("splink", "duckdb", "pyarrow", "sqlglot")
#: unique_id of the right-hand records start here (Splink may put either table on its left).
RIGHT_IDS = 100_000_000

def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------ features


def _fold(s: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", s.upper()) if not unicodedata.combining(ch))


def _norm_surname(s: str) -> str:
    letters = re.sub(r"[^A-Z]", "", _fold(s))
    return "MC" + letters[3:] if letters.startswith("MAC") and len(letters) > 4 else letters


def soundex(s: str) -> str:
    s = re.sub(r"[^A-Z]", "", _fold(s))
    if not s:
        return ""
    codes = {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
             "L": "4", **dict.fromkeys("MN", "5"), "R": "6"}
    out, last = s[0], codes.get(s[0], "")
    for ch in s[1:]:
        c = codes.get(ch, "")
        if c and c != last:
            out += c
        if ch not in "HW":
            last = c
    return (out + "000")[:4]


def _canonical_forenames() -> dict[str, str]:
    """Each name of forename_variants.csv → one canonical forename (a forename is its own)."""
    import csv as _csv

    from synth.person_variants import VARIANTS_CSV

    forenames, variant_of = set(), defaultdict(set)
    with VARIANTS_CSV.open(newline="", encoding="utf-8") as fh:
        for row in _csv.DictReader(fh):
            forenames.add(row["forename"].strip().upper())
            variant_of[row["variant"].strip().upper()].add(row["forename"].strip().upper())
    out = {name: name for name in forenames}
    for variant, names in variant_of.items():
        out.setdefault(variant, min(names))
    return out


def features(uid: int, side: str, ref: str, source: str | None, family, given, dob, sex, pnc, canon) -> dict:
    family = family or None
    tokens = (given or "").split()
    forename = _fold(tokens[0]) if tokens else None
    parts = re.split(r"[\s\-]+", _fold(family)) if family else []
    swapped = None
    if dob is not None and dob.day <= 12 and dob.day != dob.month:
        swapped = f"{dob.year:04d}-{dob.day:02d}-{dob.month:02d}"
    return {
        "unique_id": uid, "side": side, "ref": ref, "source_system": source,
        "surname": _fold(family) if family else None,
        "surname_norm": _norm_surname(family) if family else None,
        "surname_first": parts[0] if parts else None, "surname_last": parts[-1] if parts else None,
        "surname_soundex": soundex(family) if family else None,
        "surname_initial": _norm_surname(family)[:1] or None if family else None,
        "forename": forename, "forename_canon": canon.get(forename, forename) if forename else None,
        "forename_norm": re.sub(r"[^A-Z]", "", _fold(given)) if given else None,
        "forename_soundex": soundex(forename) if forename else None,
        "forename_initial": forename[:1] if forename else None,
        "dob": dob.isoformat() if dob else None, "dob_swapped": swapped, "dob_year": dob.year if dob else None,
        "dob_md": dob.strftime("%m-%d") if dob else None,
        "sex": sex if sex in ("MALE", "FEMALE") else None, "pnc": pnc,
    }


def load_records(legacy_url: str, target_url: str) -> tuple[list[dict], list[dict], dict]:
    """(left records, right records, counts) as module docstring says."""
    canon = _canonical_forenames()
    legacy, target = sa.create_engine(legacy_url), sa.create_engine(target_url)
    left, right = [], []
    keyed: set[int] = set()
    counts = defaultdict(int)
    person = schema.person
    with target.connect() as conn:
        for r in conn.execute(sa.select(person.c.person_id, person.c.legacy_nominal_id, person.c.family_name,
                                        person.c.given_names, person.c.date_of_birth, person.c.sex, person.c.pnc_id,
                                        person.c.source_system)):
            if r.legacy_nominal_id is not None:
                keyed.add(r.legacy_nominal_id)
                left.append(features(len(left), "migrated", str(r.legacy_nominal_id), r.source_system, r.family_name,
                                     r.given_names, r.date_of_birth, r.sex, r.pnc_id, canon))
                counts["left migrated persons"] += 1
            else:
                right.append(features(RIGHT_IDS + len(right), "unkeyed", str(r.person_id), r.source_system, r.family_name,
                                      r.given_names, r.date_of_birth, r.sex, r.pnc_id, canon))
                counts["right unkeyed iOPS persons"] += 1
    nominal = schema.legacy_tables(legacy)["nominal"]
    with legacy.connect() as conn:
        for r in conn.execute(sa.select(nominal)).mappings():
            nom_id = parse_nom_id(r["nom_id"])
            if is_deleted(r["del_flag"]) or nom_id is None or nom_id in keyed:
                continue
            family, given = split_name(r["surname"], r["forenames"])
            dob = parse_date(r["dob"])
            dob = None if dob is UNKNOWN or dob is INVALID else dob
            pnc = normalise_pnc(r["pnc_id"])
            pnc = None if pnc is UNKNOWN or pnc is INVALID else pnc
            left.append(features(len(left), "nominal", str(nom_id), "OPUS", family, given, dob,
                                 SEXES.get(code(r["sex"]), "UNKNOWN"), pnc, canon))
            counts["left unmatched live nominals"] += 1
    legacy.dispose()
    target.dispose()
    return left, right, dict(counts)


# ------------------------------------------------------------------------------ the model


def settings():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def level(sql: str, label: str):
        return cll.CustomLevel(sql, label)

    surname = cl.CustomComparison(output_column_name="surname", comparison_levels=[
        cll.NullLevel("surname"),
        cll.ExactMatchLevel("surname", term_frequency_adjustments=True),
        level('"surname_norm_l" = "surname_norm_r"', "equal normalised (Mc/Mac, ', -)"),
        level('damerau_levenshtein("surname_norm_l", "surname_norm_r") <= 1', "one edit"),
        level('jaro_winkler_similarity("surname_norm_l", "surname_norm_r") >= 0.92', "Jaro-Winkler >= 0.92"),
        level('"surname_first_l" = "surname_first_r" OR "surname_last_l" = "surname_last_r" '
              'OR "surname_first_l" = "surname_last_r" OR "surname_last_l" = "surname_first_r"',
              "one part of a double-barrelled name"),
        level('"surname_first_l" = "forename_r" OR "surname_norm_l" = "forename_norm_r"', "swapped with forename"),
        level('jaro_winkler_similarity("surname_norm_l", "surname_norm_r") >= 0.8', "Jaro-Winkler >= 0.8"),
        cll.ElseLevel(),
    ])
    forename = cl.CustomComparison(output_column_name="forename", comparison_levels=[
        cll.NullLevel("forename"),
        cll.ExactMatchLevel("forename", term_frequency_adjustments=True),
        level('"forename_canon_l" = "forename_canon_r"', "same forename (variant, nickname)"),
        level('damerau_levenshtein("forename_l", "forename_r") <= 1', "one edit"),
        level('jaro_winkler_similarity("forename_l", "forename_r") >= 0.9', "Jaro-Winkler >= 0.9"),
        level('"forename_l" = "surname_first_r"', "swapped with surname"),
        cll.ElseLevel(),
    ])
    dob = cl.CustomComparison(output_column_name="dob", comparison_levels=[
        cll.NullLevel("dob"),
        cll.ExactMatchLevel("dob"),
        level('"dob_l" = "dob_swapped_r"', "day and month swapped"),
        level('damerau_levenshtein("dob_l", "dob_r") <= 1', "one character"),
        level('"dob_year_l" = "dob_year_r"', "same year"),
        cll.ElseLevel(),
    ])
    sex = cl.ExactMatch("sex")
    pnc = cl.CustomComparison(output_column_name="pnc", comparison_levels=[
        cll.NullLevel("pnc"),
        cll.ExactMatchLevel("pnc"),
        level('damerau_levenshtein("pnc_l", "pnc_r") <= 1', "one character"),
        cll.ElseLevel(),
    ])
    return SettingsCreator(
        link_type="link_only",
        comparisons=[surname, forename, dob, sex, pnc],
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            block_on("surname_norm", "forename_canon"),
            block_on("pnc"),
            block_on("surname_soundex", "dob_year"),
            block_on("surname_norm", "dob_year"),
            block_on("forename_canon", "dob_year"),
            block_on("surname_soundex", "forename_soundex"),
            block_on("surname_initial", "forename_initial", "dob_year"),
            block_on("surname_initial", "forename_initial", "dob_md"),
            "l.surname_first = r.forename and l.forename = r.surname_first",
            "l.surname_first = r.forename and l.dob_year = r.dob_year",
            "l.forename = r.surname_first and l.dob_year = r.dob_year",
        ],
        additional_columns_to_retain=["side", "ref", "source_system"],
        retain_intermediate_calculation_columns=False,
    )


def run_splink(left: list[dict], right: list[dict], threads: int | None) -> tuple[list[dict], dict]:
    import duckdb
    import pyarrow as pa
    from splink import DuckDBAPI, Linker, block_on

    timings = {}
    t = time.perf_counter()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    db_api = DuckDBAPI(connection=con)
    tables = [db_api.register(pa.Table.from_pylist(rows), table_name=name)
              for rows, name in ((left, "legacy_side"), (right, "iops_unkeyed"))]
    linker = Linker(tables, settings(), log_level=None)
    timings["register"] = time.perf_counter() - t

    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("surname_norm", "forename_canon", "dob")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    # m of names, date of birth and sex from pairs with the same PNC id, then of the PNC id from
    # pairs with the same names and date of birth: pairs blocked on the names alone are mostly
    # namesakes here, and those blocked on the date of birth alone hold the twins — EM on them
    # learns "same name" or "same family and birthday" as the match class.
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("pnc"), record_sample_proportion=1.0)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("surname_norm", "forename_canon", "dob"), record_sample_proportion=1.0)
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    rows = predictions.as_pyarrow_table().select(
        ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]).to_pylist()
    timings["predict"] = time.perf_counter() - t
    timings["pairs"] = len(rows)
    return rows, timings


def decide(pairs: list[dict], left: list[dict], right: list[dict], auto_p: float, review_p: float,
           margin: float = 3.0) -> list[dict]:
    """Per unkeyed iOPS person its best candidate, one-to-one (greedy by weight), banded."""
    by_right: dict[int, list[dict]] = defaultdict(list)
    for p in pairs:
        a, b = p["unique_id_l"], p["unique_id_r"]
        l_id, r_id = (a, b) if b >= RIGHT_IDS else (b, a)
        p = dict(p, unique_id_l=l_id, unique_id_r=r_id - RIGHT_IDS)
        l, r = left[l_id], right[r_id - RIGHT_IDS]
        if l["side"] == "migrated" and r["source_system"] != "IOPS":
            continue  # only persons entered in iOPS are duplicates of a migrated one
        by_right[p["unique_id_r"]].append(p)
    ranked = []
    for r_id, candidates in by_right.items():
        candidates.sort(key=lambda p: -p["match_weight"])
        best = candidates[0]
        runner = candidates[1]["match_weight"] if len(candidates) > 1 else float("-inf")
        ranked.append((best, best["match_weight"] - runner))
    ranked.sort(key=lambda x: -x[0]["match_weight"])
    used_left: set[int] = set()
    out = []
    for best, lead in ranked:
        if best["unique_id_l"] in used_left or best["match_probability"] < review_p:
            continue
        used_left.add(best["unique_id_l"])
        l, r = left[best["unique_id_l"]], right[best["unique_id_r"]]
        band = "AUTO" if best["match_probability"] >= auto_p and lead >= margin else "REVIEW"
        out.append({"entity": "person", "category": "PROBABLE_MATCH" if l["side"] == "nominal" else "PROBABLE_DUPLICATE",
                    "legacy_ref": l["ref"], "new_ref": r["ref"], "score": f"{best['match_weight']:.2f}",
                    "detail": band, "probability": best["match_probability"], "lead": lead})
    return out


def write_csv(path: Path, decisions: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["entity", "category", "legacy_ref", "new_ref", "field", "score", "detail"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(decisions)


def installed_mb() -> dict[str, float]:
    out = {}
    for name in DISTRIBUTIONS:
        d = md.distribution(name)
        files = [d.locate_file(f) for f in d.files or ()]
        out[f"{name} {d.version}"] = sum(os.path.getsize(f) for f in files if os.path.exists(f)) / 1e6
    return out


def tuned_threshold(decisions: list[dict], truth, category: str, target: float = 0.995) -> tuple[float, float, float]:
    """(lowest probability threshold with AUTO precision >= target, its precision, its AUTO
    recall) — using the truth: an upper bound on what thresholds could give."""
    expected = {(d.legacy_ref, d.new_ref) for d in truth.defects if d.entity == "person" and d.category == category}
    rows = sorted((d for d in decisions if d["category"] == category), key=lambda d: -d["probability"])
    best = (1.0, 1.0, 0.0)
    tp = 0
    for i, d in enumerate(rows, 1):
        tp += (d["legacy_ref"], d["new_ref"]) in expected
        if tp / i >= target and (i == len(rows) or rows[i]["probability"] < d["probability"]):
            best = (d["probability"], tp / i, tp / max(1, len(expected)))
    return best


def frontier(decisions: list[dict], truth, category: str, thresholds=(0.5, 0.9, 0.99, 0.999, 0.9999)) -> list[str]:
    """AUTO precision and recall if AUTO were every pair at match probability >= t (no lead)."""
    expected = {(d.legacy_ref, d.new_ref) for d in truth.defects if d.entity == "person" and d.category == category}
    out = []
    for t in thresholds:
        auto = {(d["legacy_ref"], d["new_ref"]) for d in decisions if d["category"] == category and d["probability"] >= t}
        hit = len(auto & expected)
        out.append(f"p >= {t}: precision {hit / max(1, len(auto)):.4f}, recall {hit / max(1, len(expected)):.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crimes", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=None, help="folder with opus.db, vendor.db, truth.json (made if absent)")
    ap.add_argument("--auto", type=float, default=0.999, help="AUTO at match probability >= this (default 0.999)")
    ap.add_argument("--review", type=float, default=0.05, help="REVIEW at match probability >= this (default 0.05)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's, one per core)")
    args = ap.parse_args(argv)
    set_quiet(True)
    work = args.work or Path(f"/tmp/o2i-splink-{args.crimes}")
    work.mkdir(parents=True, exist_ok=True)
    legacy, target, truth_path = f"sqlite:///{work / 'opus.db'}", f"sqlite:///{work / 'vendor.db'}", work / "truth.json"
    if not (truth_path.exists() and (work / "vendor.db").exists()):
        from synth.generate import generate
        from synth.simulate import simulate

        for name in ("opus.db", "vendor.db"):
            (work / name).unlink(missing_ok=True)
        print(f"generating {args.crimes:,} crimes and simulating the vendor's store in {work} ...", flush=True)
        generate(legacy, crimes=args.crimes, seed=2019)
        simulate(legacy, target, seed=7, truth_path=truth_path)
    base_rss = peak_mb()
    wall = time.perf_counter()
    t = time.perf_counter()
    left, right, counts = load_records(legacy, target)
    read = time.perf_counter() - t
    rss_read = peak_mb()
    pairs, timings = run_splink(left, right, args.threads)
    t = time.perf_counter()
    decisions = decide(pairs, left, right, args.auto, args.review)
    timings["decide"] = time.perf_counter() - t
    total = time.perf_counter() - wall
    out = work / "splink_discrepancies.csv"
    write_csv(out, decisions)
    truth = load_truth(truth_path)
    scores = score(truth, out)
    import splink

    print(f"Splink {splink.__version__} (DuckDB backend) on {args.crimes:,} crimes' store: "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"  read the stores {read:.1f} s; Splink: register {timings['register']:.1f} s, train (λ, u, 2×EM) "
          f"{timings['train']:.1f} s, predict {timings['predict']:.1f} s ({timings['pairs']:,} pairs >= 0.01); "
          f"decide {timings['decide']:.1f} s; whole {total:.1f} s")
    print(f"  peak RSS {peak_mb():,.0f} MB (after reading the stores {rss_read:,.0f} MB; before {base_rss:,.0f} MB)")
    sizes = installed_mb()
    print(f"  installed: {sum(sizes.values()):,.0f} MB (" + ", ".join(f"{k} {v:.1f} MB" for k, v in sizes.items()) + ")")
    print(f"  bands: AUTO at p >= {args.auto} and 3 ahead of the runner-up, REVIEW at p >= {args.review}")
    for category, p in scores["persons"].items():
        prob, prec, rec = tuned_threshold(decisions, truth, category)
        print(f"  person {category}: {p['expected']:,} in the truth; AUTO precision {p['auto_precision']:.4f}, "
              f"AUTO recall {p['auto_recall']:.4f}, AUTO+REVIEW recall {p['auto_review_recall']:.4f} "
              f"({p['auto_pairs']:,} AUTO, {p['review_pairs']:,} REVIEW); tuned on the truth: AUTO at p >= {prob:.6f} "
              f"gives precision {prec:.4f}, AUTO recall {rec:.4f}")
        print("    AUTO at " + "; ".join(frontier(decisions, truth, category)))
    print("\n".join("  " + line for line in person_kind_table(scores)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
