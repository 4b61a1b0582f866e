"""The simulator's person re-keys, re-entered (duplicate) persons and look-alikes.

Checked in the stores, not in the simulator's bookkeeping: every person pair of the truth is
compared with a faithful migration of the same OPUS store by the project's own engine — the
re-keyed nominal is absent keyed, the typed-again person carries exactly the slips its cause
names (and nothing else changed), the re-entered person sits beside the faithful keyed one,
each look-alike is the kind of different person it says — on SQLite and on server targets.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from core import schema
from synth import person_variants
from synth.simulate import GO_LIVE, DefectRates, simulate
from synth.truth import load_truth, person_kind_table, score, shortfalls

CRIMES = 3_000
#: High enough that every kind appears in a small store.
RATES = DefectRates(person_rekeyed=0.12, person_reentered=0.12, person_lookalike=0.12)


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def opus(tmp_path_factory):
    """A small OPUS store and the faithful migration of it (the oracle)."""
    from migrate.engine import migrate
    from synth.generate import generate

    d = tmp_path_factory.mktemp("persons")
    legacy = _sqlite(d / "opus.db")
    generate(legacy, crimes=CRIMES, seed=41)
    own = _sqlite(d / "own.db")
    migrate(legacy, own)
    return SimpleNamespace(dir=d, legacy=legacy, own=own, persons=_persons(own))


def _persons(url: str) -> dict[str, dict]:
    """person_id → row (dates as dates, whichever engine)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(r["person_id"]): dict(r) for r in conn.execute(sa.select(schema.person)).mappings()}
    finally:
        engine.dispose()


def _links(url: str) -> list[tuple[str, str | None, str, str]]:
    """(person_id, crime legacy_ref, crime_ref, role) of every link."""
    engine = sa.create_engine(url)
    cp, c = schema.crime_person, schema.crime
    try:
        with engine.connect() as conn:
            return [(str(p), ref, cref, role) for p, ref, cref, role in conn.execute(
                sa.select(cp.c.person_id, c.c.legacy_ref, c.c.crime_ref, cp.c.role)
                .select_from(cp.join(c, cp.c.crime_id == c.c.crime_id)))]
    finally:
        engine.dispose()


def _subjects(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(sa.select(schema.intelligence_report.c.subject_person_id))
                    if r[0] is not None}
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ what a slip looks like


