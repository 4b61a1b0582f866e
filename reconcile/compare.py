"""Field comparison: what counts as a difference between the mapped value and the new one.

Rules of ``reconciliation.md`` ("Comparing fields") live here and only here:

* names, addresses and free text (``TEXT`` and ``SECRET``): case-only and white-space-only
  differences are not differences (both sides are collapsed and case-folded). A new value
  that is a proper prefix of the expected one is reported with detail ``TRUNCATED``.
* timestamps (``INSTANT``): equal to the minute is equal — both sides are truncated to the
  minute (the expected value always has whole minutes: OPUS times are ``HHMM``). A difference
  of a whole number of hours is reported as ``OFFSET_<n>H``, ``n`` signed and equal to
  new − expected: ``OFFSET_1H`` when the new store is one hour *later* than the mapping
  (the classic mistake of storing UK summer time as if it were UTC), ``OFFSET_-1H`` when earlier.
* latitude/longitude (``COORD``): within 0.00001° is equal.
* everything else (``EXACT``): codes, numbers, dates, booleans compare by value.

Extra details an auditor can act on (not required by the spec, never hiding a difference):
``ENCODING`` when the new text is the expected text mis-decoded (UTF-8 read as Latin-1 /
cp1252, or non-ASCII letters replaced by ``?``), ``UNICODE_FORM`` when the two differ only in
Unicode normalisation (composed vs decomposed accents).

Intelligence text (``SECRET``) is compared like free text, but every value written out is a
fingerprint (``core.digest.text_fingerprint``): never the text.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from core.schema import as_utc
from core.digest import canonical, text_fingerprint
from mappings.explanations import explain

EXACT = "exact"
TEXT = "text"
SECRET = "secret"  # intelligence text: compared as free text, shown only as fingerprints
INSTANT = "instant"
COORD = "coord"

#: Latitude/longitude tolerance of reconciliation.md, in degrees (inclusive); the tiny extra
#: absorbs binary floating point (0.1 + 0.2 style) so exactly 0.00001 apart counts as equal.
COORD_TOLERANCE = 0.00001 + 1e-9


@dataclass(frozen=True)
class FieldRule:
    """One compared field: its report name, how it compares, and the legacy columns it comes from."""

    name: str  # as reported: 'recorded_at', 'location.postcode'
    kind: str
    sources: tuple[str, ...] = ()  # lower-case legacy columns, shown as legacy_value

    def legacy_value(self, raw: Mapping[str, Any]) -> str | None:
        """The raw legacy value(s) this field is mapped from, as text (unchanged, padding kept).

        One column → its value; several → ``COL=value`` pairs joined by ``; `` (e.g.
        ``REC_DATE=01/02/2019; REC_TIME=1230``) so a reader sees which column held what.
        """
        if not self.sources:
            return None
        if self.kind == SECRET:
            return text_fingerprint(_text(raw.get(self.sources[0])))
        if len(self.sources) == 1:
            return _text(raw.get(self.sources[0]))
        return "; ".join(f"{c.upper()}={_text(raw.get(c)) or ''}" for c in self.sources)

    def shown(self, value: Any) -> str | None:
        """How a mapped or stored value is written in the report."""
        if self.kind == SECRET:
            return text_fingerprint(value if value is None else str(value))
        return canonical(value)


@dataclass(frozen=True)
class FieldDiff:
    rule: FieldRule
    expected: Any
    actual: Any
    detail: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# ----------------------------------------------------------------------------- per kind


def fold_text(value: Any) -> str:
    """Collapsed white space, case-folded: the form in which case/space differences vanish."""
    return " ".join(str(value).split()).casefold()


def _text_detail(expected: Any, actual: Any) -> tuple[bool, str | None]:
    if expected is None or actual is None:
        # A blank text and NULL are the same absence: mapping.md maps blank to NULL, and a
        # store that keeps '' for "no address" has lost nothing.
        e_blank = expected is None or not str(expected).strip()
        a_blank = actual is None or not str(actual).strip()
        return (True, None) if e_blank and a_blank else (False, None)
    e, a = fold_text(expected), fold_text(actual)
    if e == a:
        return True, None
    if a and len(a) < len(e) and e.startswith(a):
        return False, "TRUNCATED"
    if unicodedata.normalize("NFC", e) == unicodedata.normalize("NFC", a):
        return False, "UNICODE_FORM"
    if _misencoded(str(expected), str(actual)):
        return False, "ENCODING"
    return False, None


def _misencoded(expected: str, actual: str) -> bool:
    if expected.isascii():
        return False
    raw = expected.encode("utf-8")
    for codec in ("latin-1", "cp1252"):
        try:
            if fold_text(raw.decode(codec)) == fold_text(actual):
                return True
        except UnicodeDecodeError:
            continue
    replaced = "".join(ch if ch.isascii() else "?" for ch in expected)
    return fold_text(replaced) == fold_text(actual)


def _minute(value: dt.datetime) -> dt.datetime:
    # as_utc: a naive instant from a foreign store is taken as UTC
    return as_utc(value).replace(second=0, microsecond=0)


def _instant_detail(expected: Any, actual: Any) -> tuple[bool, str | None]:
    if expected is None or actual is None:
        return expected is None and actual is None, None
    if not isinstance(expected, dt.datetime) or not isinstance(actual, dt.datetime):
        return canonical(expected) == canonical(actual), None
    delta = _minute(actual) - _minute(expected)
    if not delta:
        return True, None
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return False, f"OFFSET_{seconds // 3600}H"
    return False, None


def _coord_equal(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    try:
        e, a = float(expected), float(actual)
    except (TypeError, ValueError):
        return False
    return math.isfinite(a) and abs(e - a) <= COORD_TOLERANCE


def _exact_equal(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return _as_bool(expected) == _as_bool(actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    if isinstance(expected, dt.datetime) or isinstance(actual, dt.datetime):
        return canonical(_aware(expected)) == canonical(_aware(actual))
    if isinstance(expected, dt.date) and isinstance(actual, dt.date):
        return expected == actual
    return canonical(expected) == canonical(actual)


def _as_bool(value: Any):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "y", "yes")
    return bool(value)


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return as_utc(value)
    return value


def compare_value(kind: str, expected: Any, actual: Any) -> tuple[bool, str | None]:
    """(equal?, detail) for one field of one record."""
    if expected == actual and type(expected) is type(actual):
        return True, None  # the common case, decided without any normalisation
    if kind in (TEXT, SECRET):
        return _text_detail(expected, actual)
    if kind == INSTANT:
        return _instant_detail(expected, actual)
    if kind == COORD:
        return _coord_equal(expected, actual), None
    return _exact_equal(expected, actual), None


def diff_fields(rules: Sequence[FieldRule], expected: Sequence[Any], actual: Sequence[Any]) -> list[FieldDiff]:
    """The fields in which ``actual`` differs from ``expected`` (values in ``rules`` order)."""
    if len(expected) == len(actual) and all(map(operator.eq, expected, actual)):
        return []  # the common case: Python equality implies equality under every rule here
    diffs = []
    for rule, e, a in zip(rules, expected, actual, strict=True):
        if e is a or (e == a and type(e) is type(a)):
            continue
        equal, detail = compare_value(rule.kind, e, a)
        if not equal:
            diffs.append(FieldDiff(rule, e, a, detail))
    return diffs


# ----------------------------------------------------------------------------- explaining
#
# What the tool can say about a difference, beyond "it differs": one rule per kind, each in
# one place below. Record-level rules (a swap of latitude and longitude, a wrong offence) see
# every differing field of the record and explain its rows together; the others see one field.
# The ``detail`` is the machine-readable code, the explanation the plain English of the one
# table (``mappings.explanations``) with the values that make it concrete. Intelligence text
# never appears in an explanation: only lengths.

#: How a timestamp field is named in a sentence.
_WHAT = {"recorded_at": "recorded time", "submitted_at": "submitted time",
         "committed_from": "committed-from time", "committed_to": "committed-to time"}
#: The offence columns that follow the Home Office code (mapping.md): explained as one change.
OFFENCE_FIELDS = ("ho_offence_code", "offence_description", "offence_group", "police_uk_category")
#: 3x5x2 grading columns, each mapped from one 5x5x5 column.
GRADING_FIELDS = frozenset({"source_evaluation", "intelligence_assessment", "handling_code"})
#: Names, where a difference of one letter is a misspelling rather than another name.
NAME_FIELDS = frozenset({"family_name", "given_names"})


@dataclass(frozen=True)
class Explained:
    """One differing field with what the tool can say about it."""

    diff: FieldDiff
    detail: str | None
    explanation: str


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def explain_diffs(diffs: Sequence[FieldDiff], expected: Mapping[str, Any], raw: Mapping[str, Any],
                  reference) -> list[Explained]:
    """Each of one record's differing fields with its ``detail`` and explanation.

    ``expected``: the record's mapped values by field name (for rules that need another
    field, e.g. the date recorded of a wrong offence); ``raw``: its legacy row; ``reference``:
    the code tables (``mappings.reference.Reference``)."""
    by_name = {d.rule.name: d for d in diffs}
    found: dict[str, tuple[str | None, str]] = {}
    found.update(_latlon_swapped(by_name))
    found.update(_offence_changed(by_name, expected, raw, reference))
    return [Explained(d, *(found.get(d.rule.name) or _field_rule(d, raw, reference))) for d in diffs]


def _latlon_swapped(by_name: Mapping[str, FieldDiff]) -> dict:
    """LATLON_SWAPPED: iOPS's latitude is OPUS's longitude and the other way round (both rows)."""
    lat, lon = by_name.get("location.latitude"), by_name.get("location.longitude")
    if lat is None or lon is None:
        return {}
    if not (_coord_equal(lat.expected, lon.actual) and _coord_equal(lon.expected, lat.actual)):
        return {}
    text = (f"{explain('LATLON_SWAPPED')}: OPUS {_num(lat.expected)}, {_num(lon.expected)}; "
            f"iOPS {_num(lat.actual)}, {_num(lon.actual)}")
    return {"location.latitude": ("LATLON_SWAPPED", text), "location.longitude": ("LATLON_SWAPPED", text)}


def _offence_changed(by_name: Mapping[str, FieldDiff], expected: Mapping[str, Any], raw: Mapping[str, Any],
                     reference) -> dict:
    """A wrong Home Office code, with the description, group and category that follow it, is
    one change: OFFENCE_EXPIRED_CODE when iOPS holds the code the OPUS code had before it
    expired (by the date recorded), else OFFENCE_CHANGED. Every offence row says the same."""
    code_diff = by_name.get("ho_offence_code")
    if code_diff is None or _blank(code_diff.actual) or reference is None:
        return {}
    old, new = str(code_diff.expected), str(code_diff.actual)
    expired = _expired_row(raw, expected, new, reference)
    if expired is not None:
        detail = "OFFENCE_EXPIRED_CODE"
        text = (f"{explain(detail)}: {_offence(reference, new)}, in force until {expired.valid_to.isoformat()}, "
                f"instead of {_offence(reference, old)}")
    else:
        detail = "OFFENCE_CHANGED"
        text = f"{explain(detail)}: {_offence(reference, old)} → {_offence(reference, new)}"
    return {name: (detail, text) for name in OFFENCE_FIELDS if name in by_name}


def _expired_row(raw: Mapping[str, Any], expected: Mapping[str, Any], ho_code: str, reference):
    """The crosswalk row giving ``ho_code`` for this crime's OPUS code that had expired before
    the (UK local) date the crime was recorded, or None."""
    from mappings.parse import code, local_date

    recorded = expected.get("recorded_at")
    if not isinstance(recorded, dt.datetime):
        return None
    day = local_date(as_utc(recorded))
    for row in reference.crosswalk.get(code(raw.get("off_code")) or "", ()):
        if row.ho_code == ho_code and row.valid_to is not None and row.valid_to < day:
            return row
    return None


def _field_rule(d: FieldDiff, raw: Mapping[str, Any], reference) -> tuple[str | None, str]:
    """The rules about one field on its own."""
    name, e, a = d.rule.name, d.expected, d.actual
    secret = d.rule.kind == SECRET
    if d.detail == "TRUNCATED":
        return d.detail, f"{explain(d.detail)} ({len(str(a))} of {len(str(e))} characters kept)"
    if d.detail and d.detail.startswith("OFFSET_"):
        return d.detail, _offset_text(name, d.detail, e, a)
    if d.detail:  # ENCODING, UNICODE_FORM
        return d.detail, explain(d.detail)
    if _blank(a) and not _blank(e):
        return "LOST", explain("LOST") + _described(name, e, None, reference, secret, lost=True)
    if _blank(e) and not _blank(a):
        return "GAINED", explain("GAINED") + ("" if secret else f": {_describe(name, a, reference)}")
    if _day_month_swapped(e, a):
        return "DAY_MONTH_SWAPPED", f"{explain('DAY_MONTH_SWAPPED')}: {e.isoformat()} in OPUS, {a.isoformat()} in iOPS"
    if name in NAME_FIELDS and _one_slip(e, a):
        return "MISSPELT", f"{explain('MISSPELT')}: {e} → {a}"
    if name in GRADING_FIELDS and d.rule.sources and _unconverted(raw.get(d.rule.sources[0]), a):
        return "GRADING_UNCONVERTED", f"{explain('GRADING_UNCONVERTED')}: {a!s} instead of {e!s}"
    return None, explain("CHANGED") + _described(name, e, a, reference, secret)


def _offset_text(name: str, detail: str, expected: Any, actual: Any) -> str:
    """OFFSET_<n>H in words, with both times in UK local time (as a UK reader knows them)."""
    from mappings.describe import uk_local
    from mappings.parse import LONDON

    what = _WHAT.get(name, name)
    n = int(detail[len("OFFSET_"):-1])
    in_bst = isinstance(expected, dt.datetime) and as_utc(expected).astimezone(LONDON).utcoffset() == dt.timedelta(hours=1)
    if n == 1 and in_bst:
        text = explain("OFFSET_BST", what=what)
    else:
        text = explain(detail).replace("time", what, 1)
    return f"{text} (OPUS {uk_local(as_utc(expected))}, iOPS {uk_local(as_utc(actual))}, UK time)"


def _described(name: str, e: Any, a: Any, reference, secret: bool, lost: bool = False) -> str:
    """': expected → new' in the reader's terms (names for codes, UK time for instants)."""
    if secret:
        return ""
    if lost:
        return f": expected {_describe(name, e, reference)}" if name in _DESCRIBED else ""
    if name in _DESCRIBED or isinstance(e, dt.datetime):
        return f": {_describe(name, e, reference)} → {_describe(name, a, reference)}"
    return ""


