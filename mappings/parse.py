"""Parsing and normalising legacy OPUS values (``mapping.md``, "Normalisation" and "Dates and times").

Every function here is total: it accepts *any* value a legacy row can hold (None, str with
padding or control characters, int, Decimal, bytes, very long text) and never raises.

Parse results distinguish three outcomes without exceptions:

* a value (``datetime.date``, an ``int`` minute of day, an aware UTC ``datetime``, a ``str``),
* ``UNKNOWN`` — the legacy field says "not known" (blank/NULL, ``00/00/0000``, ``00000000``),
* ``INVALID`` — the legacy field holds something that is not an accepted form.

``UNKNOWN`` and ``INVALID`` are singletons; test them with ``is``. Both are falsy so
``if value:`` reads naturally, but prefer the explicit identity test in mapping code.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from core.schema import as_utc

__all__ = [
    "UNKNOWN", "INVALID", "LONDON", "UTC",
    "text", "trim", "collapse", "is_blank", "code", "upper_or_none", "is_deleted",
    "parse_date", "parse_time", "local_to_utc", "parse_local_datetime", "parse_last_upd",
    "pivot_year", "normalise_postcode", "normalise_pnc", "clean_multiline", "parse_int",
    "local_date", "to_utc_second", "parse_legacy_ref", "parse_nom_id",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):  # pickling keeps the singleton (multiprocessing, caches)
        return self._name


#: The legacy field says the value is not known (blank, NULL, ``00/00/0000``, ``00000000``).
UNKNOWN = _Sentinel("UNKNOWN")
#: The legacy field holds something that is not an accepted form (or an impossible date).
INVALID = _Sentinel("INVALID")
#: The type of UNKNOWN and INVALID, for the annotations of other parsing modules.
Sentinel = _Sentinel

#: UK civil time. Module-level: one ZoneInfo for the whole process.
LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc

# ----------------------------------------------------------------------------------- text


def text(value: Any) -> str | None:
    """Any legacy value as ``str`` (None stays None). Never raises.

    Drivers hand us str, but SQLite's type affinity lets an INTEGER column hold text and a
    VARCHAR column hold numbers, and some drivers return bytes: accept them all. Bytes that
    are not UTF-8 are shown escaped (``\\xff``), as ``mappings.storable`` rejects them.
    """
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    try:
        return str(value)
    except Exception:  # a hostile __str__; nothing in a real row, but stay total
        return None


def trim(value: Any) -> str | None:
    """*trim*: strip leading/trailing white space (Unicode white space, as ``str.strip``)."""
    if type(value) is str:
        return value.strip()
    s = text(value)
    return None if s is None else s.strip()


def collapse(value: Any) -> str | None:
    """*trim* + *collapse*: runs of white space become one space; blank → None."""
    s = value if type(value) is str else text(value)
    if s is None:
        return None
    s = " ".join(s.split())
    return s or None


def is_blank(value: Any) -> bool:
    """*blank*: NULL, or empty after trim."""
    s = value if type(value) is str else text(value)
    return s is None or not s.strip()


def code(value: Any) -> str | None:
    """A code for look-up: trimmed, upper case; blank → None."""
    if type(value) is str:  # the usual case, kept to one line: this runs ~10 times a row
        return value.strip().upper() or None
    s = text(value)
    return None if s is None else s.strip().upper() or None


# Trimmed, upper-case free codes (OIC, BEAT, ETH_CODE, OFFICER) follow the same rule.
upper_or_none = code


def is_deleted(value: Any) -> bool:
    """``DEL_FLAG = 'Y'`` after trim/upper; anything else (N, blank, NULL, junk) is live."""
    return code(value) == "Y"


def parse_int(value: Any) -> int | None:
    """An integer key or coordinate from int, integral float/Decimal or digit text; else None."""
    if value is None or isinstance(value, bool):
        return None
    if type(value) is int:
        return value
    if isinstance(value, int):
        return int(value)
    s = text(value)
    if s is None:
        return None
    s = s.strip()
    if _INT_RE.fullmatch(s):
        return int(s)
    if _DECIMAL_RE.fullmatch(s):  # '384376.0' from a REAL-affinity column: integral only
        whole, _, frac = s.partition(".")
        if frac.strip("0") == "" and whole not in ("", "+", "-"):
            return int(whole)
    return None


_INT_RE = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?[0-9]{0,18}\.[0-9]{0,18}", re.ASCII)

# ---------------------------------------------------------------------------------- dates

# ASCII digits only: ``\d`` would accept Arabic-Indic and other Unicode digits.
_DMY4 = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})", re.ASCII)
_DMY2 = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{2})", re.ASCII)
_YMD = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})", re.ASCII)
_UNKNOWN_DATES = frozenset({"", "00/00/0000", "00000000"})


def pivot_year(yy: int) -> int:
    """Two-digit year: 00–49 → 20yy, 50–99 → 19yy (``opus-legacy.md``)."""
    return 2000 + yy if yy < 50 else 1900 + yy


def parse_date(value: Any) -> dt.date | _Sentinel:
    """A legacy date: ``DD/MM/YYYY``, ``DD/MM/YY`` (pivot 50), ``YYYYMMDD``.

    ``UNKNOWN`` for blank/NULL, ``00/00/0000`` and ``00000000``; ``INVALID`` for any other form
    or an impossible calendar date (``31/02/2015``, ``00/13/2011``).

    Ambiguity: ``00/00/00`` (the short form of the unknown marker) is not listed as unknown
    in mapping.md, so it is INVALID — a DOB or review date holding it is warned about, not
    silently dropped.
    """
    s = text(value)
    if s is None:
        return UNKNOWN
    s = s.strip()
    return _parse_date_text(s) if len(s) <= 16 else INVALID


@lru_cache(maxsize=1 << 16)
def _parse_date_text(s: str) -> dt.date | _Sentinel:
    if s in _UNKNOWN_DATES:
        return UNKNOWN
    m = _DMY4.fullmatch(s)
    if m:
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _DMY2.fullmatch(s)
        if m:
            day, month, year = int(m[1]), int(m[2]), pivot_year(int(m[3]))
        else:
            m = _YMD.fullmatch(s)
            if not m:
                return INVALID
            year, month, day = int(m[1]), int(m[2]), int(m[3])
    try:
        return dt.date(year, month, day)
    except ValueError:  # 31/02, month 13, day 0, year 0000
        return INVALID


# ---------------------------------------------------------------------------------- times

_HHMM = re.compile(r"([0-9]{2})([0-9]{2})", re.ASCII)
_H_MM = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
MIDNIGHT_END = 24 * 60  # '2400': 00:00 on the next day


def parse_time(value: Any) -> int | _Sentinel:
    """A legacy time as minutes after local midnight (0–1439, or 1440 for ``2400``).

    Forms ``HHMM``, ``H:MM``, ``HH:MM``. ``UNKNOWN`` for blank (callers use 00:00);
    ``INVALID`` for anything else (``2515``, ``12.30``, ``930``).

    Ambiguity: ``24:00`` is read as ``2400`` (the same instant written in the HH:MM form);
    any other hour 24 (``2401``) is invalid.
    """
    s = text(value)
    if s is None:
        return UNKNOWN
    s = s.strip()
    return _parse_time_text(s) if len(s) <= 8 else INVALID


def _parse_time_text(s: str) -> int | _Sentinel:
    if not s:
        return UNKNOWN
    m = _HHMM.fullmatch(s) or _H_MM.fullmatch(s)
    if not m:
        return INVALID
    hour, minute = int(m[1]), int(m[2])
    if hour == 24 and minute == 0:
        return MIDNIGHT_END
    if hour > 23 or minute > 59:
        return INVALID
    return hour * 60 + minute


# ------------------------------------------------------------------------- local time → UTC


def local_to_utc(day: dt.date, minutes: int = 0, seconds: int = 0) -> dt.datetime | _Sentinel:
    """UK civil date + time → aware UTC instant (``Europe/London``, ``fold=0``).

    fold=0 resolves the autumn repeated hour to its first (BST) occurrence and moves a
    spring-gap time forward by the hour (01:30 GMT-intended = 02:30 BST = 01:30 UTC).
    ``INVALID`` only if the instant falls outside the datetime range (year 1 / 9999 edges).
    """
    try:
        naive = dt.datetime(day.year, day.month, day.day) + dt.timedelta(minutes=minutes, seconds=seconds)
    except (OverflowError, ValueError):
        return INVALID
    return _naive_london_to_utc(naive)


def _naive_london_to_utc(naive: dt.datetime) -> dt.datetime | _Sentinel:
    """A naive UK civil time → aware UTC, exactly as ``naive.replace(tzinfo=LONDON)
    .astimezone(UTC)`` (fold=0) but ~10x faster: on the ~363 days a year with no clock change
    the offset is one constant, looked up once per day, and the aware value is made by
    arithmetic from the epoch (``datetime.replace`` costs several times a constructor).
    Transition days take zoneinfo's own path."""
    try:
        offset = _steady_offset(naive.year, naive.month, naive.day)
        if offset is not None:
            return _UTC_EPOCH + (naive - _NAIVE_EPOCH - offset)
        return naive.replace(tzinfo=LONDON).astimezone(UTC)
    except (OverflowError, ValueError):
        return INVALID


