"""Ground truth of a simulated vendor migration, and scoring a reconciliation against it.

The simulator (``synth/simulate.py``) injects defects into an iOPS store and writes, for each
one, the discrepancy row the reconciler *should* report (``reconciliation.md``): entity,
category, legacy_ref, new_ref, field, detail — plus ``cause``, the defect class that produced
it (not part of the reconciler's output; it says *why*, for auditors in training).

Truth file (JSON, UTF-8)::

    {"format": "opus2iops-truth/1", "seed": 7, "rates": {...}, "go_live": "...",
     "lost_days": ["2016-03-04", ...], "counts": {"crime": {"LOST_SCATTERED": 12, ...}, ...},
     "defects": [{"entity", "category", "legacy_ref", "new_ref", "field", "detail", "cause"}, ...],
     "expected_crime_stats": [{"month", "district_code", "offence_group", "legacy_count",
                               "new_count", "delta", "legacy_no_location", "new_no_location"}, ...]}

Categories are those of the reconciler plus ``NEW_IN_IOPS`` (unkeyed records entered in iOPS
after go-live: not a discrepancy; listed so a wrong similarity match with one can be scored).

Persons (entity ``person``; ``legacy_ref`` = NOM_ID, ``new_ref`` = the iOPS ``person_id``):

* ``PROBABLE_MATCH``, cause ``REKEYED:<kinds>`` — the nominal was not migrated keyed; this
  unkeyed person is it (kinds: ``key_dropped`` — written as it was, source_system OPUS — or
  the slips of ``synth/person_variants.py`` joined by ``+``, e.g. ``forename_variant+dob_typo``);
* ``PROBABLE_DUPLICATE``, cause ``RE_ENTERED:<kinds>`` — the nominal was migrated keyed, and
  this iOPS-entered person (source_system IOPS) is it again (``exact`` when typed the same);
* ``NEW_IN_IOPS``, cause ``LOOKALIKE:<kind>`` (``namesake``, ``twin``, ``parent_child``) — a
  genuinely new person who resembles the nominal in ``legacy_ref``: a pair of them is wrong.

Scoring rules (``score``):

* ``MISSING`` keyed by (entity, legacy_ref). A re-keyed legacy crime is *expected* MISSING
  exactly when the reconciler did not ``AUTO``-match it (reconciliation.md: a ``REVIEW`` pair
  leaves the legacy record missing).
* ``ALTERED`` keyed by (entity, legacy_ref, field); rows reported against an unkeyed new
  record (a re-keyed or new iOPS crime) are set aside and counted — the spec does not say
  whether fields of an AUTO pair are compared, and their typing errors are not injected
  defects. The ``detail`` (``TRUNCATED``, ``OFFSET_1H``) is checked separately.
* ``DUPLICATE`` keyed by (entity, new_ref); ``UNEXPECTED`` by (entity, legacy_ref, new_ref).
* ``PROBABLE_MATCH`` (crimes): AUTO-band precision over every AUTO pair reported, recall of the
  re-keyed records in AUTO and in AUTO + REVIEW.
* persons, ``PROBABLE_MATCH`` and ``PROBABLE_DUPLICATE`` apart, the same three figures, per
  variation kind too (a pair counts for every kind it carries), and what each wrong AUTO pair's
  new person really is (a look-alike, a re-keyed or re-entered person paired wrongly, ...). A
  re-keyed nominal is *expected* MISSING exactly when it is not AUTO-matched, as a crime is.
  ``ALTERED`` rows against an unkeyed person (re-keyed, re-entered, look-alike) are set aside.
* crime statistics: ``crime_stats.csv`` must equal ``expected_crime_stats`` row for row.

Nothing here ever reads or writes intelligence text: the truth holds references only.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from core.errors import UsageError
from core.publish import write_file_atomically

FORMAT = "opus2iops-truth/1"

#: Categories scored as sets of keys.
KEYED_CATEGORIES = ("MISSING", "ALTERED", "DUPLICATE", "UNEXPECTED")
NEW_IN_IOPS = "NEW_IN_IOPS"

#: Targets of issue 4 (bench/score_reconciliation.py and the scoring test).
TARGETS = {
    **{(c, m): 1.0 for c in KEYED_CATEGORIES for m in ("precision", "recall")},
    ("PROBABLE_MATCH", "auto_precision"): 0.995,
    ("PROBABLE_MATCH", "auto_review_recall"): 0.97,
}
#: Targets of issue 20 (person matching), per person category.
PERSON_CATEGORIES = ("PROBABLE_MATCH", "PROBABLE_DUPLICATE")
PERSON_TARGETS = {(c, m): v for c in PERSON_CATEGORIES
                  for m, v in (("auto_precision", 0.995), ("auto_review_recall", 0.99))}

STATS_FIELDS = ("month", "district_code", "offence_group", "legacy_count", "new_count", "delta",
                "legacy_no_location", "new_no_location")
_STAT_COUNTS = ("legacy_count", "new_count", "legacy_no_location", "new_no_location")


@dataclass(frozen=True)
class TruthDefect:
    entity: str
    category: str
    legacy_ref: str | None = None
    new_ref: str | None = None
    field: str | None = None
    detail: str | None = None
    cause: str | None = None

    def as_json(self) -> dict:
        return {"entity": self.entity, "category": self.category, "legacy_ref": self.legacy_ref,
                "new_ref": self.new_ref, "field": self.field, "detail": self.detail, "cause": self.cause}


@dataclass
class Truth:
    seed: int
    rates: dict
    defects: list[TruthDefect]
    expected_crime_stats: list[dict]
    lost_days: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    go_live: str | None = None

    def of(self, category: str, entity: str | None = None) -> list[TruthDefect]:
        return [d for d in self.defects if d.category == category and (entity is None or d.entity == entity)]


def load_truth(path: str | Path) -> Truth:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"truth file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"truth file {path} cannot be read: {exc}") from None
    if data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a simulation truth file (format {data.get('format')!r})")
    return Truth(
        seed=data["seed"],
        rates=data.get("rates", {}),
        defects=[TruthDefect(**{k: d.get(k) for k in TruthDefect.__dataclass_fields__}) for d in data["defects"]],
        expected_crime_stats=data["expected_crime_stats"],
        lost_days=data.get("lost_days", []),
        counts=data.get("counts", {}),
        go_live=data.get("go_live"),
    )


# ------------------------------------------------------------------------------ writing


class TruthWriter:
    """Collects truth rows while the simulator streams, without holding them in memory.

    Rows are spooled to a temporary file (JSON lines); a row equal to one already written
    (same entity, category, legacy_ref, new_ref and field — e.g. two legacy links that
    normalise to one) is kept once. ``write`` assembles the final JSON file atomically.
    """

    def __init__(self) -> None:
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._seen: set[int] = set()
        self.categories: Counter = Counter()

    def add(self, entity: str, category: str, legacy_ref: str | None = None, new_ref: str | None = None,
            field: str | None = None, detail: str | None = None, cause: str | None = None) -> bool:
        """Record one truth row; False if an identical row was already recorded."""
        key = hash((entity, category, legacy_ref, new_ref, field))
        if key in self._seen:
            return False
        self._seen.add(key)
        row = TruthDefect(entity, category, legacy_ref, new_ref, field, detail, cause)
        self._spool.write(json.dumps(row.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        self.categories[category] += 1
        return True

    def rows(self) -> Iterator[str]:
        """The spooled rows as JSON text, in the order recorded."""
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            yield line.rstrip("\n")
        self._spool.seek(0, os.SEEK_END)

    def write(self, path: Path, header: dict, expected_crime_stats: Iterable[dict]) -> None:
        """The truth file, published atomically and readable by its owner only (like every report)."""

        def write(out) -> None:
            out.write("{\n")
            out.write(f'  "format": {json.dumps(FORMAT)},\n')
            for key, value in header.items():
                out.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, sort_keys=True)},\n")
            out.write('  "defects": [')
            first = True
            for row in self.rows():
                out.write(("\n    " if first else ",\n    ") + row)
                first = False
            out.write("\n  ],\n" if not first else "],\n")
            out.write('  "expected_crime_stats": [')
            first = True
            for stat in expected_crime_stats:
                out.write(("\n    " if first else ",\n    ") + json.dumps(stat, ensure_ascii=False))
                first = False
            out.write("\n  ]\n}\n" if not first else "]\n}\n")

        write_file_atomically(Path(path), write, "the truth file")

    def close(self) -> None:
        self._spool.close()


# ------------------------------------------------------------------------------ scoring


@dataclass
class _Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": _ratio(self.tp, self.tp + self.fp), "recall": _ratio(self.tp, self.tp + self.fn)}


def _ratio(num: int, den: int) -> float:
    """A ratio with an empty denominator taken as perfect (nothing claimed, nothing to find)."""
    return 1.0 if den == 0 else num / den


def _cell(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _read_discrepancies(path: Path) -> Iterator[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield {k: _cell(v) for k, v in row.items()}
    except FileNotFoundError:
        raise UsageError(f"discrepancies file not found: {path}") from None


def _key(category: str, entity: str, legacy_ref, new_ref, field_name) -> tuple:
    if category == "MISSING":
        return entity, legacy_ref
    if category == "ALTERED":
        return entity, legacy_ref, field_name
    if category == "DUPLICATE":
        return entity, new_ref
    return entity, legacy_ref, new_ref  # UNEXPECTED


def score(truth: Truth | str | Path, discrepancies_csv: str | Path, crime_stats_csv: str | Path | None = None,
          examples: int = 5) -> dict:
    """Precision and recall per category of a reconciler's ``discrepancies.csv`` against the
    truth, and whether its ``crime_stats.csv`` (default: beside the discrepancies) equals the
    expected statistics. See the module docstring for the rules."""
    truth = truth if isinstance(truth, Truth) else load_truth(truth)
    discrepancies_csv = Path(discrepancies_csv)
    crime_stats_csv = Path(crime_stats_csv) if crime_stats_csv else discrepancies_csv.with_name("crime_stats.csv")

    expected: dict[str, set] = {c: set() for c in KEYED_CATEGORIES}
    expected_detail: dict[tuple, str | None] = {}
    rekeyed: set[tuple[str, str]] = set()
    unkeyed_new: set[tuple[str, str]] = set()  # (entity, new_ref) of re-keyed and new iOPS records
    person_pairs: dict[str, dict[tuple[str, str], list[str]]] = {c: {} for c in PERSON_CATEGORIES}
    person_new: dict[str, str] = {}  # person_id of an unkeyed iOPS person -> what it really is
    for d in truth.defects:
        if d.category in expected:
            key = _key(d.category, d.entity, d.legacy_ref, d.new_ref, d.field)
            expected[d.category].add(key)
            if d.category == "ALTERED":
                expected_detail[key] = d.detail
        elif d.entity == "person" and d.category in person_pairs:
            person_pairs[d.category][(d.legacy_ref, d.new_ref)] = _kinds(d.cause)
            person_new[d.new_ref] = "rekeyed" if d.category == "PROBABLE_MATCH" else "re-entered"
            unkeyed_new.add((d.entity, d.new_ref))
        elif d.category == "PROBABLE_MATCH":
            rekeyed.add((d.legacy_ref, d.new_ref))
            unkeyed_new.add((d.entity, d.new_ref))
        elif d.category == NEW_IN_IOPS:
            unkeyed_new.add((d.entity, d.new_ref))
            if d.entity == "person":
                person_new[d.new_ref] = "look-alike " + ":".join(_kinds(d.cause))

    reported: dict[str, set] = {c: set() for c in KEYED_CATEGORIES}
    reported_detail: dict[tuple, str | None] = {}
    auto: set[tuple[str, str]] = set()
    review: set[tuple[str, str]] = set()
    person_reported = {c: (set(), set()) for c in PERSON_CATEGORIES}  # (AUTO, REVIEW) pairs
    set_aside = Counter()
    for row in _read_discrepancies(discrepancies_csv):
        category, entity = row.get("category"), row.get("entity")
        if entity == "person" and category in person_reported:
            pair = (row.get("legacy_ref"), row.get("new_ref"))
            person_reported[category][0 if (row.get("detail") or "").upper() == "AUTO" else 1].add(pair)
            continue
        if category == "PROBABLE_MATCH":
            pair = (row.get("legacy_ref"), row.get("new_ref"))
            (auto if (row.get("detail") or "").upper() == "AUTO" else review).add(pair)
            continue
        if category not in reported:
            set_aside[f"unknown category {category}"] += 1
            continue
        if category == "ALTERED" and (entity, row.get("new_ref")) in unkeyed_new:
            set_aside["ALTERED on re-keyed/new iOPS records"] += 1
            continue
        key = _key(category, entity, row.get("legacy_ref"), row.get("new_ref"), row.get("field"))
        reported[category].add(key)
        if category == "ALTERED":
            reported_detail[key] = row.get("detail")

    # A re-keyed legacy crime is missing unless the reconciler AUTO-matched it (to anything).
    auto_legacy = {legacy for legacy, _ in auto}
    for legacy, _ in rekeyed:
        if legacy not in auto_legacy:
            expected["MISSING"].add(("crime", legacy))
    # So is a re-keyed nominal unless a person PROBABLE_MATCH is AUTO.
    auto_nominals = {legacy for legacy, _ in person_reported["PROBABLE_MATCH"][0]}
    for legacy, _ in person_pairs["PROBABLE_MATCH"]:
        if legacy not in auto_nominals:
            expected["MISSING"].add(("person", legacy))

    categories = {}
    for category in KEYED_CATEGORIES:
        exp, rep = expected[category], reported[category]
        total = _Tally(len(exp & rep), len(rep - exp), len(exp - rep))
        per_entity: dict[str, _Tally] = defaultdict(_Tally)
        for k in exp & rep:
            per_entity[k[0]].tp += 1
        for k in rep - exp:
            per_entity[k[0]].fp += 1
        for k in exp - rep:
            per_entity[k[0]].fn += 1
        categories[category] = {
            **total.as_dict(),
            "by_entity": {e: t.as_dict() for e, t in sorted(per_entity.items())},
            "false_positives": [list(k) for k in sorted(rep - exp, key=str)[:examples]],
            "false_negatives": [list(k) for k in sorted(exp - rep, key=str)[:examples]],
        }
    detail_wrong = sorted(
        (k for k in expected["ALTERED"] & reported["ALTERED"]
         if (expected_detail.get(k) or None) != (reported_detail.get(k) or None)), key=str)
    categories["ALTERED"]["detail_mismatches"] = len(detail_wrong)
    categories["ALTERED"]["detail_mismatch_examples"] = [
        [*k, expected_detail.get(k), reported_detail.get(k)] for k in detail_wrong[:examples]]

    probable = {
        "rekeyed": len(rekeyed),
        "auto_pairs": len(auto),
        "review_pairs": len(review),
        "auto_precision": _ratio(len(auto & rekeyed), len(auto)),
        "auto_recall": _ratio(len(auto & rekeyed), len(rekeyed)),
        "auto_review_recall": _ratio(len((auto | review) & rekeyed), len(rekeyed)),
        "wrong_auto_examples": [list(p) for p in sorted(auto - rekeyed, key=str)[:examples]],
        "unfound_examples": [list(p) for p in sorted(rekeyed - auto - review, key=str)[:examples]],
    }
    persons = {c: _person_scores(person_pairs[c], *person_reported[c], person_new, examples)
               for c in PERSON_CATEGORIES}
    return {
        "categories": categories,
        "probable_match": probable,
        "persons": persons,
        "stats": compare_stats(truth.expected_crime_stats, crime_stats_csv, examples),
        "set_aside": dict(set_aside),
    }


def _kinds(cause: str | None) -> list[str]:
    """'REKEYED:forename_variant+dob_typo' → ['forename_variant', 'dob_typo']."""
    _, _, kinds = (cause or "").partition(":")
    return [k for k in kinds.split("+") if k] or ["unspecified"]


def _person_scores(truth_pairs: dict[tuple[str, str], list[str]], auto: set, review: set,
                   person_new: dict[str, str], examples: int) -> dict:
    """One person category's AUTO precision and AUTO / AUTO + REVIEW recall, overall and per
    variation kind, and what the new person of each wrong AUTO pair really is."""
    expected = set(truth_pairs)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for pair, kinds in truth_pairs.items():
        for kind in kinds:
            c = by_kind[kind]
            c["expected"] += 1
            c["auto"] += pair in auto
            c["auto_review"] += pair in auto or pair in review
    wrong_auto = sorted(auto - expected, key=str)
    wrong_review = review - expected
    return {
        "expected": len(expected),
        "auto_pairs": len(auto),
        "review_pairs": len(review),
        "auto_precision": _ratio(len(auto & expected), len(auto)),
        "auto_recall": _ratio(len(auto & expected), len(expected)),
        "auto_review_recall": _ratio(len((auto | review) & expected), len(expected)),
        "review_precision": _ratio(len(review & expected), len(review)),
        "by_kind": {k: {**c, "auto_recall": _ratio(c["auto"], c["expected"]),
                        "auto_review_recall": _ratio(c["auto_review"], c["expected"])}
                    for k, c in sorted(by_kind.items())},
        "wrong_auto_by_what": dict(Counter(person_new.get(new, "other") for _, new in wrong_auto)),
        "wrong_review_by_what": dict(Counter(person_new.get(new, "other") for _, new in wrong_review)),
        "wrong_auto_examples": [list(p) for p in wrong_auto[:examples]],
        "unfound_examples": [[*p, "+".join(truth_pairs[p])] for p in sorted(expected - auto - review, key=str)[:examples]],
    }


def compare_stats(expected_rows: Iterable[dict], crime_stats_csv: Path, examples: int = 5) -> dict:
    """Row-by-row comparison of crime_stats.csv with the expected statistics."""
    expected = {(r["month"], r["district_code"], r["offence_group"]): tuple(int(r[c]) for c in _STAT_COUNTS)
                for r in expected_rows}
    actual: dict[tuple, tuple] = {}
    bad_delta = 0
    try:
        with Path(crime_stats_csv).open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (row["month"], row["district_code"], row["offence_group"])
                counts = tuple(int(row[c] or 0) for c in _STAT_COUNTS)
                actual[key] = tuple(a + b for a, b in zip(actual.get(key, (0, 0, 0, 0)), counts))
                if int(row["delta"] or 0) != counts[1] - counts[0]:
                    bad_delta += 1
    except FileNotFoundError:
        return {"equal": False, "error": f"not found: {crime_stats_csv}", "mismatches": None, "examples": []}
    zero = (0, 0, 0, 0)
    wrong = sorted(k for k in expected.keys() | actual.keys() if expected.get(k, zero) != actual.get(k, zero))
    return {
        "equal": not wrong and not bad_delta,
        "rows_expected": len(expected),
        "rows_reported": len(actual),
        "mismatches": len(wrong),
        "bad_delta_rows": bad_delta,
        "examples": [
            {"key": list(k), "expected": dict(zip(_STAT_COUNTS, expected.get(k, zero))),
             "reported": dict(zip(_STAT_COUNTS, actual.get(k, zero)))}
            for k in wrong[:examples]
        ],
    }


def shortfalls(scores: dict, persons: bool = False) -> list[str]:
    """Each target of issue 4 the scores miss (with ``persons``, issue 20's person targets
    too), as a readable line (empty when all are met)."""
    out = []
    if persons:
        for (category, metric), target in PERSON_TARGETS.items():
            value = scores["persons"][category][metric]
            if value < target:
                out.append(f"person {category} {metric} {value:.4f} < {target}")
    for (category, metric), target in TARGETS.items():
        value = scores["probable_match"][metric] if category == "PROBABLE_MATCH" else scores["categories"][category][metric]
        if value < target:
            out.append(f"{category} {metric} {value:.4f} < {target}")
    if not scores["stats"]["equal"]:
        out.append(f"crime_stats.csv differs from the expected statistics "
                   f"({scores['stats'].get('mismatches')} rows)")
    return out


def score_table(scores: dict) -> list[str]:
    """The scores as a fixed-width text table."""
    lines = [f"{'category':<16}{'expected':>9}{'reported':>9}{'tp':>8}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>9}"]
    for category in KEYED_CATEGORIES:
        s = scores["categories"][category]
        lines.append(f"{category:<16}{s['tp'] + s['fn']:>9}{s['tp'] + s['fp']:>9}{s['tp']:>8}{s['fp']:>6}{s['fn']:>6}"
                     f"{s['precision']:>11.4f}{s['recall']:>9.4f}")
    p = scores["probable_match"]
    lines.append(f"{'PROBABLE_MATCH':<16}{p['rekeyed']:>9}{p['auto_pairs'] + p['review_pairs']:>9}"
                 f"   AUTO precision {p['auto_precision']:.4f}, AUTO recall {p['auto_recall']:.4f}, "
                 f"AUTO+REVIEW recall {p['auto_review_recall']:.4f} ({p['auto_pairs']} AUTO, {p['review_pairs']} REVIEW)")
    for category in PERSON_CATEGORIES:
        p = scores["persons"][category]
        lines.append(f"{'person ' + category[9:]:<16}{p['expected']:>9}{p['auto_pairs'] + p['review_pairs']:>9}"
                     f"   AUTO precision {p['auto_precision']:.4f}, AUTO recall {p['auto_recall']:.4f}, "
                     f"AUTO+REVIEW recall {p['auto_review_recall']:.4f} ({p['auto_pairs']} AUTO, {p['review_pairs']} REVIEW)")
    a = scores["categories"]["ALTERED"]
    lines.append(f"ALTERED detail (TRUNCATED / OFFSET_nH) mismatches: {a['detail_mismatches']}")
    st = scores["stats"]
    verdict = "EQUAL" if st["equal"] else f"DIFFERENT ({st.get('mismatches')} rows, {st.get('bad_delta_rows', 0)} bad delta)"
    lines.append(f"crime_stats.csv vs expected: {verdict}")
    for what, n in sorted(scores.get("set_aside", {}).items()):
        lines.append(f"set aside: {n} {what}")
    return lines


def person_kind_table(scores: dict) -> list[str]:
    """Person pairs per variation kind: how many the truth has, AUTO and AUTO + REVIEW recall;
    then what the new persons of wrong pairs really are."""
    lines = [f"{'person pairs by kind':<22}" + "".join(f"{c[9:] + ': n':>14}{'AUTO':>8}{'+REVIEW':>9}"
                                                    for c in PERSON_CATEGORIES)]
    kinds = sorted({k for c in PERSON_CATEGORIES for k in scores["persons"][c]["by_kind"]})
    for kind in kinds:
        line = f"{kind:<22}"
        for c in PERSON_CATEGORIES:
            s = scores["persons"][c]["by_kind"].get(kind)
            line += (f"{s['expected']:>14}{s['auto_recall']:>8.3f}{s['auto_review_recall']:>9.3f}" if s
                     else f"{'-':>14}{'':>8}{'':>9}")
        lines.append(line)
    for c in PERSON_CATEGORIES:
        p = scores["persons"][c]
        for band in ("auto", "review"):
            wrong = p[f"wrong_{band}_by_what"]
            if wrong:
                lines.append(f"person {c} wrong {band.upper()} pairs, the new person really is: "
                             + ", ".join(f"{what} {n}" for what, n in sorted(wrong.items())))
    return lines
