"""Unkeyed matching (reconcile/similarity.py): blocking, scoring, bands, one-to-one assignment."""

from __future__ import annotations

import datetime as dt

import pytest

from reconcile import similarity
from reconcile.similarity import AUTO, REVIEW, candidate_pairs, make_record, match, pair_weights, score_of

UTC = dt.timezone.utc
T0 = dt.datetime(2018, 6, 15, 13, 30, tzinfo=UTC)


def crime(ref, when=T0, *, code="28E", group="Burglary", postcode="M1 5QA", address="12 OXFORD ROAD, MANCHESTER",
          e=384000, n=397500, people=(("SMITH", "JOHN"),), text="SIDE WINDOW SMASHED, SATNAV TAKEN FROM DASHBOARD"):
    return make_record(ref, recorded_at=when, offence_code=code, offence_group=group, postcode=postcode,
                       address=address, easting=e, northing=n, people=people, text=text)


def test_identical_record_is_auto():
    [pair] = match([crime("CR/000001/18")], [crime("CRI-2019-900001")])
    assert (pair.legacy_ref, pair.new_ref, pair.band) == ("CR/000001/18", "CRI-2019-900001", AUTO)
    assert pair.score > 99


def test_rekeyed_with_typing_slips_is_auto():
    legacy = [crime("CR/000001/18"), crime("CR/000002/18", T0 + dt.timedelta(days=2), address="4 DEANSGATE",
                                          postcode="M3 2BW", e=383500, n=398400, people=(("JONES", "MARY"),),
                                          text="PUSH BIKE TAKEN FROM HALLWAY")]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(minutes=23), address="12 OXFROD ROAD, MANCHESTER",
                 postcode="M1 5AQ", code="28F")]  # time, address typo, postcode transposed, other code of the group
    [pair] = match(legacy, new)
    assert pair.legacy_ref == "CR/000001/18" and pair.band == AUTO


def test_ambiguous_candidates_go_to_review():
    # Two legacy crimes identical in every compared field: the new one could be either.
    legacy = [crime("CR/000001/18"), crime("CR/000002/18")]
    [pair] = match(legacy, [crime("CRI-2019-900001")])
    assert pair.band == REVIEW and pair.score >= 90  # high score, but not clearly ahead of the runner-up


def test_one_to_one_assignment():
    legacy = [crime("CR/000001/18")]
    new = [crime("CRI-2019-900001"), crime("CRI-2019-900002", T0 + dt.timedelta(minutes=5))]
    pairs = match(legacy, new)
    assert len(pairs) == 1  # a legacy record is paired at most once
    assert pairs[0].new_ref == "CRI-2019-900001"  # the better of the two


def test_busy_premises_different_people_is_not_a_match():
    shop = dict(address="ARNDALE CENTRE, MARKET STREET", postcode="M4 3AQ", e=384200, n=398600, code="46",
                group="Theft offences")
    legacy = [crime(f"CR/00000{i}/18", T0 + dt.timedelta(hours=i), people=((f"NAME{i}X", "A"),),
                    text=f"SHOPLIFTING ITEM {i} LEFT WITHOUT PAYING", **shop) for i in range(1, 6)]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(hours=3, minutes=40), people=(("GREEN", "PETER"),),
                 text="CUSTOMER PURSE TAKEN FROM TROLLEY WHILE SHOPPING", **shop)]
    assert not [p for p in match(legacy, new) if p.band == AUTO]


def test_outside_the_date_window_is_never_a_candidate():
    legacy = [crime("CR/000001/18")]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(days=8))]
    assert candidate_pairs(legacy, new) == []
    assert match(legacy, new) == []
    assert candidate_pairs(legacy, [crime("CRI-2019-900002", T0 - dt.timedelta(days=6))]) == [(0, 0)]


def test_unrelated_new_crime_has_no_pair():
    legacy = [crime("CR/000001/18")]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(days=1), code="105A", group="Violence against the person",
                 postcode="BL1 1AA", address="1 BRADSHAWGATE, BOLTON", e=371800, n=409000, people=(("PATEL", "RAJ"),),
                 text="ASSAULT OUTSIDE PUBLIC HOUSE")]
    assert match(legacy, new) == []


def test_blocks_are_capped_to_the_nearest_in_time():
    # 100 legacy crimes share the postcode and offence code; only the cap nearest in time are paired.
    legacy = [crime(f"CR/{i:06d}/18", T0 + dt.timedelta(minutes=30 * i), people=(), text=None, address=None, e=None,
                    n=None) for i in range(100)]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(minutes=30 * 50), people=(), text=None, address=None, e=None,
                 n=None)]
    pairs = candidate_pairs(legacy, new, cap=10)
    indexes = sorted(i for i, _ in pairs)
    assert len(indexes) <= 20  # at most the cap per block key (postcode; outward+group; offence code)
    assert 50 in indexes


def test_thresholds_decide_the_bands():
    legacy = [crime("CR/000001/18")]
    new = [crime("CRI-2019-900001", T0 + dt.timedelta(hours=20), text="SOMETHING QUITE DIFFERENT HAPPENED HERE",
                 people=(("SMYTHE", "JON"),))]
    [pair] = match(legacy, new, auto_threshold=100, review_threshold=0)
    assert pair.band == REVIEW
    assert match(legacy, new, auto_threshold=100, review_threshold=100) == []
    [pair] = match(legacy, new, auto_threshold=pair.score, review_threshold=0)
    assert pair.band == AUTO


def test_score_scale():
    assert score_of(similarity.OFFSET) == pytest.approx(50)
    assert score_of(similarity.OFFSET + 10) > 99.9
    assert score_of(-100) == 0.0


def test_weights_reward_agreement_field_by_field():
    base = crime("CR/000001/18")
    variants = {
        "same": crime("N1"),
        "other_place": crime("N2", postcode="BL1 1AA", address="1 BRADSHAWGATE, BOLTON", e=371800, n=409000),
        "other_people": crime("N3", people=(("PATEL", "RAJ"),)),
        "other_text": crime("N4", text="ASSAULT OUTSIDE PUBLIC HOUSE"),
        "other_day": crime("N5", T0 + dt.timedelta(days=5)),
    }
    names = list(variants)
    weights = dict(zip(names, pair_weights([base], [variants[n] for n in names], [(0, j) for j in range(len(names))])))
    assert all(weights["same"] > weights[n] for n in names if n != "same")


def test_records_without_a_date_are_never_paired():
    legacy = [make_record("CR/000001/18", recorded_at=None, offence_code="28E", postcode="M1 5QA")]
    assert match(legacy, [crime("CRI-2019-900001")]) == []