def _describe(name: str, value: Any, reference) -> str:
    from mappings.describe import district_name, outcome_label, uk_local

    if value is None:
        return "(empty)"
    if isinstance(value, dt.datetime):
        return f"{uk_local(as_utc(value))} UK time"
    base = name.rsplit(".", 1)[-1]
    if reference is not None and base == "district_code":
        return district_name(reference, str(value)) or str(value)
    if reference is not None and base == "outcome_code":
        return f"outcome {outcome_label(reference, value)}"
    return str(value)


#: Fields whose values are codes a reader knows by name (or short values worth repeating).
_DESCRIBED = frozenset({"district_code", "location.district_code", "outcome_code", "status"})


def _offence(reference, ho_code: str) -> str:
    from mappings.describe import offence_text

    return offence_text(reference, ho_code) or ho_code


def _num(value: Any) -> str:
    try:
        return f"{float(value):.5f}"
    except (TypeError, ValueError):
        return str(value)


def _day_month_swapped(e: Any, a: Any) -> bool:
    """DAY_MONTH_SWAPPED: a date whose day and month are the other's month and day."""
    if not (isinstance(e, dt.date) and isinstance(a, dt.date)) or isinstance(e, dt.datetime) \
            or isinstance(a, dt.datetime):
        return False
    return e != a and e.year == a.year and e.day == a.month and e.month == a.day


def _one_slip(e: Any, a: Any) -> bool:
    """One letter changed, added or dropped, or two adjacent letters swapped (folded text)."""
    from rapidfuzz.distance import OSA

    x, y = fold_text(e), fold_text(a)
    return x != y and min(len(x), len(y)) >= 2 and OSA.distance(x, y) == 1


def _unconverted(legacy: Any, actual: Any) -> bool:
    """GRADING_UNCONVERTED: iOPS holds the OPUS 5x5x5 grade itself (trimmed, upper case)."""
    if legacy is None or actual is None:
        return False
    return str(legacy).strip().upper() == str(actual).strip().upper()
