"""What a discrepancy row says (issue 18): every row explained in plain English from the one
table, MISSING rows with the record's time, offence, district and place, the detectors of
``reconcile/compare.py`` each on a hand-made case and one it must not fire on, entity
balances that add up (links included), records affected beside rows, and whole days lost.

The detectors are exercised twice: on hand-made field differences (``explain_diffs``, the
rules alone) and on a hand-made store damaged by SQL, reconciled on every engine, its
``discrepancies.csv`` read back.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest
import sqlalchemy as sa

from core import schema
from mappings import ids
from mappings.explanations import explain
from mappings.reference import load_reference
from migrate.engine import migrate
from reconcile.compare import diff_fields, explain_diffs
from reconcile.model import DISCREPANCY_COLUMNS
from reconcile.run import ReconcileOptions, reconcile
from reconcile.specs import CRIME_RULES, INTEL_RULES, PERSON_RULES
from reports.reconciliation import write_reconciliation_reports
from tests.opus_fixture import execute, make_legacy

UTC = dt.timezone.utc
REF = load_reference()
RULE = {r.name: r for r in CRIME_RULES + INTEL_RULES + PERSON_RULES}
SUMMER = dt.datetime(2018, 6, 15, 13, 30, tzinfo=UTC)  # 14:30 BST
WINTER = dt.datetime(2018, 1, 15, 14, 30, tzinfo=UTC)


def explained(pairs: dict, raw=None, expected=None):
    """explain_diffs over hand-made differences {field: (expected, actual)}, by field."""
    rules = [RULE[name] for name in pairs]
    diffs = diff_fields(rules, [e for e, _ in pairs.values()], [a for _, a in pairs.values()])
    values = {name: e for name, (e, _) in pairs.items()} | (expected or {})
    return {x.diff.rule.name: x for x in explain_diffs(diffs, values, raw or {}, REF)}


# ------------------------------------------------------------------------------ each detector, and a negative


def test_latitude_and_longitude_swapped_is_one_swap_on_both_rows():
    out = explained({"location.latitude": (53.48, -2.24), "location.longitude": (-2.24, 53.48)})
    assert {x.detail for x in out.values()} == {"LATLON_SWAPPED"}
    assert out["location.latitude"].explanation == out["location.longitude"].explanation
    assert explain("LATLON_SWAPPED") in out["location.latitude"].explanation


def test_latitude_and_longitude_merely_wrong_is_not_a_swap():
    out = explained({"location.latitude": (53.48, 53.50), "location.longitude": (-2.24, -2.30)})
    assert {x.detail for x in out.values()} == {None}
    assert all(x.explanation.startswith(explain("CHANGED")) for x in out.values())


def test_one_swapped_coordinate_alone_is_not_a_swap():
    out = explained({"location.latitude": (53.48, -2.24)})
    assert out["location.latitude"].detail is None


def _offence(code: str) -> tuple:
    o = REF.ho_offences[code]
    return (o.ho_code, o.description, o.offence_group, o.police_uk_category)


def _offence_pairs(old: str, new: str) -> dict:
    fields = ("ho_offence_code", "offence_description", "offence_group", "police_uk_category")
    return {f: (e, a) for f, e, a in zip(fields, _offence(old), _offence(new))}


def test_a_wrong_offence_is_one_change_explained_on_every_offence_row():
    out = explained(_offence_pairs("28E", "58A"), raw={"off_code": "BURG-DW"}, expected={"recorded_at": SUMMER})
    assert {x.detail for x in out.values()} == {"OFFENCE_CHANGED"}
    [text] = {x.explanation for x in out.values()}
    assert text.startswith("offence changed: ")
    assert REF.ho_offences["28E"].description in text and REF.ho_offences["58A"].description in text
    assert text.index(REF.ho_offences["28E"].description) < text.index("→")


def test_the_expired_code_of_the_opus_offence_is_told_apart():
    out = explained(_offence_pairs("28E", "28A"), raw={"off_code": "BURG-DW"}, expected={"recorded_at": SUMMER})
    assert {x.detail for x in out.values()} == {"OFFENCE_EXPIRED_CODE"}
    assert "2017-03-31" in out["ho_offence_code"].explanation
    # The same code for a crime recorded while it was in force is no expired code: just another offence.
    before = explained(_offence_pairs("28E", "28A"), raw={"off_code": "BURG-DW"},
                       expected={"recorded_at": dt.datetime(2016, 6, 1, tzinfo=UTC)})
    assert {x.detail for x in before.values()} == {"OFFENCE_CHANGED"}


def test_an_hour_late_in_summer_is_bst_not_applied_in_uk_time():
    out = explained({"recorded_at": (SUMMER, SUMMER + dt.timedelta(hours=1))})["recorded_at"]
    assert out.detail == "OFFSET_1H"
    assert out.explanation.startswith("recorded time is 1 hour late in iOPS – BST not applied")
    assert "OPUS 2018-06-15 14:30, iOPS 2018-06-15 15:30, UK time" in out.explanation


@pytest.mark.parametrize("moment, hours, words", [
    (WINTER, 1, "recorded time is 1 hour(s) late"),  # no BST in January: only an offset
    (SUMMER, -2, "recorded time is 2 hour(s) early"),
])
def test_other_whole_hour_offsets_are_not_called_bst(moment, hours, words):
    out = explained({"recorded_at": (moment, moment + dt.timedelta(hours=hours))})["recorded_at"]
    assert out.detail == f"OFFSET_{hours}H" and words in out.explanation and "BST" not in out.explanation


def test_minutes_off_is_no_offset():
    out = explained({"recorded_at": (SUMMER, SUMMER + dt.timedelta(minutes=17))})["recorded_at"]
    assert out.detail is None and "UK time" in out.explanation


def test_truncated_text_says_how_much_was_kept():
    out = explained({"mo_summary": ("SIDE WINDOW SMASHED, SATNAV TAKEN", "SIDE WINDOW")})["mo_summary"]
    assert out.detail == "TRUNCATED" and "(11 of 33 characters kept)" in out.explanation
    other = explained({"mo_summary": ("SIDE WINDOW SMASHED", "REAR WINDOW SMASHED")})["mo_summary"]
    assert other.detail is None


def test_intelligence_text_is_never_in_an_explanation():
    secret = "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS"
    out = explained({"intel_text": (secret, "SOMETHING ELSE ENTIRELY")})["intel_text"]
    assert "PICCADILLY" not in out.explanation and "ELSE" not in out.explanation
    cut = explained({"intel_text": (secret, secret[:12])})["intel_text"]
    assert cut.detail == "TRUNCATED" and "PICCADILLY" not in cut.explanation and "SUBJECT" not in cut.explanation


def test_a_value_lost_and_a_value_gained():
    lost = explained({"outcome_code": (1, None)})["outcome_code"]
    assert lost.detail == "LOST" and "outcome 1 – Charged/Summonsed" in lost.explanation
    gained = explained({"location.postcode": (None, "M1 5QA")})["location.postcode"]
    assert gained.detail == "GAINED"
    blank = explained({"location.address": ("12 OXFORD ROAD", "  ")})["location.address"]
    assert blank.detail == "LOST"  # a blank is as empty as NULL
    changed = explained({"outcome_code": (1, 8)})["outcome_code"]
    assert changed.detail is None
    assert f"outcome 1 – Charged/Summonsed → outcome 8 – {REF.outcome_labels[8]}" in changed.explanation


def test_a_district_is_named():
    out = explained({"district_code": ("E08000003", "E08000006")})["district_code"]
    assert "Manchester → Salford" in out.explanation


def test_day_and_month_swapped_in_a_date_of_birth():
    out = explained({"date_of_birth": (dt.date(1980, 2, 11), dt.date(1980, 11, 2))})["date_of_birth"]
    assert out.detail == "DAY_MONTH_SWAPPED" and "1980-02-11 in OPUS, 1980-11-02 in iOPS" in out.explanation
    other = explained({"date_of_birth": (dt.date(1980, 2, 11), dt.date(1981, 2, 11))})["date_of_birth"]
    assert other.detail is None


@pytest.mark.parametrize("new", ["SMIHT", "SMTH", "SMITHE", "SMYTH"])
def test_a_name_misspelt_by_one_slip(new):
    out = explained({"family_name": ("SMITH", new)})["family_name"]
    assert out.detail == "MISSPELT" and f"SMITH → {new}" in out.explanation


def test_another_name_is_not_a_misspelling():
    assert explained({"family_name": ("SMITH", "JONES")})["family_name"].detail is None
    # One letter apart in a field that is no name (a house number) is not a misspelling either.
    assert explained({"location.address": ("1 OXFORD ROAD", "7 OXFORD ROAD")})["location.address"].detail is None


def test_a_grading_copied_through_unconverted():
    out = explained({"source_evaluation": ("1", "B")}, raw={"src_eval": "b "})["source_evaluation"]
    assert out.detail == "GRADING_UNCONVERTED" and "B instead of 1" in out.explanation
    other = explained({"source_evaluation": ("1", "2")}, raw={"src_eval": "B"})["source_evaluation"]
    assert other.detail is None


def test_every_detail_the_tool_gives_is_in_the_one_table():
    for code in ("LATLON_SWAPPED", "DAY_MONTH_SWAPPED", "LOST", "GAINED", "MISSPELT", "GRADING_UNCONVERTED",
                 "OFFENCE_CHANGED", "OFFENCE_EXPIRED_CODE", "TRUNCATED", "ENCODING", "UNICODE_FORM",
                 "MISSING_NO_REASON", "DUPLICATE_RECORD", "NOT_IN_OPUS", "DELETED_IN_OPUS_MIGRATED",
                 "LINK_UNEXPECTED", "AUTO", "REVIEW", "LEGACY_REJECTED", "OFFSET_BST"):
        assert explain(code) != code, code


# ------------------------------------------------------------------------------ a hand-made store, read back

CRIMES = [
    {"crime_no": "CR/000001/18"},  # faithful
    {"crime_no": "CR/000002/18", "rec_date": "16/06/2018", "rec_time": "0905"},  # lost in iOPS
    {"crime_no": "CR/000003/18", "off_code": "NOPE", "addr_line": None, "pcode": "m14 5tq"},  # UNMAPPED_OFFENCE
    {"crime_no": "CR/000004/18"},  # latitude/longitude swapped
    {"crime_no": "CR/000005/18"},  # latitude merely wrong
    {"crime_no": "CR/000006/18", "off_code": "BURG-DW"},  # the expired code 28A
    {"crime_no": "CR/000007/18"},  # BST not applied
    {"crime_no": "CR/000008/18", "disposal": "CHG"},  # outcome lost
    {"crime_no": "CR/000009/18"},  # duplicated
    # 12/03/2018: three crimes, all lost — a whole day; 13/03/2018: three, one survives; 14/03: two, both lost.
    *({"crime_no": f"CR/00002{i}/18", "rec_date": "12/03/2018"} for i in range(3)),
    *({"crime_no": f"CR/00003{i}/18", "rec_date": "13/03/2018"} for i in range(3)),
    *({"crime_no": f"CR/00004{i}/18", "rec_date": "14/03/2018"} for i in range(2)),
]
NOMINALS = [
    {"nom_id": 70001, "surname": "SMITH", "forenames": "JOHN", "dob": "11/02/1980"},  # dob day/month swapped
    {"nom_id": 70002, "surname": "PARKER", "forenames": "ANNE"},  # misspelt
    {"nom_id": 70003, "surname": "OKAFOR", "forenames": "CHI"},  # lost: its links cannot be compared
    {"nom_id": 70004, "surname": " "},  # MISSING_NAME: its link is an orphan
]
LINKS = [
    {"crime_no": "CR/000001/18", "nom_id": 70001, "role": "V"},  # matched
    {"crime_no": "CR/000001/18", "nom_id": 70002, "role": "S"},  # lost in iOPS
    {"crime_no": "CR/000001/18", "nom_id": 70003, "role": "W"},  # person lost: not compared
    {"crime_no": "CR/000001/18", "nom_id": 70004, "role": "W"},  # person rejected: orphan
    {"crime_no": "CR/000002/18", "nom_id": 70001, "role": "V"},  # crime lost: not compared
    {"crime_no": "CR/000003/18", "nom_id": 70001, "role": "V"},  # crime rejected: not migrated
    {"crime_no": "CR/000004/18", "nom_id": 70001, "role": "Z"},  # INVALID_ROLE, both ends matched
    {"crime_no": "CR/000004/18 ", "nom_id": 70002, "role": "V"},  # padded, and
    {"crime_no": "CR/000004/18", "nom_id": 70002, "role": "v"},  # the same link again: migrated once
]
INTEL = [{"intel_no": "IN/000001/18", "src_eval": "B"}]  # grading copied through unconverted


def _crime(ref):
    return schema.crime.c.crime_id == ids.crime_id(ref)


def _location(ref):
    return schema.location.c.location_id == ids.location_id("crime", ref)


def _person(nom):
    return schema.person.c.legacy_nominal_id == nom


def _damage(target: str) -> None:
    """What a faulty migration did, one defect per record."""
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        loc4 = conn.execute(sa.select(schema.location.c.latitude, schema.location.c.longitude)
                            .where(_location("CR/000004/18"))).one()
        crime7 = conn.execute(sa.select(schema.crime.c.recorded_at).where(_crime("CR/000007/18"))).scalar_one()
        crime9 = dict(conn.execute(sa.select(schema.crime).where(_crime("CR/000009/18"))).mappings().one())
        loc9 = dict(conn.execute(sa.select(schema.location).where(_location("CR/000009/18"))).mappings().one())
    engine.dispose()
    lost = ["CR/000002/18", "CR/000020/18", "CR/000021/18", "CR/000022/18", "CR/000030/18", "CR/000031/18",
            "CR/000040/18", "CR/000041/18"]
    old = REF.ho_offences["28A"]
    loc9.update(location_id=ids.location_id("crime", "copy"))
    crime9.update(crime_id=ids.crime_id("copy"), crime_ref="CRI-2018-000009D", location_id=loc9["location_id"],
                  created_at=crime9["created_at"] + dt.timedelta(minutes=5))
    loc_x = dict(loc9, location_id=ids.location_id("crime", "unexpected"))
    crime_x = dict(crime9, crime_id=ids.crime_id("unexpected"), crime_ref="CRI-2018-999999", legacy_ref="CR/999999/18",
                   location_id=loc_x["location_id"])
    cp = schema.crime_person
    execute(
        target,
        cp.delete().where(cp.c.crime_id.in_([ids.crime_id(r) for r in lost])),
        schema.crime.delete().where(schema.crime.c.crime_id.in_([ids.crime_id(r) for r in lost])),
        cp.delete().where(sa.and_(cp.c.crime_id == ids.crime_id("CR/000001/18"), cp.c.role == "SUSPECT")),
        cp.delete().where(cp.c.person_id == ids.person_id(70003)),
        schema.person.delete().where(_person(70003)),
        schema.location.update().where(_location("CR/000004/18")).values(latitude=loc4.longitude,
                                                                          longitude=loc4.latitude),
        schema.location.update().where(_location("CR/000005/18")).values(latitude=53.6),
        schema.crime.update().where(_crime("CR/000006/18")).values(
            ho_offence_code=old.ho_code, offence_description=old.description, offence_group=old.offence_group,
            police_uk_category=old.police_uk_category),
        schema.crime.update().where(_crime("CR/000007/18")).values(recorded_at=crime7 + dt.timedelta(hours=1)),
        schema.crime.update().where(_crime("CR/000008/18")).values(outcome_code=None),
        schema.location.insert().values(**loc9),
        schema.crime.insert().values(**crime9),
        schema.location.insert().values(**loc_x),
        schema.crime.insert().values(**crime_x),  # a reference no OPUS record has
        schema.person.update().where(_person(70001)).values(date_of_birth=dt.date(1980, 11, 2)),
        schema.person.update().where(_person(70002)).values(family_name="PRAKER"),
        schema.intelligence_report.update().values(source_evaluation="B"),
    )


@pytest.fixture
def damaged(tmp_path, make_store, backend):
    """The hand-made store, migrated faithfully into a store of ``backend``, damaged, reconciled;
    returns (result, rows of discrepancies.csv as dicts)."""
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=CRIMES, nominals=NOMINALS, links=LINKS,
                         intel=INTEL)
    target = make_store(backend, "rows_target")
    assert migrate(legacy, target, batch_size=4).state == "complete"
    _damage(target)
    result = reconcile(legacy, target, ReconcileOptions(batch_size=3, workers=1))
    paths = write_reconciliation_reports(result, tmp_path / "out")
    raw = paths["discrepancies"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark
    with open(paths["discrepancies"], encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == DISCREPANCY_COLUMNS
        rows = list(reader)
    return result, rows


def _by(rows, entity, category, ref=None):
    return [r for r in rows if r["entity"] == entity and r["category"] == category
            and (ref is None or r["legacy_ref"] == ref)]


def test_every_row_read_back_has_an_explanation(damaged):
    _, rows = damaged
    assert rows and all(r["explanation"] for r in rows)
    assert all(r["explanation"] != r["detail"] for r in rows if r["detail"])  # words, not the code again


def test_missing_rows_carry_time_offence_district_and_place(damaged):
    _, rows = damaged
    [lost] = _by(rows, "crime", "MISSING", "CR/000002/18")
    assert (lost["detail"], lost["explanation"]) == ("", "lost in iOPS – no reason known")
    assert (lost["recorded_local"], lost["offence"], lost["district"], lost["place"]) == (
        "2018-06-16 09:05", REF.ho_offences[REF.ho_code_for("TFMV", dt.date(2018, 6, 16))].description,
        "Manchester", "12 OXFORD ROAD, MANCHESTER")
    [rejected] = _by(rows, "crime", "MISSING", "CR/000003/18")
    assert rejected["detail"] == "UNMAPPED_OFFENCE"
    assert rejected["explanation"].startswith("not migrated: offence code not in the crosswalk")
    # The mapping's own readings of the raw row: the OPUS code, the postcode normalised (no address).
    assert (rejected["recorded_local"], rejected["offence"], rejected["district"], rejected["place"]) == (
        "2018-06-15 14:30", "OPUS code NOPE", "Manchester", "M14 5TQ")
    for r in _by(rows, "crime", "MISSING"):
        assert r["recorded_local"] and r["offence"] and r["district"] and r["place"], r


def test_detectors_on_the_store(damaged):
    _, rows = damaged
    altered = {(r["legacy_ref"], r["field"]): r for r in _by(rows, "crime", "ALTERED")}
    assert {altered[("CR/000004/18", f)]["detail"] for f in ("location.latitude", "location.longitude")} == {
        "LATLON_SWAPPED"}
    assert altered[("CR/000005/18", "location.latitude")]["detail"] == ""  # merely wrong
    assert {r["detail"] for (ref, _), r in altered.items() if ref == "CR/000006/18"} == {"OFFENCE_EXPIRED_CODE"}
    seven = altered[("CR/000007/18", "recorded_at")]
    assert seven["detail"] == "OFFSET_1H" and "BST not applied" in seven["explanation"]
    assert "OPUS 2018-06-15 14:30, iOPS 2018-06-15 15:30, UK time" in seven["explanation"]
    assert seven["recorded_local"] == "2018-06-15 14:30"
    eight = altered[("CR/000008/18", "outcome_code")]
    assert eight["detail"] == "LOST" and "Charged/Summonsed" in eight["explanation"]
    [dup] = _by(rows, "crime", "DUPLICATE")
    assert dup["new_ref"] == "CRI-2018-000009D" and "CRI-2018-000009" in dup["explanation"]
    persons = {(r["legacy_ref"], r["field"]): r["detail"] for r in _by(rows, "person", "ALTERED")}
    assert persons == {("70001", "date_of_birth"): "DAY_MONTH_SWAPPED", ("70002", "family_name"): "MISSPELT"}
    [grading] = _by(rows, "intelligence", "ALTERED")
    assert (grading["field"], grading["detail"]) == ("source_evaluation", "GRADING_UNCONVERTED")
    links = {r["legacy_ref"]: r for r in _by(rows, "crime_person", "MISSING")}
    assert links["CR/000001/18:70002:SUSPECT"]["explanation"] == "lost in iOPS – no reason known"
    assert links["CR/000004/18:70001:Z"]["detail"] == "INVALID_ROLE"


def test_unexpected_rows_show_the_iops_record(damaged):
    _, rows = damaged
    [row] = _by(rows, "crime", "UNEXPECTED")
    assert (row["legacy_ref"], row["detail"], row["explanation"]) == (
        "CR/999999/18", "NOT_IN_OPUS", explain("NOT_IN_OPUS"))
    assert (row["recorded_local"], row["district"], row["place"]) == (
        "2018-06-15 14:30", "Manchester", "12 OXFORD ROAD, MANCHESTER") and row["offence"]


def test_rows_name_the_person(damaged):
    result, _ = damaged
    by_ref = {(d.entity, d.legacy_ref): d for d in result.discrepancies}
    assert by_ref[("person", "70002")].person == "PARKER, ANNE (NOM_ID 70002)"
    assert by_ref[("crime_person", "CR/000001/18:70002:SUSPECT")].person == "PARKER, ANNE (NOM_ID 70002)"
    assert by_ref[("person", "70003")].person == "OKAFOR, CHI (NOM_ID 70003)"  # MISSING


def test_records_affected_beside_rows(damaged):
    result, rows = damaged
    crime = result.totals["crime"]
    altered_rows = _by(rows, "crime", "ALTERED")
    assert crime.categories["ALTERED"] == len(altered_rows)
    assert crime.records["ALTERED"] == len({r["legacy_ref"] for r in altered_rows}) == 5  # 4, 5, 6, 7, 8
    assert crime.categories["ALTERED"] > crime.records["ALTERED"]  # a swap is 2 rows, an offence 4
    assert crime.records["MISSING"] == crime.categories["MISSING"]
    tally = crime.field_tally
    assert tally["outcome_code"]["lost"] == 1 and tally["location.latitude"]["differing"] == 2


def test_whole_days_lost(damaged):
    result, _ = damaged
    days = [(d.entity, d.day, d.missing) for d in result.missing_by_day()]
    # 13/03: one of its three crimes survived; 14/03: only two crimes (fewer than three could be chance).
    assert days == [("crime", "2018-03-12", 3)]


def test_balances_add_up_links_included(damaged):
    result, _ = damaged
    balances = result.balances
    assert all(b.adds_up for b in balances.values()), balances
    crime = balances["crime"]
    assert (crime.live, crime.missing, crime.not_expected) == (len(CRIMES), 8, {"UNMAPPED_OFFENCE": 1})
    links = balances["crime_person"]
    # Matched: CR/000001/18's victim, and CR/000004/18's victim typed twice (padded key, lower-case
    # role) — migrated once, the repeat not expected.
    assert (links.live, links.matched, links.missing) == (len(LINKS), 2, 1)
    assert links.not_expected == {"DUPLICATE_LINK": 1, "INVALID_ROLE": 1, "LINK_CRIME_NOT_MIGRATED": 1,
                                  "ORPHAN_LINK": 1}
    assert links.not_compared == {"LINK_CRIME_MISSING": 1, "LINK_PERSON_MISSING": 1}


# ------------------------------------------------------------------------------ generated stores, every engine pair


def test_balances_add_up_on_a_simulated_vendor_store(pair, make_store, tmp_path):
    """A generated OPUS store and a faulty vendor migration of it (synth.simulate), on every
    engine pairing: every live record and every CRIME_NOM link is accounted for exactly once,
    every row is explained, and the days the simulator lost whole are the days reported."""
    from synth.generate import generate
    from synth.simulate import DefectRates, simulate
    from synth.truth import load_truth, score_explanations, score_lost_days

    legacy_backend, target_backend = pair
    legacy = make_store(legacy_backend, "rows_legacy")
    target = make_store(target_backend, "rows_target")
    generate(legacy, crimes=1500, seed=5)
    truth = tmp_path / "truth.json"
    simulate(legacy, target, seed=3, truth_path=truth, rates=DefectRates(lost_day=0.05))
    result = reconcile(legacy, target, ReconcileOptions(batch_size=400))
    paths = write_reconciliation_reports(result, tmp_path / "out")
    for name, balance in result.balances.items():
        assert balance.adds_up, (name, balance)
        assert balance.live == result.totals[name].legacy_total > 0
    links = result.balances["crime_person"]
    assert links.not_expected and links.not_compared  # orphans, repeats, links of lost crimes
    explained_rows = score_explanations(truth, paths["discrepancies"])
    assert explained_rows["rows_without_explanation"] == 0
    wrong = {c: t for c, t in explained_rows["by_cause"].items()
             if t["detail_right"] < t["reported"] or t["explanation_right"] < t["reported"]}
    assert not wrong
    days = score_lost_days(truth, paths["discrepancies"], result.missing_by_day(minimum=1), minimum=1)
    assert load_truth(truth).lost_days and days["expected"]
    assert set(days["expected"]) <= set(days["reported"])  # a day lost whole is reported (scattered
    # losses may also empty a day of one or two crimes: hence MIN_LOST_DAY by default)
