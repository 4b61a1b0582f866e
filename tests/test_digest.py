"""The canonical text of values and the row digest: the same instant or number read back
from any engine must give the same text, whatever zone or type the driver returns."""

from __future__ import annotations

import datetime as dt
import decimal
from zoneinfo import ZoneInfo

import pytest

from core.digest import canonical, row_digest

UTC = dt.timezone.utc
LONDON = ZoneInfo("Europe/London")


def test_utc_instant_text():
    assert canonical(dt.datetime(2019, 3, 31, 0, 30, tzinfo=UTC)) == "2019-03-31T00:30:00Z"


@pytest.mark.parametrize("zone", [LONDON, dt.timezone(dt.timedelta(hours=-5)), dt.timezone.utc])
def test_same_instant_in_any_zone_has_one_text(zone):
    instant = dt.datetime(2019, 7, 1, 9, 15, tzinfo=UTC)
    assert canonical(instant.astimezone(zone)) == "2019-07-01T09:15:00Z"


def test_zoned_value_after_a_cached_utc_value_is_still_converted():
    utc = dt.datetime(2031, 7, 1, 9, 15, tzinfo=UTC)  # an instant no other test uses
    assert canonical(utc) == "2031-07-01T09:15:00Z"  # now cached (equal to the zoned value, same hash)
    assert canonical(utc.astimezone(LONDON)) == "2031-07-01T09:15:00Z"


def test_fraction_of_a_second_is_dropped_and_never_served_from_the_cache():
    whole = dt.datetime(2032, 7, 1, 9, 15, 7, tzinfo=UTC)  # an instant no other test uses
    assert canonical(whole) == "2032-07-01T09:15:07Z"
    assert canonical(whole.replace(microsecond=999_999)) == "2032-07-01T09:15:07Z"
    assert canonical(whole.replace(microsecond=1).astimezone(LONDON)) == "2032-07-01T09:15:07Z"


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        canonical(dt.datetime(2019, 7, 1, 9, 15))


def test_memory_stays_flat_over_many_distinct_instants():
    """canonical() remembers recent instants: a million distinct ones must not stay in memory."""
    import tracemalloc

    start = dt.datetime(2000, 1, 1, tzinfo=UTC)
    for minute in range(20_000):  # whatever the cache holds by now, it is full
        value = start + dt.timedelta(minutes=minute)
        assert canonical(value) == value.strftime("%Y-%m-%dT%H:%M:%SZ")
    tracemalloc.start()
    try:
        for minute in range(20_000, 70_000):
            canonical(start + dt.timedelta(minutes=minute))
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 3 << 20  # a full cache is ~1.5 MB; 50,000 instants kept would be ~9 MB


@pytest.mark.parametrize("value, text", [
    (None, None), ("", ""), ("O'Brien", "O'Brien"), (7, "7"), (True, "true"), (False, "false"),
    (1.5, "1.500000"), (decimal.Decimal("53.4808"), "53.480800"), (dt.date(2019, 2, 28), "2019-02-28"),
])
def test_scalar_texts(value, text):
    assert canonical(value) == text


def test_row_digest_ignores_column_order_but_not_null_versus_empty():
    a = {"x": 1, "y": "t", "z": None}
    b = {"z": None, "y": "t", "x": 1}
    assert row_digest(a) == row_digest(b)
    assert row_digest(a) != row_digest({**a, "z": ""})


def test_row_digest_of_named_columns_only():
    row = {"x": 1, "y": "t", "noise": "changes"}
    assert row_digest(row, ["y", "x"]) == row_digest({"x": 1, "y": "t"})


def test_float_read_back_as_decimal_digests_equal():
    assert row_digest({"lat": 53.4808}) == row_digest({"lat": decimal.Decimal("53.4808")})