_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


@lru_cache(maxsize=1 << 16)
def _steady_offset(year: int, month: int, day: int) -> dt.timedelta | None:
    """London's UTC offset on a civil day when it is the same all day; None on the days the
    clocks change (the UK has never changed them twice in one day)."""
    start = dt.datetime(year, month, day, tzinfo=LONDON).utcoffset()
    end = dt.datetime(year, month, day, 23, 59, 59, tzinfo=LONDON).utcoffset()
    return start if start == end else None


def parse_local_datetime(
    date_value: Any, time_value: Any
) -> tuple[dt.datetime | _Sentinel, str | None, dt.date | None]:
    """A legacy date + time pair in UK civil time → ``(instant, fault, local_day)``.

    * ``instant``: aware UTC datetime, or ``UNKNOWN`` (date unknown, whatever the time), or
      ``INVALID``;
    * ``fault``: the part at fault, ``"date"`` or ``"time"`` (``"date"`` also for UNKNOWN),
      None when fine. A valid date with an invalid time is INVALID/"time";
    * ``local_day``: the UK civil date of the instant (``31/03/2017 2400`` → 2017-04-01),
      None unless valid. Unknown time → 00:00.
    """
    # Not cached as a pair: their pairs hardly repeat (measured on a 1M-crime store, 5% hits;
    # a miss of a 131,072-entry lru_cache cost more, 6.7 µs, than working the pair out). The
    # date and the time are cached each, by their text as stored (_day, _minutes).
    d = date_value if type(date_value) is str else text(date_value)
    t = time_value if type(time_value) is str else text(time_value)
    return _pair(d, t)


