"""The catalogue of entities (``mappings/entities.py``) and its one duplicate-key rule,
``first_key_wins``, through the two tools that apply it: the migration and the simulator.

Two legacy keys equal once trimmed (`` CR/000001/18`` sorts before ``CR/000001/18``) can only
be stored by an engine that does not enforce the key's width: SQLite here.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core import schema
from mappings.entities import BY_NAME, CRIME, ENTITIES, INTELLIGENCE, KEYED, LINK, PERSON, first_key_wins
from mappings.outcome import Issue, Mapped
from migrate.engine import migrate
from synth.simulate import DefectRates, simulate
from synth.truth import load_truth
from tests.opus_fixture import make_legacy


def test_the_catalogue_names_real_legacy_tables_and_keys_in_dependency_order():
    for entity in ENTITIES:
        table = schema.legacy_metadata.tables[entity.legacy_table]
        assert [c.name for c in table.primary_key.columns] == list(entity.key_columns), entity.name
    order = [e.name for e in ENTITIES]
    # links need persons and crimes, intelligence subjects need persons
    assert order.index("person") < order.index("crime_person") and order.index("crime") < order.index("crime_person")
    assert order.index("person") < order.index("intelligence")
    assert BY_NAME["crime"] is CRIME and KEYED == (PERSON, CRIME, INTELLIGENCE) and LINK not in KEYED


@pytest.mark.parametrize("entity", KEYED, ids=lambda e: e.name)
def test_first_key_wins_rejects_only_a_later_accepted_record(entity):
    accepted = Mapped(entity.name, "K1", rows={"x": {}})
    assert first_key_wins(entity, accepted, key_taken=False).reject is None
    assert first_key_wins(entity, accepted, key_taken=True).reject == Issue(
        "DUPLICATE_KEY", entity.key_column.upper(), "K1")
    own = Issue("SOME_REASON", "F", "v")
    rejected = Mapped(entity.name, "K1", reject=own)
    assert first_key_wins(entity, rejected, key_taken=True).reject is own  # keeps its own reason
    excluded = Mapped(entity.name, "K1", excluded=True)
    assert first_key_wins(entity, excluded, key_taken=True).reject is None  # deleted: neither


def test_links_are_not_keyed_records():
    link = Mapped(LINK.name, "CR/000001/18:1:VICTIM", rows={"crime_person": {}})
    assert first_key_wins(LINK, link, key_taken=True).reject is None


# Two records of one trimmed key: (first, second) each "ok" or "bad" (rejected by the mapping).
# The first in key order is the padded one; they differ in a migrated field, so we see which won.
_KEY = {"crime": "CR/000001/18", "intelligence": "IN/000001/18"}
_BAD = {"crime": ({"off_code": "NOPE"}, "UNMAPPED_OFFENCE"), "intelligence": ({"src_eval": "Q"}, "INVALID_GRADING")}
_TELL = {"crime": ("oic", "oic_collar", "crime"), "intelligence": ("officer", "officer_collar", "intelligence_report")}
CASES = {
    # case: (which record is migrated (0, 1), the reject of each record in key order)
    "both-accepted": (0, [None, "DUPLICATE_KEY"]),
    "first-rejected": (1, ["BAD", None]),
    "second-rejected": (0, [None, "BAD"]),
}


def _store(tmp_path, entity: str, case: str) -> str:
    key, (bad, _) = _KEY[entity], _BAD[entity]
    column = {"crime": "crime_no", "intelligence": "intel_no"}[entity]
    tell = _TELL[entity][0]
    rows = [{column: " " + key, tell: "1111"}, {column: key, tell: "2222"}]
    for row, reject in zip(rows, CASES[case][1]):
        if reject == "BAD":
            row.update(bad)
    kw = {"crimes": rows} if entity == "crime" else {"intel": rows}
    return make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", **kw)


def _expected(entity: str, case: str) -> tuple[set, str]:
    winner, rejects = CASES[case]
    reasons = {None: None, "BAD": _BAD[entity][1], "DUPLICATE_KEY": "DUPLICATE_KEY"}
    return {(entity, _KEY[entity], reasons[r]) for r in rejects if r}, ("1111", "2222")[winner]


def _rows(url: str, sql: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _migrated(url: str, entity: str) -> list[tuple]:
    _, collar, table = _TELL[entity]
    return _rows(url, f"SELECT legacy_ref, {collar} FROM {table}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("entity", ["crime", "intelligence"])
def test_migration_and_simulator_agree_on_two_keys_equal_once_trimmed(tmp_path, entity, case):
    legacy = _store(tmp_path, entity, case)
    rejects, winner = _expected(entity, case)
    own, vendor = f"sqlite:///{tmp_path / 'own.db'}", f"sqlite:///{tmp_path / 'vendor.db'}"

    migrate(legacy, own)
    got = _rows(own, "SELECT entity, legacy_key, reason, field FROM mig_reject")
    key_column = BY_NAME[entity].key_column.upper()
    assert {(e, k, r) for e, k, r, _ in got} == rejects
    assert all(f == key_column for _, _, r, f in got if r == "DUPLICATE_KEY")  # the key column, not NULL
    assert _migrated(own, entity) == [(_KEY[entity], winner)]
    assert _rows(own, "SELECT entity, legacy_key FROM mig_xref") == [(entity, _KEY[entity])]

    simulate(legacy, vendor, rates=DefectRates.none(), truth_path=tmp_path / "truth.json")
    truth = load_truth(tmp_path / "truth.json")
    assert {(d.entity, d.legacy_ref, d.detail) for d in truth.defects if d.cause == "REJECTED"} == rejects
    assert all(d.category == "MISSING" for d in truth.defects)
    assert _migrated(vendor, entity) == [(_KEY[entity], winner)]  # the same record as the migration's


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_migration_applies_the_rule_as_an_uninterrupted_one(tmp_path, case):
    legacy = _store(tmp_path, "crime", case)
    rejects, winner = _expected("crime", case)
    own = f"sqlite:///{tmp_path / 'own.db'}"
    first = migrate(legacy, own, batch_size=1, stop_after_batches=1)  # the first crime only
    assert first.state == "interrupted"
    migrate(legacy, own, batch_size=1, resume=first.run_id)
    assert {(e, k, r) for e, k, r in _rows(own, "SELECT entity, legacy_key, reason FROM mig_reject")} == rejects
    assert _migrated(own, "crime") == [(_KEY["crime"], winner)]
