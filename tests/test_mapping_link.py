"""crime_person ← CRIME_NOM (mapping.md, "crime_person ← CRIME_NOM")."""

from __future__ import annotations

import datetime as dt

import pytest

from core import schema
from mappings import MappingContext, ids, map_link, map_links
from mappings.reference import load_reference

UTC = dt.timezone.utc
MIGRATED_CRIMES = {"CR/004512/19", "CR/000001/18"}
MIGRATED_PERSONS = {70031, 70032}
CTX = MappingContext(
    load_reference(), dt.datetime(2019, 7, 1, tzinfo=UTC),
    person_migrated=MIGRATED_PERSONS.__contains__,
    crime_migrated=MIGRATED_CRIMES.__contains__,
)


def link(crime_no="CR/004512/19", nom_id=70031, role="V"):
    return {"crime_no": crime_no, "nom_id": nom_id, "role": role}


@pytest.mark.parametrize("role, target", [
    ("V", "VICTIM"), ("S", "SUSPECT"), ("O", "OFFENDER"), ("W", "WITNESS"), (" v ", "VICTIM"), ("w", "WITNESS"),
])
def test_roles(role, target):
    m = map_link(link(role=role), CTX)
    assert m.accepted and m.entity == "crime_person" and m.warnings == []
    assert m.legacy_key == f"CR/004512/19:70031:{target}"
    assert m.rows == {"crime_person": {
        "crime_id": ids.crime_id("CR/004512/19"), "person_id": ids.person_id(70031), "role": target,
    }}
    assert set(m.rows["crime_person"]) == {c.name for c in schema.crime_person.columns}


def test_the_spec_example_key():
    assert map_link(link(crime_no=" CR/004512/19 ", nom_id=70031, role="V"), CTX).legacy_key == "CR/004512/19:70031:VICTIM"


def test_crime_no_is_trimmed_before_the_lookup_and_the_id():
    seen = []
    ctx = MappingContext(CTX.reference, CTX.run_started, crime_migrated=lambda c: seen.append(c) or True)
    m = map_link(link(crime_no="  CR/004512/19  "), ctx)
    assert seen == ["CR/004512/19"]
    assert m.rows["crime_person"]["crime_id"] == ids.crime_id("CR/004512/19")


@pytest.mark.parametrize("row, field, value, key", [
    (link(crime_no="CR/999999/19"), "CRIME_NO", "CR/999999/19", "CR/999999/19:70031:VICTIM"),  # crime absent/deleted/rejected
    (link(crime_no="BAD"), "CRIME_NO", "BAD", "BAD:70031:VICTIM"),  # malformed: can never have migrated
    (link(crime_no=None), "CRIME_NO", None, ":70031:VICTIM"),
    (link(nom_id=99999), "NOM_ID", "99999", "CR/004512/19:99999:VICTIM"),  # nominal absent/deleted/rejected
    (link(nom_id="X1"), "NOM_ID", "X1", "CR/004512/19:X1:VICTIM"),
    (link(crime_no="CR/999999/19", nom_id=99999), "CRIME_NO", "CR/999999/19", "CR/999999/19:99999:VICTIM"),
])
def test_orphan_links(row, field, value, key):
    m = map_link(row, CTX)
    assert m.reject.code == "ORPHAN_LINK" and m.reject.field == field and m.reject.value == value
    assert m.legacy_key == key and m.rows == {}


@pytest.mark.parametrize("role, key_role", [("X", "X"), (" q ", "Q"), ("", ""), (None, ""), ("VV", "VV")])
def test_invalid_role(role, key_role):
    m = map_link(link(role=role), CTX)
    assert m.reject.code == "INVALID_ROLE" and m.reject.field == "ROLE" and m.reject.value == role
    assert m.legacy_key == f"CR/004512/19:70031:{key_role}"


def test_orphan_link_is_reported_before_invalid_role():
    assert map_link(link(crime_no="CR/999999/19", role="X"), CTX).reject.code == "ORPHAN_LINK"
    assert map_link(link(nom_id=5, role="X"), CTX).reject.code == "ORPHAN_LINK"


def test_links_normalising_to_the_same_triple_are_migrated_once():
    rows = [
        link(crime_no="CR/004512/19", role="V"),
        link(crime_no="CR/004512/19 ", role="v"),  # same after trim / upper
        link(crime_no="CR/004512/19", role="S"),  # a different role: a different link
        link(crime_no=" CR/004512/19", role=" V "),
    ]
    out = map_links(rows, CTX)
    assert len(out) == 4
    assert [m.legacy_key for m in out] == [
        "CR/004512/19:70031:VICTIM", "CR/004512/19:70031:VICTIM",
        "CR/004512/19:70031:SUSPECT", "CR/004512/19:70031:VICTIM",
    ]
    written = [m.rows["crime_person"] for m in out if m.rows]
    assert len(written) == 2 and len({tuple(r.values()) for r in written}) == 2
    for dup in (out[1], out[3]):
        assert dup.rows == {} and dup.reject is None and not dup.excluded
        assert [w.code for w in dup.warnings] == ["DUPLICATE_LINK"]


def test_duplicate_rejects_are_each_reported():
    out = map_links([link(role="X"), link(role="x")], CTX)
    assert [m.reject.code for m in out] == ["INVALID_ROLE", "INVALID_ROLE"]


def test_batch_is_one_result_per_row_in_order():
    rows = [link(nom_id=70031), link(nom_id=70032), link(nom_id=1), link(crime_no="CR/000001/18")]
    out = map_links(iter(rows), CTX)
    assert [m.accepted for m in out] == [True, True, False, True]
    assert [m.legacy_key.split(":")[1] for m in out] == ["70031", "70032", "1", "70031"]
