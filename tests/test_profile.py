"""The profile judges values as the mapping does and predicts the migration's rejects."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from migrate.engine import migrate
from mappings.parse import INVALID, UNKNOWN, normalise_postcode, parse_date, parse_time
from synth import generate as gen
from synth.profile import BAD_DATE_FORMS, UNKNOWN_DATE_FORMS, classify_date, classify_postcode, classify_time, \
    profile_store

# Digits of other scripts (Arabic-Indic, fullwidth, Devanagari) pass str.isdigit and regex \d:
# the mapping reads ASCII digits only.
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩０１２９०१"
date_like = st.text(alphabet=DIGITS + "/ ", max_size=12)
time_like = st.one_of(st.text(alphabet=DIGITS + ": .", max_size=6),
                      st.sampled_from(["24:00", "2400", "2401", "24:01", "9:30", "09:30", "0930", "930", " 2400 "]))


@given(st.one_of(date_like, st.none(), st.sampled_from(["00/00/0000", "00000000", "31/02/2015", "٠١/٠٢/٢٠١٥"])))
def test_a_date_is_a_date_unknown_or_invalid_exactly_when_the_mapping_says_so(value):
    form, day = classify_date(value)
    parsed = parse_date(value)
    if isinstance(parsed, dt.date):
        assert day == parsed and form in ("DD/MM/YYYY", "DD/MM/YY", "YYYYMMDD")
    else:
        assert day is None
        assert form in (UNKNOWN_DATE_FORMS if parsed is UNKNOWN else BAD_DATE_FORMS), (value, form)


@given(st.one_of(time_like, st.none()))
def test_a_time_is_the_mappings_minute_of_the_day(value):
    form, minute = classify_time(value)
    parsed = parse_time(value)
    if type(parsed) is int:
        assert minute == parsed and form in ("HHMM", "H:MM", "HH:MM", "2400")
    else:
        assert minute is None and form == ("invalid" if parsed is INVALID else "NULL" if value is None else "blank")


@given(st.one_of(st.text(alphabet="M1 6AB\t\u00a0m٣", max_size=10), st.none(),
                 st.sampled_from(["M1\t6AB", "m1\u00a06ab", "M16AB\t", "M1 6AB", "M٣ 6AB"])))
def test_a_postcode_is_invalid_exactly_when_the_mapping_rejects_it(value):
    assert (classify_postcode(value) == "invalid") == (normalise_postcode(value) is INVALID)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('profile') / 'opus.db'}"
    gen.generate(url, crimes=4_000, seed=2024)
    return url


def test_the_predicted_rejects_are_the_migrations_per_entity_and_reason(generated, tmp_path):
    predicted = profile_store(generated, rejects=True).rejects
    result = migrate(generated, f"sqlite:///{tmp_path / 'iops.db'}")
    assert result.state == "complete"
    real = {entity: dict(sorted(c.rejected_by.items())) for entity, c in result.counts.items()}
    assert predicted == real
    assert sum(n for reasons in real.values() for n in reasons.values()) > 0  # the store has rejects to predict
    assert {"crime", "person", "crime_person", "intelligence"} <= predicted.keys()


def test_the_profile_predicts_no_rejects_unless_asked(generated):
    assert profile_store(generated).rejects is None
