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