def _pair(d: str | None, t: str | None) -> tuple[dt.datetime | _Sentinel, str | None, dt.date | None]:
    day = _DAYS.get(d)
    if day is None:
        day = _day(d)
    if day is UNKNOWN:
        return UNKNOWN, "date", None
    if day is INVALID:
        return INVALID, "date", None
    minutes = _MINUTES.get(t)
    if minutes is None:
        minutes = _minutes(t)
    if minutes is INVALID:
        return INVALID, "time", None
    if minutes is UNKNOWN:
        minutes = 0
    date, midnight = day
    if midnight is not None and minutes < MIDNIGHT_END:
        # A day with one UTC offset all day (all but two a year): its local midnight in UTC
        # plus the minutes — the same instant as the general path below, in one addition.
        return midnight + _DELTAS[minutes], None, date
    try:
        naive = dt.datetime(date.year, date.month, date.day) + dt.timedelta(minutes=minutes)
    except OverflowError:  # 31/12/9999 2400
        return INVALID, "date", None
    instant = _naive_london_to_utc(naive)
    if instant is INVALID:
        return INVALID, "date", None
    # The gap (01:00-02:00 local) never crosses midnight, so the naive date is the civil date.
    return instant, None, naive.date()


#: Caches of ``_pair`` by the text as stored (untrimmed; None too): a date → ``(date, UTC
#: instant of its local midnight, or None on a day the clocks change)`` or a sentinel; a time
#: → its minutes or a sentinel. Dates and times repeat (a few thousand days, 1,441 minutes),
#: and a dict look-up costs a fraction of trimming and parsing again. Bounded: cleared when full.
_DAYS: dict = {}
_MINUTES: dict = {}
_CACHED_TEXT = 32  # longer text is parsed, not remembered
_CACHE_LIMIT = 1 << 16
_DELTAS = tuple(dt.timedelta(minutes=m) for m in range(MIDNIGHT_END))


def _day(d: str | None):
    date = parse_date(d)
    day = date
    if type(date) is dt.date:
        try:
            steady = _steady_offset(date.year, date.month, date.day) is not None
        except (OverflowError, ValueError):  # the first or last days a datetime holds
            steady = False
        midnight = _naive_london_to_utc(dt.datetime(date.year, date.month, date.day)) if steady else INVALID
        day = (date, None if midnight is INVALID else midnight)  # None: the general path
    return _remembered(_DAYS, d, day)


def _minutes(t: str | None):
    return _remembered(_MINUTES, t, parse_time(t))


def _remembered(cache: dict, stored: str | None, value):
    """``value``, remembered in ``cache`` for the ``stored`` text unless that is long (a full
    cache is emptied first)."""
    if stored is None or len(stored) <= _CACHED_TEXT:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[stored] = value
    return value


def parse_last_upd(value: Any) -> dt.datetime | _Sentinel:
    """``LAST_UPD`` ``YYYYMMDDHHMMSS`` in UK local time → aware UTC; UNKNOWN if blank or all
    zeros; INVALID for any other form or impossible date/time (hour 24, second 60).
    Callers treat UNKNOWN and INVALID alike (fall back), and no warning exists for it."""
    s = value if type(value) is str else text(value)
    if s is None:
        return UNKNOWN
    s = s.strip()
    # isascii() first: isdigit() alone accepts other scripts' digits and superscripts.
    if len(s) != 14 or not s.isascii() or not s.isdigit():
        return UNKNOWN if not s else INVALID
    if s == "00000000000000":
        return UNKNOWN
    hour, minute, second = int(s[8:10]), int(s[10:12]), int(s[12:14])
    if hour > 23 or minute > 59 or second > 59:
        return INVALID
    try:
        naive = dt.datetime(int(s[0:4]), int(s[4:6]), int(s[6:8]), hour, minute, second)
    except ValueError:  # impossible calendar date
        return INVALID
    return _naive_london_to_utc(naive)


