"""Field comparison rules of reconciliation.md ("Comparing fields"), one rule at a time."""

from __future__ import annotations

import datetime as dt

import pytest

from core.digest import text_fingerprint
from reconcile.compare import COORD, EXACT, INSTANT, SECRET, TEXT, FieldRule, compare_value, diff_fields

UTC = dt.timezone.utc
T0 = dt.datetime(2019, 6, 15, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize("expected, actual", [
    ("O'Brien", "O'BRIEN"),  # case only
    ("SMITH-JONES", "smith-jones"),
    ("12 OXFORD ROAD, MANCHESTER", "12  Oxford Road,   Manchester "),  # case + white space
    ("line one\nline two", "line one line two"),  # a line break is white space
    ("MÜLLER", "müller"),  # non-ASCII case folding
    (None, ""),  # blank and NULL are the same absence
    (None, "   "),
])
def test_text_case_and_whitespace_are_not_differences(expected, actual):
    assert compare_value(TEXT, expected, actual) == (True, None)


@pytest.mark.parametrize("expected, actual", [
    ("SMITH", "SMYTH"),
    ("SMITH", None),
    (None, "SMITH"),
    ("O'BRIEN", "OBRIEN"),  # punctuation is content, not white space
])
def test_text_real_differences(expected, actual):
    equal, detail = compare_value(TEXT, expected, actual)
    assert not equal and detail is None


def test_truncated_text_is_a_proper_prefix():
    text = "SIDE WINDOW SMASHED, SATNAV TAKEN FROM THE DASHBOARD"
    assert compare_value(TEXT, text, text[:20]) == (False, "TRUNCATED")
    assert compare_value(TEXT, text, text[:20].lower() + "  ") == (False, "TRUNCATED")  # tolerant prefix
    assert compare_value(TEXT, text, text) == (True, None)  # not proper: equal
    assert compare_value(TEXT, text, text + " MORE") == (False, None)  # longer is not truncated
    assert compare_value(TEXT, text, "") == (False, None)  # emptied is lost, not truncated
    assert compare_value(SECRET, "A" * 300, "A" * 255) == (False, "TRUNCATED")


def test_encoding_and_unicode_form_details():
    assert compare_value(TEXT, "MÜLLER", "MÃœLLER") == (False, "ENCODING")  # UTF-8 read as cp1252
    assert compare_value(TEXT, "NÍ BHRIAIN", "N? BHRIAIN") == (False, "ENCODING")
    assert compare_value(TEXT, "MU\u0308LLER", "MÜLLER") == (False, "UNICODE_FORM")


@pytest.mark.parametrize("delta", [dt.timedelta(0), dt.timedelta(seconds=30), dt.timedelta(seconds=59)])
def test_timestamps_equal_to_the_minute(delta):
    assert compare_value(INSTANT, T0, T0 + delta) == (True, None)


@pytest.mark.parametrize("delta, detail", [
    (dt.timedelta(hours=1), "OFFSET_1H"),
    (dt.timedelta(hours=-1), "OFFSET_-1H"),
    (dt.timedelta(hours=1, seconds=20), "OFFSET_1H"),  # whole hours to the minute
    (dt.timedelta(hours=5), "OFFSET_5H"),
    (dt.timedelta(minutes=17), None),
    (dt.timedelta(seconds=-1), None),  # the previous minute: a difference, not an offset
])
def test_timestamp_differences(delta, detail):
    assert compare_value(INSTANT, T0, T0 + delta) == (False, detail)


def test_timestamp_against_null_and_naive():
    assert compare_value(INSTANT, T0, None) == (False, None)
    assert compare_value(INSTANT, None, None) == (True, None)
    # A naive instant from a foreign store is read as UTC.
    assert compare_value(INSTANT, T0, T0.replace(tzinfo=None)) == (True, None)


@pytest.mark.parametrize("actual, equal", [
    (53.478123, True),
    (53.478123 + 0.000009, True),
    (53.478123 - 0.00001, True),  # the tolerance is inclusive
    (53.478123 + 0.000011, False),
    (53.478223, False),
    (None, False),
])
def test_coordinates_within_a_hundred_thousandth_of_a_degree(actual, equal):
    assert compare_value(COORD, 53.478123, actual)[0] is equal


def test_exact_values():
    assert compare_value(EXACT, 12, 12)[0]
    assert compare_value(EXACT, 12, 12.0)[0]  # a numeric column read back as a float
    assert not compare_value(EXACT, 12, 13)[0]
    assert not compare_value(EXACT, "OPEN", "open")[0]  # codes are exact: case matters
    assert compare_value(EXACT, True, 1)[0]  # MariaDB booleans
    assert not compare_value(EXACT, True, 0)[0]
    assert compare_value(EXACT, dt.date(1980, 2, 1), dt.date(1980, 2, 1))[0]
    assert not compare_value(EXACT, dt.date(1980, 2, 1), dt.date(1980, 1, 2))[0]
    assert not compare_value(EXACT, None, "")[0]


def test_diff_fields_and_report_values():
    rules = (FieldRule("family_name", TEXT, ("surname", "forenames")), FieldRule("recorded_at", INSTANT, ("rec_date", "rec_time")),
             FieldRule("status", EXACT, ("status",)))
    diffs = diff_fields(rules, ["SMITH", T0, "OPEN"], ["smith", T0 + dt.timedelta(hours=1), "FINALISED"])
    assert [(d.rule.name, d.detail) for d in diffs] == [("recorded_at", "OFFSET_1H"), ("status", None)]
    raw = {"surname": "SMITH  ", "forenames": None, "rec_date": "15/06/2019", "rec_time": "1430", "status": "O"}
    assert rules[0].legacy_value(raw) == "SURNAME=SMITH  ; FORENAMES="
    assert rules[1].legacy_value(raw) == "REC_DATE=15/06/2019; REC_TIME=1430"
    assert rules[2].legacy_value(raw) == "O"
    assert rules[1].shown(T0) == "2019-06-15T13:30:00Z"


def test_secret_values_are_only_ever_fingerprints():
    rule = FieldRule("intel_text", SECRET, ("int_text",))
    secret = "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS   "
    shown = [rule.legacy_value({"int_text": secret}), rule.shown(secret.rstrip()), rule.shown("OTHER")]
    assert shown == [text_fingerprint(secret), text_fingerprint(secret.rstrip()), text_fingerprint("OTHER")]
    assert all("PICCADILLY" not in s and s.startswith("sha256:") for s in shown)
    assert rule.shown(None) is None