def _osa(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (one slip = 1)."""
    from rapidfuzz.distance import OSA

    return OSA.distance(a, b)


def _digits_apart(a: dt.date, b: dt.date) -> int:
    return sum(x != y for x, y in zip(a.strftime("%Y%m%d"), b.strftime("%Y%m%d")))


def check_slips(original: dict, typed: dict, kinds: list[str]) -> None:
    """The typed-again person differs from the original by exactly these kinds of slip."""
    family, given = typed["family_name"], typed["given_names"]
    if "names_swapped" in kinds:
        family, given = given, family
    o_family, o_given = original["family_name"], original["given_names"] or ""
    o_tokens, tokens = o_given.split(), (given or "").split()

    given_kinds = {"forename_variant", "given_typo", "middle_dropped", "middle_added"} & set(kinds)
    assert len(given_kinds) <= 1, kinds
    if not given_kinds:
        assert given == original["given_names"], (original, typed, kinds)
    elif "forename_variant" in kinds:
        assert tokens[1:] == o_tokens[1:] and tokens[0] != o_tokens[0]
        assert tokens[0] in person_variants.related_forenames(o_tokens[0])
    elif "given_typo" in kinds:
        assert len(tokens) == len(o_tokens)
        assert sum(_osa(a, b) for a, b in zip(tokens, o_tokens)) == 1, (o_given, given)
    elif "middle_dropped" in kinds:
        assert len(o_tokens) >= 2 and tokens == o_tokens[:1]
    else:
        assert tokens[:-1] == o_tokens and len(tokens) == len(o_tokens) + 1

    family_kinds = {"family_typo", "mc_mac", "apostrophe", "hyphen"} & set(kinds)
    assert len(family_kinds) <= 1, kinds
    if not family_kinds:
        assert family == o_family
    elif "family_typo" in kinds:
        assert _osa(family, o_family) == 1
    elif "mc_mac" in kinds:
        assert {o_family[:3] == "MAC", family[:3] == "MAC"} == {True, False}
        assert family.replace(" ", "").removeprefix("MAC").removeprefix("MC") == \
            o_family.replace(" ", "").removeprefix("MAC").removeprefix("MC")
    elif "apostrophe" in kinds:
        assert "'" in o_family and "'" not in family
        assert family.replace(" ", "") == o_family.replace("'", "")
    else:  # hyphen: one of two parts dropped or joined, or a second family name added
        parts, o_parts = set(family.replace("-", " ").split()), set(o_family.replace("-", " ").split())
        assert ("-" in o_family) != ("-" in family) or family != o_family
        assert parts <= o_parts or o_parts <= parts or family.replace(" ", "") == o_family.replace("-", "")

    dob, o_dob = typed["date_of_birth"], original["date_of_birth"]
    if "dob_typo" in kinds:
        assert _digits_apart(dob, o_dob) == 1
    elif "dob_day_month" in kinds:
        assert dob == dt.date(o_dob.year, o_dob.day, o_dob.month) != o_dob
    else:
        assert dob == o_dob

    pnc, o_pnc = typed["pnc_id"], original["pnc_id"]
    if "pnc_typo" in kinds:
        assert pnc != o_pnc and len(pnc) == len(o_pnc) and sum(a != b for a, b in zip(pnc, o_pnc)) == 1
    elif "pnc_dropped" in kinds:
        assert o_pnc is not None and pnc is None
    else:
        assert pnc == o_pnc
    assert typed["sex"] == original["sex"]


def check_store(own_url: str, vendor_url: str, truth) -> Counter:
    """Every person pair and look-alike of the truth is in the vendor's store as described;
    returns the kinds seen, per category."""
    own = _persons(own_url)
    own_by_nom = {str(p["legacy_nominal_id"]): p for p in own.values()}
    vendor = _persons(vendor_url)
    vendor_keyed = {str(p["legacy_nominal_id"]): p for p in vendor.values() if p["legacy_nominal_id"] is not None}
    unkeyed = {pid: p for pid, p in vendor.items() if p["legacy_nominal_id"] is None}
    listed = set()
    seen: Counter = Counter()
    for d in truth.defects:
        if d.entity != "person" or d.category not in ("PROBABLE_MATCH", "PROBABLE_DUPLICATE", "NEW_IN_IOPS"):
            continue
        listed.add(d.new_ref)
        original, typed = own_by_nom[d.legacy_ref], unkeyed[d.new_ref]
        kind_text = d.cause.partition(":")[2]
        kinds = kind_text.split("+")
        seen.update(f"{d.category}:{k}" for k in kinds)
        if d.category == "NEW_IN_IOPS":
            _check_lookalike(original, typed, kind_text)
            assert d.cause.startswith("LOOKALIKE:")
            continue
        if d.category == "PROBABLE_MATCH":
            assert d.cause.startswith("REKEYED:")
            assert d.legacy_ref not in vendor_keyed, "a re-keyed nominal is also there keyed"
        else:
            assert d.cause.startswith("RE_ENTERED:")
            keyed = vendor_keyed[d.legacy_ref]
            assert {k: v for k, v in keyed.items() if k not in ("created_at", "updated_at")} == \
                {k: v for k, v in original.items() if k not in ("created_at", "updated_at")}
        if kinds == ["key_dropped"]:
            assert typed["source_system"] == "OPUS"
            assert {k: v for k, v in typed.items() if k not in ("person_id", "legacy_nominal_id", "created_at",
                                                              "updated_at")} == \
                {k: v for k, v in original.items() if k not in ("person_id", "legacy_nominal_id", "created_at",
                                                              "updated_at")}
            continue
        assert typed["source_system"] == "IOPS" and typed["created_at"] > GO_LIVE
        check_slips(original, typed, [] if kinds == ["exact"] else kinds)
    assert set(unkeyed) == listed, "unkeyed persons the truth does not list (or the other way round)"
    return seen


def _check_lookalike(original: dict, other: dict, kind: str) -> None:
    assert other["source_system"] == "IOPS" and other["family_name"] == original["family_name"]
    o_first, first = original["given_names"].split()[0], other["given_names"].split()[0]
    if kind == "namesake":
        assert other["given_names"] == original["given_names"] and other["sex"] == original["sex"]
        assert abs((other["date_of_birth"] - original["date_of_birth"]).days) > 730
        assert _digits_apart(other["date_of_birth"], original["date_of_birth"]) >= 3
    elif kind == "twin":
        assert other["date_of_birth"] == original["date_of_birth"]
        assert first not in person_variants.related_forenames(o_first) and first[0] != o_first[0]
    else:
        assert kind == "parent_child" and first == o_first and other["sex"] == original["sex"]
        assert abs(other["date_of_birth"].year - original["date_of_birth"].year) >= 25
    assert other["pnc_id"] is None or other["pnc_id"] != original["pnc_id"]


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("target_backend", ["sqlite", "postgresql", "mysql"])
def test_person_pairs_and_lookalikes_are_in_the_target_as_the_truth_says(opus, make_store, tmp_path, target_backend):
    target = _sqlite(tmp_path / "vendor.db") if target_backend == "sqlite" else make_store(target_backend, "vendor")
    simulate(opus.legacy, target, seed=5, rates=RATES, truth_path=tmp_path / "truth.json")
    truth = load_truth(tmp_path / "truth.json")
    seen = check_store(opus.own, target, truth)
    kinds = {k.split(":")[1] for k in seen if not k.startswith("NEW_IN_IOPS")}
    # every slip occurs (Mc/Mac and apostrophes need those names: the generator has few)
    assert set(person_variants.ALL_KINDS) - {"mc_mac", "apostrophe"} <= kinds, sorted(kinds)
    assert {"key_dropped", "exact"} <= kinds
    assert {k.split(":")[1] for k in seen if k.startswith("NEW_IN_IOPS")} == set(person_variants.LOOKALIKE_KINDS)

    # A re-keyed person carries its nominal's links; iOPS-entered persons only new iOPS crimes'.
    links = _links(target)
    own_links = _links(opus.own)
    own_nom = {pid: str(p["legacy_nominal_id"]) for pid, p in opus.persons.items()}
    rekeyed = {d.legacy_ref: d.new_ref for d in truth.of("PROBABLE_MATCH", "person")}
    # links of crimes the vendor wrote (keyed, or re-keyed by hand): lost crimes take theirs along
    written = {ref for _, ref, _, _ in links if ref is not None} | {d.legacy_ref for d in truth.of("PROBABLE_MATCH", "crime")}
    expected = Counter()
    for pid, ref, _, role in own_links:
        if own_nom[pid] in rekeyed and ref in written:
            expected[(rekeyed[own_nom[pid]], role)] += 1
    got = Counter((pid, role) for pid, _, _, role in links if pid in set(rekeyed.values()))
    assert got == expected and sum(got.values()) > 0
    entered = {d.new_ref for d in truth.defects if d.entity == "person"
               and d.category in ("PROBABLE_DUPLICATE", "NEW_IN_IOPS")}
    new_crimes = {d.new_ref for d in truth.of("NEW_IN_IOPS", "crime")}
    entered_links = [(ref, cref) for pid, ref, cref, _ in links if pid in entered]
    assert entered_links and all(ref is None and cref in new_crimes for ref, cref in entered_links)
    # never the subject of intelligence (its subject would be compared through the pair)
    assert not _subjects(target) & set(rekeyed.values())


def test_rates_are_respected(opus, tmp_path):
    def shares(rates: DefectRates, name: str) -> tuple[float, float, float, int]:
        simulate(opus.legacy, _sqlite(tmp_path / f"{name}.db"), seed=3, rates=rates, truth_path=tmp_path / f"{name}.json")
        truth = load_truth(tmp_path / f"{name}.json")
        n = len(opus.persons)
        return (len(truth.of("PROBABLE_MATCH", "person")) / n, len(truth.of("PROBABLE_DUPLICATE", "person")) / n,
                len(truth.of("NEW_IN_IOPS", "person")) / n, n)

    rekeyed, reentered, lookalikes, n = shares(DefectRates().with_persons(0.2), "a")
    sigma = (0.1 * 0.9 / n) ** 0.5
    # re-keys exclude intelligence subjects and persons with an INVALID_ROLE link, look-alikes
    # need a date of birth and a given name: fewer than the rate, never more
    assert 0.1 - 4 * sigma < reentered < 0.1 + 4 * sigma
    assert 0.05 < rekeyed < 0.1 + 4 * sigma
    assert 0.07 < lookalikes < 0.1 + 4 * sigma
    none = shares(DefectRates().with_persons(0.0), "b")
    assert none[:3] == (0.0, 0.0, 0.0)


def test_same_seed_same_person_pairs(opus, tmp_path):
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    for path, seed in ((a, 2), (b, 2), (c, 6)):
        simulate(opus.legacy, _sqlite(path.with_suffix(".db")), seed=seed, rates=RATES, truth_path=path)
    assert a.read_bytes() == b.read_bytes()
    assert _persons(_sqlite(a.with_suffix(".db"))) == _persons(_sqlite(b.with_suffix(".db")))

    def pairs(path):
        return {(d.category, d.legacy_ref, d.cause) for d in load_truth(path).defects if d.entity == "person"}
    assert pairs(a) != pairs(c)


def test_crime_and_intelligence_truth_do_not_depend_on_the_person_rates(opus, tmp_path):
    """The person re-keys move links and never touch a crime or an intelligence entry."""
    def crime_intel(rates, name):
        simulate(opus.legacy, _sqlite(tmp_path / f"{name}.db"), seed=8, rates=rates, truth_path=tmp_path / f"{name}.json")
        data = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        rows = {json.dumps(d, sort_keys=True) for d in data["defects"] if d["entity"] in ("crime", "intelligence")}
        return rows, data["expected_crime_stats"]

    with_persons = crime_intel(RATES, "with")
    without = crime_intel(DefectRates().with_persons(0.0), "without")
    assert with_persons == without


# ------------------------------------------------------------------------------ scoring


def test_person_scores(tmp_path):
    """A hand-made truth and reconciler output: person pairs found, missed, and wrong."""
    import csv

    from reconcile.model import DISCREPANCY_COLUMNS

    truth = {
        "format": "opus2iops-truth/1", "seed": 1, "rates": {}, "expected_crime_stats": [],
        "defects": [
            {"entity": "person", "category": "PROBABLE_MATCH", "legacy_ref": "70001", "new_ref": "p-1",
             "cause": "REKEYED:forename_variant+dob_typo"},
            {"entity": "person", "category": "PROBABLE_MATCH", "legacy_ref": "70002", "new_ref": "p-2",
             "cause": "REKEYED:key_dropped"},
            {"entity": "person", "category": "PROBABLE_MATCH", "legacy_ref": "70003", "new_ref": "p-3",
             "cause": "REKEYED:names_swapped"},
            {"entity": "person", "category": "PROBABLE_DUPLICATE", "legacy_ref": "70004", "new_ref": "p-4",
             "cause": "RE_ENTERED:exact"},
            {"entity": "person", "category": "PROBABLE_DUPLICATE", "legacy_ref": "70005", "new_ref": "p-5",
             "cause": "RE_ENTERED:dob_typo"},
            {"entity": "person", "category": "NEW_IN_IOPS", "legacy_ref": "70006", "new_ref": "p-6",
             "cause": "LOOKALIKE:twin"},
            {"entity": "person", "category": "MISSING", "legacy_ref": "70006", "cause": "LOST"},
            {"entity": "crime", "category": "PROBABLE_MATCH", "legacy_ref": "CR/000001/19", "new_ref": "CRI-2019-900001"},
        ],
    }
    (tmp_path / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    def row(entity, category, legacy, new, detail="", field=""):
        values = dict(zip(DISCREPANCY_COLUMNS, [""] * len(DISCREPANCY_COLUMNS)))
        values.update(entity=entity, category=category, legacy_ref=legacy, new_ref=new, detail=detail, field=field)
        return [values[c] for c in DISCREPANCY_COLUMNS]

    rows = [
        row("person", "PROBABLE_MATCH", "70001", "p-1", "AUTO"),
        row("person", "PROBABLE_MATCH", "70002", "p-2", "REVIEW"),
        row("person", "PROBABLE_MATCH", "70006", "p-6", "AUTO"),  # the lost nominal paired with its twin
        row("person", "PROBABLE_DUPLICATE", "70004", "p-4", "AUTO"),
        row("person", "MISSING", "70002", ""),  # a REVIEW pair leaves the nominal missing
        row("person", "MISSING", "70003", ""),
        row("person", "ALTERED", "70001", "p-1", field="date_of_birth"),  # fields of an AUTO pair: set aside
        row("crime", "PROBABLE_MATCH", "CR/000001/19", "CRI-2019-900001", "AUTO"),
    ]
    with (tmp_path / "discrepancies.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([DISCREPANCY_COLUMNS, *rows])
    s = score(tmp_path / "truth.json", tmp_path / "discrepancies.csv")
    m, d = s["persons"]["PROBABLE_MATCH"], s["persons"]["PROBABLE_DUPLICATE"]
    assert (m["expected"], m["auto_pairs"], m["review_pairs"]) == (3, 2, 1)
    assert m["auto_precision"] == 0.5 and m["auto_recall"] == pytest.approx(1 / 3)
    assert m["auto_review_recall"] == pytest.approx(2 / 3)
    assert m["wrong_auto_by_what"] == {"look-alike twin": 1}
    assert m["by_kind"]["dob_typo"]["auto_recall"] == 1.0 and m["by_kind"]["names_swapped"]["auto_review_recall"] == 0
    assert (d["auto_precision"], d["auto_recall"], d["auto_review_recall"]) == (1.0, 0.5, 0.5)
    assert d["by_kind"]["exact"]["auto_recall"] == 1.0 and d["by_kind"]["dob_typo"]["auto_recall"] == 0.0
    # the crime PROBABLE_MATCH is scored apart from the persons
    assert s["probable_match"]["auto_precision"] == 1.0 and s["probable_match"]["auto_pairs"] == 1
    # MISSING persons: 70002 (REVIEW) and 70003 (unfound) expected and reported; 70006 was
    # wrongly auto-matched, so not reported: a miss
    missing = s["categories"]["MISSING"]
    assert (missing["tp"], missing["fp"], missing["fn"]) == (2, 0, 1)
    assert s["set_aside"] == {"ALTERED on re-keyed/new iOPS records": 1}
    assert "person PROBABLE_MATCH auto_precision 0.5000 < 0.995" in shortfalls(s, persons=True)
    assert not [line for line in shortfalls(s) if line.startswith("person")]
    table = "\n".join(person_kind_table(s))
    assert "look-alike twin 1" in table and "forename_variant" in table