def to_utc_second(value: dt.datetime) -> dt.datetime:
    """An aware instant as UTC with microsecond 0 (naive input is taken as UTC)."""
    return as_utc(value).replace(microsecond=0)


def local_date(instant: dt.datetime) -> dt.date:
    """The UK civil date of an aware instant."""
    return instant.astimezone(LONDON).date()


# ------------------------------------------------------------------------------- postcode

_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}", re.ASCII)


def normalise_postcode(value: Any) -> str | _Sentinel:
    """Upper-case, remove all spaces, one space before the last 3 characters, then require
    ``^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$``. Blank → UNKNOWN; not matching → INVALID.

    Ambiguity: "remove all spaces" removes any white space (tabs, no-break spaces).
    """
    s = value if type(value) is str else text(value)
    if s is None:
        return UNKNOWN
    # Not cached: on a 1M-crime store only 26% of postcodes repeat within 65,536 look-ups, and
    # the cache made a call cost 3.4 µs against 1.9 µs without it (measured).
    return _postcode(s)


def _postcode(s: str) -> str | _Sentinel:
    s = "".join(s.split())
    if len(s) > 16:
        return INVALID
    s = s.upper()
    if not s:
        return UNKNOWN
    if len(s) < 5:
        return INVALID
    s = f"{s[:-3]} {s[-3:]}"
    return s if _POSTCODE.fullmatch(s) else INVALID



# ------------------------------------------------------------------------------------ PNC

_PNC = re.compile(r"[0-9]{2}/[0-9]{1,7}[A-Z]", re.ASCII)


def normalise_pnc(value: Any) -> str | _Sentinel:
    """PNC id trimmed, upper case, matching ``^[0-9]{2}/[0-9]{1,7}[A-Z]$``.
    Blank → UNKNOWN; not matching → INVALID."""
    s = text(value)
    if s is None:
        return UNKNOWN
    s = s.strip()
    if not s:
        return UNKNOWN
    if len(s) > 13:  # the longest valid id is 11 characters
        return INVALID
    s = s.upper()
    return s if _PNC.fullmatch(s) else INVALID


# ------------------------------------------------------------------------ multiline text

_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")


def clean_multiline(value: Any) -> str | None:
    """Free text (MO_TEXT, INT_TEXT): trailing white space stripped from every line and
    from the end; line breaks (CRLF, CR, LF) kept as typed; never truncated.
    Blank → None.

    Splitting on the line breaks keeps this linear: a regex with a look-ahead for the line
    end backtracks quadratically on long runs of spaces.
    """
    s = value if type(value) is str else text(value)
    if s is None:
        return None
    if "\r" in s:
        parts = _LINE_BREAK.split(s)
        # even indexes are line bodies, odd indexes the separators between them
        parts[0::2] = [p.rstrip() for p in parts[0::2]]
        s = "".join(parts)
    elif "\n" in s:
        s = "\n".join([line.rstrip() for line in s.split("\n")])
    s = s.rstrip()
    return s or None


# ----------------------------------------------------------------------- legacy references

_LEGACY_REF = re.compile(r"([A-Z]{2})/([0-9]{6})/([0-9]{2})", re.ASCII)


def parse_legacy_ref(trimmed: str | None, prefix: str) -> tuple[int, str] | _Sentinel:
    """``CR/004512/19`` (prefix ``CR``) → ``(2019, "004512")``; anything else → INVALID.

    Ambiguity: the reference must have the form exactly after trim — ``cr/004512/19`` is not
    upper-cased into shape (mapping.md applies upper-casing to code look-ups only, and
    the legacy key, ids and links all use the trimmed text as it is).
    """
    if not trimmed or len(trimmed) != 12:
        return INVALID
    m = _LEGACY_REF.fullmatch(trimmed)
    if not m or m[1] != prefix:
        return INVALID
    return pivot_year(int(m[3])), m[2]


#: The range of the target's ``int`` columns (PostgreSQL/MariaDB INTEGER).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def parse_nom_id(value: Any) -> int | None:
    """A ``NOM_ID`` / ``SUBJ_NOM_ID``: a whole number that fits the target's INTEGER; else None."""
    number = parse_int(value)
    if number is None or not INT32_MIN <= number <= INT32_MAX:
        return None
    return number
