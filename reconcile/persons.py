"""Person matching: iOPS persons without a legacy id paired with legacy nominals
(``reconciliation.md``, Matching 3 and 4; issue 20).

Two findings come out of it:

* ``PROBABLE_MATCH`` (entity ``person``): an unkeyed iOPS person probably *is* a live legacy
  nominal left without a keyed counterpart (re-keyed by hand). ``AUTO`` counts the nominal as
  present (its links are then compared through the pair); ``REVIEW`` leaves it ``MISSING``.
* ``PROBABLE_DUPLICATE``: a person entered in iOPS (``source_system = 'IOPS'``, no legacy id)
  is probably a nominal that *was* migrated (keyed): the person's history is split in two.
  ``legacy_ref`` = the migrated nominal's NOM_ID, ``new_ref`` = the iOPS person's person_id.

The method is Fellegi–Sunter record linkage, as Splink does it, in columns:

1. **Blocking** (equality keys, so a million nominals never meet all pairs): the new side's
   keys are indexed (they are few); the legacy side is *streamed* once, its keys made and
   looked up in the index a chunk at a time in numpy. Keys (family "sound" = Soundex of the
   Mc/Mac-, hyphen-, apostrophe- and accent-folded name; "given" = the forenames the first
   given name may stand for, BILL and WM → WILLIAM): sound + date of birth; given + date of
   birth; sound + given + birth year; sound + given + day and month; PNC id; PNC number
   without year and check letter; a nominal OPUS links to a crime or report iOPS links the
   person to. Weak keys (capped lower): sound + year + initial; the family name or any
   spelling one letter deleted (two names one edit apart share one) + year, and + day and
   month; names alone, asymmetric, for a date of birth missing on one side. The new side also
   keys its names swapped and its date with day and month swapped; each part of a
   double-barrelled name keys too. A key shared by more than ``block_cap`` nominals
   (``weak_cap`` for a weak key) is dropped: each key's count runs over the stream, and the
   hits on a key over its cap are dropped as soon as it is (only live hits are held).
2. **Comparison levels** per field (``LEVELS``): family name exact / Mc-Mac, hyphen and space
   folded (or one part of a double-barrelled name) / one edit or Jaro-Winkler >= 0.92 / same
   sound / swapped with the given names / different; given names exact / same first name /
   one's names among the other's / forename variant / one edit or Jaro-Winkler / initial /
   different; date of birth exact / one digit typed wrong (or two adjacent swapped) / day and
   month swapped / year only / unknown on both sides / different; sex; PNC id exact / one
   character / different; links (the nominal is linked in OPUS to a crime or report the iOPS
   person is linked to in iOPS — by legacy_ref, or through an AUTO crime pair). A field empty
   on one side is no evidence (weight 0).
3. **Weights**: ``m`` (each level's chance among true pairs) by expectation-maximisation on
   the blocked pairs, in Splink's sessions (``_em``); ``u`` (among non-matching pairs) from
   random legacy × new pairs; the family name's exact level is term-frequency adjusted (its
   ``u`` = the name's share of the nominals: SMITH agreeing says less than LOMAX agreeing).
   A pair's match weight = the sum of log2(m/u) over fields + the prior log2 odds that a
   random pair of its kind (re-key or duplicate) matches, from EM's count of matches (each
   new person counted once, at its best pair); score = 100 × the match probability.
4. **Bands and assignment**: one-to-one, greedily by descending weight; ``AUTO`` when the score
   reaches ``auto_threshold``, the pair is ``margin`` log2 units ahead of the runner-up of
   either record, and it is not vetoed: none of family name, given names, date of birth and
   PNC id at its worst level ("different": twins, a father and his son are for a person to
   judge), given names not one's first name dropped (a twin named after the other's middle
   name), a date of birth "one digit wrong" not ten or more years out (a parent or child),
   not names alone (a date of birth, a PNC id or a shared crime must agree), sex not
   different, and not all of
   family name, given names and date of birth merely alike (none equal). ``REVIEW``
   from ``review_threshold``, with up to ``review_alternatives`` other candidates of the same
   person within the margin (the reviewer chooses: namesakes without a date of birth are
   alike). Below, no pair.

Each pair carries its explanation (field → level → weight, like Splink's waterfall): the row's
``field`` lists the fields that differ, ``legacy_value``/``new_value`` both sides' name, date
of birth, sex and PNC id (``sides`` reads them back), ``expected_value`` the waterfall.

Everything is held in columns (``array`` and numpy; strings interned once), never a dict per
record: a nominal costs about 35 bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import unicodedata
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from mappings.explanations import explain

AUTO = "AUTO"
REVIEW = "REVIEW"
PROBABLE_MATCH = "PROBABLE_MATCH"
PROBABLE_DUPLICATE = "PROBABLE_DUPLICATE"

_VARIANTS_CSV = Path(__file__).resolve().parent.parent / "mappings" / "forename_variants.csv"

#: Comparison levels per field, best first (level index = position). A field empty on
#: either side has level -1: no evidence.
LEVELS: dict[str, tuple[str, ...]] = {
    "family_name": ("exact", "Mc/Mac, hyphen or spacing", "spelling (one edit or Jaro-Winkler)", "sounds alike",
                    "swapped with given names", "different"),
    "given_names": ("exact", "same first name", "one's names among the other's", "forename variant",
                    "spelling (one edit or Jaro-Winkler)", "initial", "different"),
    "date_of_birth": ("exact", "one digit typed wrong", "day and month swapped", "same year only",
                      "unknown on both sides", "different"),
    "sex": ("same", "different"),
    "pnc_id": ("exact", "one character typed wrong", "different"),
    "links": ("shares a crime or report", "no shared crime or report"),
}
FIELDS = tuple(LEVELS)
F_FAMILY, F_GIVEN, F_DOB, F_SEX, F_PNC, F_LINKS = range(len(FIELDS))
FAM_EXACT, FAM_FOLDED, FAM_JW, FAM_SOUND, FAM_SWAPPED, FAM_ELSE = range(6)
GIV_EXACT, GIV_FIRST, GIV_SUBSET, GIV_VARIANT, GIV_JW, GIV_INITIAL, GIV_ELSE = range(7)
DOB_EXACT, DOB_TYPO, DOB_SWAP, DOB_YEAR, DOB_UNKNOWN, DOB_ELSE = range(6)

#: Starting m probabilities for EM (then estimated from the data).
_M_START = {
    "family_name": (0.86, 0.03, 0.05, 0.02, 0.01, 0.03),
    "given_names": (0.78, 0.06, 0.01, 0.05, 0.04, 0.02, 0.04),
    "date_of_birth": (0.88, 0.03, 0.02, 0.01, 0.02, 0.04),
    "sex": (0.97, 0.03),
    "pnc_id": (0.92, 0.05, 0.03),
    "links": (0.9, 0.1),
}
JW_THRESHOLD = 0.92
_M_FLOOR = 1e-4  # no level is impossible among true pairs
EM_ITERATIONS = 25
RANDOM_PAIRS = 60_000  # legacy × new pairs drawn for u
COMPARE_CHUNK = 200_000  # pairs compared at a time
EM_PAIRS = 1_000_000  # blocked pairs EM trains on, at most (a sample)
HALVES_HELD = 1 << 21  # names' key halves held between chunks, at most (then all are dropped)
LEGACY_CHUNK = 10_000  # legacy nominals whose keys are made and looked up in the index together


@dataclass(frozen=True)
class PersonOptions:
    """Thresholds of the person bands (score = 100 × match probability)."""

    #: At or above (and ``margin`` ahead of the runner-up): the pair counts as the same person.
    #: Set from a precision target: on the simulator's 100,000-crime store (seed 7, 2.5% of
    #: persons re-keyed, 2.5% re-entered, 2.5% look-alikes) AUTO precision was 0.9963 at 90,
    #: 0.9995 at 95 and 1.000 (duplicates) / 0.9995 (re-keys) at 98.
    auto_threshold: float = 98.0
    #: At or above: listed for a person to decide.
    review_threshold: float = 5.0
    margin: float = 3.0  # log2 units (8 times as likely) over the runner-up of either record
    block_cap: int = 250  # legacy nominals per blocking key, at most
    #: … per weak key (an initial, a family name one edit away with half the date, names alone)
    weak_cap: int = 30
    #: Other candidates listed (REVIEW) beside a REVIEW pair, within ``margin`` of it, at most.
    review_alternatives: int = 4


# ------------------------------------------------------------------------- normalising


#: Entries per cache of names and their parts: the names that repeat most stay (a million
#: nominals have a few hundred thousand distinct spellings; caching all cost ~1 GB).
_CACHE = 1 << 16


def clear_caches() -> None:
    """Empty the name caches (after a matching: their memory back)."""
    for cached in (fold, family_key, soundex, canon, _family_parts, _given_parts, _family_bases, _given_bases,
                   _family_level, _given_level):
        cached.cache_clear()


@lru_cache(maxsize=1)
def forename_variants() -> dict[str, frozenset[str]]:
    """variant -> the forenames it stands for (WM, BILL -> {WILLIAM}), read from
    ``mappings/forename_variants.csv`` (FreeREG/FreeCEN rules, Apache-2.0), one step of
    chaining followed (a variant of a variant)."""
    table: dict[str, set[str]] = {}
    with _VARIANTS_CSV.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            variant, forename = fold(row["variant"]), fold(row["forename"])
            if variant and forename and variant != forename:
                table.setdefault(variant, set()).add(forename)
    return {v: frozenset(f | {g for x in f for g in table.get(x, ())}) for v, f in table.items()}


@lru_cache(maxsize=_CACHE)
def fold(value) -> str:
    """Upper case, accents and apostrophes dropped, other non-letters as one space."""
    if not value:
        return ""
    s = unicodedata.normalize("NFKD", str(value).upper())
    out = []
    for ch in s:
        if unicodedata.combining(ch) or ch in "'’`":
            continue
        out.append(ch if ch.isalpha() else " ")
    return " ".join("".join(out).split())


@lru_cache(maxsize=_CACHE)
def family_key(folded: str) -> str:
    """The family name with Mc → Mac and without spaces or hyphens (MC DONALD = MACDONALD)."""
    return "".join(("MAC" + t[2:]) if t.startswith("MC") else t for t in folded.split())


_SOUNDEX = {c: d for d, letters in (("1", "BFPV"), ("2", "CGJKQSXZ"), ("3", "DT"), ("4", "L"), ("5", "MN"),
                                      ("6", "R")) for c in letters}


@lru_cache(maxsize=_CACHE)
def soundex(name: str) -> str:
    """American Soundex of an A–Z name (others letters dropped); '' for none."""
    letters = [c for c in name if "A" <= c <= "Z"]
    if not letters:
        return ""
    code = [letters[0]]
    last = _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        d = _SOUNDEX.get(c, "")
        if d and d != last:
            code.append(d)
            if len(code) == 4:
                break
        if c not in "HW":  # H and W do not separate equal codes; vowels do
            last = d
    return "".join(code).ljust(4, "0")


@lru_cache(maxsize=_CACHE)
def canon(token: str) -> frozenset[str]:
    """The forenames a given-name token may stand for (itself included)."""
    return forename_variants().get(token, frozenset()) | {token}


@lru_cache(maxsize=_CACHE)
def _family_parts(folded: str) -> tuple[str, ...]:
    """Sound codes of a family name and of each part of a double-barrelled one."""
    codes = [soundex(family_key(folded))]
    parts = folded.split()
    if len(parts) > 1:
        codes += [soundex(family_key(p)) for p in parts if len(p) > 2]
    return tuple(dict.fromkeys(c for c in codes if c))


@lru_cache(maxsize=_CACHE)
def _given_parts(folded: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(forenames the first given name stands for, their initials)."""
    first = folded.split(" ", 1)[0] if folded else ""
    if not first:
        return (), ()
    names = tuple(sorted(canon(first)))
    return names, tuple(sorted({n[0] for n in names}))


def dob_int(value) -> int:
    """A date as YYYYMMDD (0 = unknown)."""
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.year * 10000 + value.month * 100 + value.day
    return 0


SEX_CODES = {"MALE": 1, "FEMALE": 2}


def _pnc(value) -> str:
    return "".join(str(value).upper().split()) if value else ""


# ------------------------------------------------------------------------- the two sides


class _Strings:
    """Interned strings: code ↔ text (0 = empty)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {"": 0}
        self.text: list[str] = [""]

    def code(self, s: str) -> int:
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.text)
            self.text.append(s)
        return c


_SEX_NAMES = {1: "MALE", 2: "FEMALE", 0: "UNKNOWN"}


class Side:
    """Person records as columns (compact arrays; strings as codes of the matcher's table).
    ``ref``: NOM_ID (legacy, an int array) or person_id (new, a list)."""

    def __init__(self, int_refs: bool) -> None:
        self.ref = array("q") if int_refs else []
        self.family = array("i")  # folded family name
        self.given = array("i")  # folded given names
        self.dob = array("i")  # YYYYMMDD, 0 unknown
        self.sex = array("b")  # 0 unknown, 1 male, 2 female
        self.pnc = array("i")  # PNC id, upper case without spaces
        self.flag = array("b")  # legacy: keyed (migrated); new: entered in iOPS
        self.family_shown = array("i")  # the names as stored, for the report
        self.given_shown = array("i")

    def __len__(self) -> int:
        return len(self.ref)

    def shown(self, i: int, text: list[str]) -> tuple:
        d = self.dob[i]
        return (text[self.family_shown[i]] or None, text[self.given_shown[i]] or None,
                dt.date(d // 10000, d // 100 % 100, d % 100) if d else None, _SEX_NAMES[self.sex[i]],
                text[self.pnc[i]] or None)


@dataclass(frozen=True)
class PersonPair:
    """One pair found: the finding's kind, both records, score, band and explanation."""

    category: str  # PROBABLE_MATCH | PROBABLE_DUPLICATE
    legacy_ref: int  # NOM_ID
    new_ref: str  # person_id
    score: float  # 0–100, one decimal
    band: str  # AUTO | REVIEW
    weight: float  # match weight (log2 odds), prior included
    levels: tuple[int, ...]  # per FIELDS, -1 = no evidence
    weights: tuple[float, ...]  # per FIELDS
    prior: float
    legacy_shown: tuple
    new_shown: tuple

    @property
    def differing(self) -> list[str]:
        """Fields compared and not equal (an empty field is not compared)."""
        return [f for f, level in zip(FIELDS, self.levels) if level > 0]

    @property
    def agreeing(self) -> list[str]:
        return [f for f, level in zip(FIELDS, self.levels) if level == 0]

    def explanation(self) -> str:
        """Which fields made the match: field level weight, …, the prior, the total."""
        parts = []
        for f, level, w in zip(FIELDS, self.levels, self.weights):
            label = "empty" if level < 0 else LEVELS[f][level]
            parts.append(f"{f}: {label} {w:+.1f}")
        parts.append(f"prior {self.prior:+.1f}")
        return "; ".join(parts) + f" = {self.weight:+.1f}"


SHOWN_FIELDS = ("family_name", "given_names", "date_of_birth", "sex", "pnc_id")


def shown_text(shown: tuple) -> str:
    """One side of a pair for the report: ``family_name=…; given_names=…; …``."""
    return "; ".join(f"{name}={'' if v is None else v}" for name, v in zip(SHOWN_FIELDS, shown))


def sides(text: str | None) -> dict[str, str]:
    """The values ``shown_text`` wrote (for the workbook: both sides side by side)."""
    out = {}
    for part in (text or "").split("; "):
        name, sep, value = part.partition("=")
        if sep and name in SHOWN_FIELDS:
            out[name] = value
    return out


# ------------------------------------------------------------------------- the matcher


class _Index:
    """The new side's blocking keys as sorted columns: ``keys`` (distinct), and per key its
    block of new persons ``person[start[k]:start[k + 1]]``; ``cap`` (``block_cap``, or
    ``weak_cap`` for a key some new person holds as a weak key) and ``count`` (legacy
    nominals that hit it so far)."""

    def __init__(self, keys, persons, weak, options: PersonOptions) -> None:
        keys = np.frombuffer(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        keys, self.person = keys[order], np.frombuffer(persons, dtype=np.int32)[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self.keys = keys[first]
        self.start = np.append(np.flatnonzero(first), len(keys)).astype(np.int32)
        is_weak = np.maximum.reduceat(np.frombuffer(weak, dtype=np.int8)[order], self.start[:-1]) if len(keys) else keys
        self.cap = np.where(is_weak == 1, options.weak_cap, options.block_cap).astype(np.int32)
        self.count = np.zeros(len(self.keys), dtype=np.int32)

    def live(self, at: np.ndarray) -> np.ndarray:
        """Whether the keys at these positions are within their cap (so far)."""
        return self.count[at] <= self.cap[at]


class PersonMatcher:
    """Collects the new side (unkeyed iOPS persons), then streams the legacy side through the
    blocking index; ``pairs()`` scores and bands. Pure: no database."""

    def __init__(self, options: PersonOptions | None = None) -> None:
        self.options = options or PersonOptions()
        self.strings = _Strings()
        self.new = Side(False)
        self.legacy = Side(True)  # every nominal streamed (compact columns)
        # (new person, NOM_ID linked to its crimes/reports) as one int64 each; per person: any?
        self._evidence_pairs = array("q")
        self._has_evidence = array("b")
        self.legacy_total = 0
        self.keyed_total = 0
        # The index of the new side's keys, as columns: (key, new person, weak key?).
        self._new_keys = array("q")
        self._new_idx = array("i")
        self._new_weak = array("b")
        self._evidence_noms: set[int] = set()  # NOM_IDs some new person's crimes/reports link to
        # Legacy records wait in a chunk; their keys are made and looked up together (numpy):
        # per distinct name (family, given) its key halves, flat, with the date part of each.
        self._name_ids: dict[tuple[int, int], int] = {}
        self._halves = array("q")
        self._half_kinds = array("b")
        self._name_start = (array("q"), array("q"))  # (with a date of birth, without)
        self._name_count = (array("i"), array("i"))
        self._chunk_names = array("i")
        self._extra_record = array("q")  # keys of single records (PNC ids, shared crimes)
        self._extra_key = array("q")
        self._chunk_start = 0
        self._candidates: tuple[np.ndarray, np.ndarray] | None = None
        self._index: _Index | None = None  # the new side's keys, sorted, made at the first probe
        # (legacy record, the key's position in the index) per chunk, int32, of keys not (yet)
        # over their cap: a key's count only grows, so a hit on a key over its cap is dropped
        # at once (at a million nominals half the hits were on such keys).
        self._hits: list[tuple[np.ndarray, np.ndarray]] = []
        self._hits_held = 0
        self._hits_pruned_at = 0

    # --- the new side ------------------------------------------------------------------

    def add_new(self, person_id: str, family, given, dob, sex, pnc, entered_in_iops: bool,
                linked_nominals: Iterable[int] = ()) -> None:
        f, g, d = fold(family), fold(given), dob_int(dob)
        p = _pnc(pnc)
        j = len(self.new)
        self._append(self.new, person_id, f, g, d, sex, p, family, given, entered_in_iops)
        linked = sorted(set(linked_nominals))
        self._has_evidence.append(bool(linked))
        self._evidence_pairs.extend(j * _EV + nom for nom in linked)
        strong, weak = _keys(f, g, d, p, True)
        strong2, weak2 = _keys(*_swapped(f, g), d, p, True)  # family and given names swapped
        keys = set(strong + strong2)
        weak = set(weak + weak2) - keys
        if d and (d % 100) <= 12 and (d % 100) != (d // 100) % 100:  # day and month swapped
            keys.update(_keys(f, g, (d // 10000) * 10000 + (d % 100) * 100 + (d // 100) % 100, "", True)[0])
        for nom in linked:
            keys.add(hash(("ev", nom)))
            self._evidence_noms.add(nom)
        self._new_keys.extend(keys)
        self._new_keys.extend(weak)
        self._new_idx.extend([j] * (len(keys) + len(weak)))
        self._new_weak.extend([0] * len(keys) + [1] * len(weak))

    def _append(self, side: Side, ref, f: str, g: str, d: int, sex, p: str, family, given, flag: bool) -> None:
        code = self.strings.code
        fc, gc = code(f), code(g)
        side.ref.append(ref)
        side.family.append(fc)
        side.given.append(gc)
        side.dob.append(d)
        side.sex.append(SEX_CODES.get(sex, 0))
        side.pnc.append(code(p) if p else 0)
        side.flag.append(bool(flag))
        # As stored, for the report (usually the folded text already: OPUS held upper case).
        side.family_shown.append(fc if family == f else code(family or ""))
        side.given_shown.append(gc if given == g else code(given or ""))

    # --- the legacy side ---------------------------------------------------------------

    def add_legacy(self, nom_id: int, family, given, dob, sex, pnc, keyed: bool) -> None:
        """One live nominal the mapping accepts (mapped values); ``keyed``: migrated and found
        under its NOM_ID in iOPS. Call after every ``add_new``."""
        f, g, d = fold(family), fold(given), dob_int(dob)
        p = _pnc(pnc) if pnc else ""
        self.legacy_total += 1
        if keyed:
            self.keyed_total += 1
        legacy = self.legacy
        record = len(legacy.ref)
        self._append(legacy, nom_id, f, g, d, sex, p, family, given, keyed)
        name = (legacy.family[record], legacy.given[record])
        nid = self._name_ids.get(name)
        if nid is None:
            nid = self._name_ids[name] = self._new_name(f, g)
        self._chunk_names.append(nid)
        if p:
            for k in _pnc_keys(p):
                self._extra_record.append(record)
                self._extra_key.append(k)
        if nom_id in self._evidence_noms:
            self._extra_record.append(record)
            self._extra_key.append(hash(("ev", nom_id)))
        if len(self._chunk_names) >= LEGACY_CHUNK:
            self._probe()

    def _forget_names(self) -> None:
        """Drop the names' key halves between chunks (a million nominals have a few hundred
        thousand names: ~40 halves each, all held, were ~60 MB); names that recur are made again."""
        self._name_ids = {}
        self._halves = array("q")
        self._half_kinds = array("b")
        self._name_start = (array("q"), array("q"))
        self._name_count = (array("i"), array("i"))

    def _new_name(self, f: str, g: str) -> int:
        """Register a legacy name's key halves (``_legacy_halves``); returns its id."""
        with_dob, kinds, without = _legacy_halves(f, g)
        for variant, halves, half_kinds in ((0, with_dob, kinds), (1, without, [BY_NONE] * len(without))):
            self._name_start[variant].append(len(self._halves))
            self._name_count[variant].append(len(halves))
            self._halves.extend(halves)
            self._half_kinds.extend(half_kinds)
        return len(self._name_count[0]) - 1

    def _probe(self) -> None:
        """The keys of the chunk's legacy records, made and looked up in the index at once;
        keeps the (record, key) hits."""
        start, end = self._chunk_start, len(self.legacy)
        if end > start:
            if self._index is None:
                self._index = _Index(self._new_keys, self._new_idx, self._new_weak, self.options)
                self._new_keys = self._new_idx = self._new_weak = None  # in the index now
            names = np.frombuffer(self._chunk_names, dtype=np.int32)
            dob = np.frombuffer(self.legacy.dob, dtype=np.int32)[start:end].astype(np.int64)
            known = dob != 0
            first = np.where(known, np.frombuffer(self._name_start[0], dtype=np.int64)[names],
                             np.frombuffer(self._name_start[1], dtype=np.int64)[names])
            count = np.where(known, np.frombuffer(self._name_count[0], dtype=np.int32)[names],
                             np.frombuffer(self._name_count[1], dtype=np.int32)[names]).astype(np.int64)
            local = np.repeat(np.arange(end - start), count)
            pos = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            kind = np.frombuffer(self._half_kinds, dtype=np.int8)[pos]
            d = dob[local]
            salt = np.zeros(len(pos), dtype=np.int64)
            for k, part in ((BY_DOB, d * 4 + 1), (BY_YEAR, d // 10000 * 4 + 2), (BY_MONTHDAY, d % 10000 * 4 + 3)):
                sel = kind == k
                salt[sel] = _mix_np(part[sel])
            keys = np.frombuffer(self._halves, dtype=np.int64)[pos] ^ salt
            records = local + start
            if self._extra_key:
                records = np.concatenate([records, np.frombuffer(self._extra_record, dtype=np.int64)])
                keys = np.concatenate([keys, np.frombuffer(self._extra_key, dtype=np.int64)])
            index = self._index
            if len(index.keys):
                # Sorted first: the binary searches then walk the index in order (3x faster).
                order = np.argsort(keys)
                keys, records = keys[order], records[order]
                at = np.minimum(np.searchsorted(index.keys, keys), len(index.keys) - 1)
                found = index.keys[at] == keys
                at = at[found].astype(np.int32)
                index.count += np.bincount(at, minlength=len(index.keys)).astype(np.int32)
                live = index.live(at)
                self._hits.append((records[found][live].astype(np.int32), at[live]))
                self._hits_held += int(live.sum())
                if self._hits_held > 2 * self._hits_pruned_at + LEGACY_CHUNK * 50:
                    self._prune_hits()
        self._chunk_start = end
        self._chunk_names = array("i")
        if len(self._halves) > HALVES_HELD:
            self._forget_names()
        self._extra_record = array("q")
        self._extra_key = array("q")

    # --- pairs ---------------------------------------------------------------------------

    def candidate_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(legacy index, new index) of every blocked pair, each once, eligible only:
        an unkeyed nominal with any new person (a re-key), a keyed one with a person entered
        in iOPS (a duplicate). A key shared by more than ``block_cap`` nominals (``weak_cap``
        for a weak key) is dropped: another key finds the pair, or nothing reasonable would."""
        if self._candidates is None:
            self._probe()
            self._candidates = self._blocked_pairs()
            self._hits = []  # their memory back
        return self._candidates

    def _prune_hits(self) -> None:
        """Drop the held hits on keys that are over their cap by now."""
        index = self._index
        self._hits = [(r[keep], k[keep]) for r, k in self._hits for keep in (index.live(k),)]
        self._hits_held = self._hits_pruned_at = sum(len(k) for _, k in self._hits)

    def _blocked_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, dtype=np.int32)
        if self._index is None or not len(self.new):
            return empty, empty
        self._prune_hits()  # every count is final now: only keys within their cap are left
        index = self._index
        # Each legacy hit expands to its key's block of new persons. A chunk's hits are its own
        # records', so each chunk's pairs are deduplicated on their own (the expansion of all
        # hits at once took gigabytes at a million nominals).
        legacy_flag = np.frombuffer(self.legacy.flag, dtype=np.int8)
        new_flag = np.frombuffer(self.new.flag, dtype=np.int8)
        width = len(self.new)
        out_l, out_n = [], []
        for records, at in self._hits:
            if not len(at):
                continue
            lo = index.start[at].astype(np.int64)
            n = index.start[at + 1] - lo
            legacy_i = np.repeat(records.astype(np.int64), n)
            starts = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
            new_j = index.person[starts]
            # Eligible: an unkeyed nominal with anyone (a re-key), a keyed one only with a person
            # entered in iOPS (a duplicate).
            keep = (legacy_flag[legacy_i] == 0) | (new_flag[new_j] == 1)
            pairs = np.sort(legacy_i[keep] * width + new_j[keep])
            if len(pairs):
                pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
            out_l.append((pairs // width).astype(np.int32))
            out_n.append((pairs % width).astype(np.int32))
        if not out_l:
            return empty, empty
        return np.concatenate(out_l), np.concatenate(out_n)

    def pairs(self) -> list[PersonPair]:
        """The pairs found, one-to-one, banded (above the review threshold only)."""
        return list(self.iter_pairs())

    def iter_pairs(self) -> Iterable[PersonPair]:
        """``pairs()``, made one at a time (a million nominals give ~90,000 pairs: their
        objects are not all held at once)."""
        li, nj = self.candidate_pairs()
        n = len(li)
        if not n:
            return []
        # Levels in chunks (the comparison's temporaries stay bounded); kept as int8 per field.
        levels = np.empty((len(FIELDS), n), dtype=np.int8)
        for start in range(0, n, COMPARE_CHUNK):
            part = slice(start, start + COMPARE_CHUNK)
            for f, lv in enumerate(_compare(self, self.legacy, li[part], nj[part], evidence=True)):
                levels[f, part] = lv
        u = self._u_random()
        self._nj = nj
        m, kind_match = self._em(levels, u, li)
        tables = _weight_tables(m, u)
        keyed = np.frombuffer(self.legacy.flag, dtype=np.int8)[li].astype(bool)
        priors = (self._prior(kind_match[0], self.legacy_total - self.keyed_total, len(self.new)),
                  self._prior(kind_match[1], self.keyed_total, sum(self.new.flag)))
        # Only pairs that can be listed, or can be a listed pair's runner-up, go on: the weights
        # are made a chunk at a time and only those pairs' kept.
        opts = self.options
        floor = min(_logit_of(opts.review_threshold), _logit_of(opts.auto_threshold) - opts.margin)
        family_counts = np.bincount(np.frombuffer(self.legacy.family, dtype=np.int32))
        kept, weights, family_weights = [], [], []
        for start in range(0, n, COMPARE_CHUNK):
            part = slice(start, start + COMPARE_CHUNK)
            lv = levels[:, part]
            weight = np.zeros(lv.shape[1], dtype=np.float64)
            for f in range(len(FIELDS)):
                weight += tables[f][lv[f]]
            # Term frequency: the family name's exact level weighs log2(m / the name's share).
            exact = np.flatnonzero(lv[F_FAMILY] == FAM_EXACT)
            tf_weight = np.log2(m[F_FAMILY][FAM_EXACT] / self._tf(li[part][exact], family_counts))
            weight[exact] += tf_weight - tables[F_FAMILY][FAM_EXACT]
            weight += np.where(keyed[part], priors[1], priors[0])
            family = tables[F_FAMILY][lv[F_FAMILY]]
            family[exact] = tf_weight
            sel = np.flatnonzero(weight >= floor)
            kept.append(sel + start)
            weights.append(weight[sel])
            family_weights.append(family[sel])
        keep = np.concatenate(kept)
        self.m, self.u, self.priors = m, u, priors
        return self._assign(li[keep], nj[keep], np.concatenate(weights), levels[:, keep], keyed[keep], tables,
                            np.concatenate(family_weights))

    def _prior(self, matches: float, legacy: int, new: int) -> float:
        """log2 odds that a random pair of this kind matches (the EM's count of matches)."""
        pairs = max(1, legacy) * max(1, new)
        p = min(max(matches, 0.5) / pairs, 0.5)
        return math.log2(p / (1 - p))

    def _tf(self, li: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Per pair, the share of legacy nominals with the legacy side's family name
        (``counts``: nominals per family name code)."""
        family = np.frombuffer(self.legacy.family, dtype=np.int32)
        return np.maximum(counts[family[li]], 1) / max(1, self.legacy_total)

    def _u_random(self) -> list[np.ndarray]:
        """u per field and level: the levels of random legacy × new pairs."""
        n_s, n_n = len(self.legacy), len(self.new)
        if not n_s or not n_n:
            return [np.full(len(LEVELS[f]), 1.0 / len(LEVELS[f])) for f in FIELDS]
        rng = np.random.default_rng(20)
        count = min(RANDOM_PAIRS, n_s * n_n)
        li = rng.integers(0, n_s, count)
        nj = rng.integers(0, n_n, count)
        levels = _compare(self, self.legacy, li, nj, evidence=False)
        u = []
        for f in FIELDS:
            n_levels = len(LEVELS[f])
            lv = levels[FIELDS.index(f)]
            lv = lv[lv >= 0]
            counts = np.bincount(lv, minlength=n_levels).astype(float)
            # Never seen among random pairs: at most half a pair in the sample.
            u.append(np.maximum(counts, 0.5) / max(1, counts.sum()))
        # Links: random pairs share none (the evidence is not drawn for them): the chance a
        # nominal is linked to a given iOPS person's crimes by chance, taken as 1 in the legacy total.
        share = min(0.5, 1.0 / max(1, self.legacy_total))
        u[F_LINKS] = np.array([share, 1 - share])
        return u

    def _em(self, levels: np.ndarray, u: list[np.ndarray], li: np.ndarray):
        """m per field and level by EM over the blocked pairs (a sample of ``EM_PAIRS`` when
        there are more), as Splink trains: ``u`` fixed (random pairs), and in sessions that
        each leave out the fields their pairs were chosen by — within pairs already agreeing on
        a field, agreeing again says nothing. Session 1: pairs with the same date of birth
        train the names, sex, PNC id and links; session 2: pairs with the same PNC id or a
        shared crime or report train the date of birth (pairs with the same names would not:
        namesakes' dates of birth look like a match's typing errors when the date is the only
        field left to tell them apart). A Dirichlet prior (``_M_START``, worth
        ``_PRIOR_PAIRS`` pairs) keeps a small store's estimates sane. Returns m, and the
        expected number of matches among the pairs with an unkeyed / a keyed nominal (for the
        priors)."""
        n = levels.shape[1]
        sample = levels
        if n > EM_PAIRS:
            sample = levels[:, np.sort(np.random.default_rng(21).choice(n, EM_PAIRS, replace=False))]
        m = [np.array(_M_START[f], dtype=float) for f in FIELDS]
        same_dob = sample[F_DOB] == DOB_EXACT
        identified = (sample[F_PNC] == 0) | (sample[F_LINKS] == 0)
        trained = _em_session(sample, same_dob, [F_FAMILY, F_GIVEN, F_SEX, F_PNC, F_LINKS], m, u)
        for f in (F_FAMILY, F_GIVEN, F_SEX, F_PNC, F_LINKS):
            m[f] = trained[f]
        m[F_DOB] = _em_session(sample, identified, [F_DOB, F_FAMILY, F_GIVEN, F_SEX], m, u)[F_DOB]
        # The expected matches over all the pairs, every field in, parameters fixed. A new
        # person is at most one nominal: its matches count once, at its best pair's probability
        # (summing every pair would count its namesakes as matches too). The prior shifts every
        # pair's log odds alike, so each person's best pair is the same in every round: found
        # once (a chunk at a time), then the rounds work on one number per person.
        tables = _weight_tables(m, u)
        keyed = np.frombuffer(self.legacy.flag, dtype=np.int8)[li].astype(bool)
        nj = self._nj
        size = len(self.new)
        best = [np.full(size, -np.inf, dtype=np.float32) for _ in range(2)]
        for start in range(0, n, COMPARE_CHUNK):
            part = slice(start, start + COMPARE_CHUNK)
            logit = np.zeros(len(nj[part]), dtype=np.float32)
            for f in range(len(FIELDS)):
                logit += tables[f][levels[f, part]].astype(np.float32)
            k, j = keyed[part], nj[part]
            for kind, sel in enumerate((~k, k)):
                np.maximum.at(best[kind], j[sel], logit[sel])
        present = [np.flatnonzero(b > -np.inf) for b in best]
        best = [b[where] for b, where in zip(best, present)]
        lam = min(0.5, size / max(1, n))
        matches = (0.0, 0.0)
        for _ in range(EM_ITERATIONS):
            shift = np.float32(math.log2(lam / (1 - lam)))
            totals = []
            for b, where in zip(best, present):
                p = np.zeros(size, dtype=np.float64)
                p[where] = 1.0 / (1.0 + np.exp2(-np.clip(b + shift, -60, 60)))
                totals.append(float(p.sum()))
            matches = tuple(totals)
            lam = float(np.clip(sum(matches) / n, 1e-9, 0.5))
        return m, matches

    def _assign(self, li, nj, weight, levels, keyed, tables, family_weights) -> Iterator[PersonPair]:
        opts = self.options
        # A date of birth "one digit wrong" in the decade or century: as likely a parent or a
        # child of the same name as a typing slip — never AUTO.
        ld = np.frombuffer(self.legacy.dob, dtype=np.int32)[li].astype(np.int64)
        nd = np.frombuffer(self.new.dob, dtype=np.int32)[nj].astype(np.int64)
        decades = (levels[F_DOB] == DOB_TYPO) & (np.abs(ld // 10000 - nd // 10000) >= 10)
        vetoed = decades | (levels[F_GIVEN] == GIV_SUBSET)
        # Names alone never make AUTO: a date of birth (exact, one slip) or a PNC id or a shared
        # crime or report must agree too.
        vetoed |= ~((levels[F_DOB] >= 0) & (levels[F_DOB] <= DOB_SWAP) | (levels[F_PNC] == 0) | (levels[F_PNC] == 1)
                    | (levels[F_LINKS] == 0))
        vetoed |= levels[F_SEX] == 1  # a man and a woman of one name and birthday: twins, mostly
        # Family name, given names and date of birth all only alike, none equal: for a person.
        vetoed |= (levels[F_FAMILY] != FAM_EXACT) & (levels[F_GIVEN] != GIV_EXACT) & (levels[F_DOB] != DOB_EXACT)
        for f in _VETO:
            vetoed |= levels[f] == len(LEVELS[FIELDS[f]]) - 1
        score = 100.0 / (1.0 + np.exp2(-np.clip(weight, -60, 60)))
        # Best and second-best weight per record of either side, for the runner-up margin.
        order = np.lexsort((nj, li, -weight))
        best_l, best_n = _top2(li, weight), _top2(nj, weight)
        used_l: set[int] = set()
        used_n: set[int] = set()
        text = self.strings.text
        alternatives: list[int] = []  # pairs a person should also look at (below)
        chosen: list[tuple[int, str]] = []
        for k in order:
            s = round(float(score[k]), 1)
            if s < opts.review_threshold:
                break
            i, j = int(li[k]), int(nj[k])
            if i in used_l or j in used_n:
                alternatives.append(k)
                continue
            used_l.add(i)
            used_n.add(j)
            w = float(weight[k])
            runner_up = max(_second(best_l.get(i), w), _second(best_n.get(j), w))
            band = AUTO if s >= opts.auto_threshold and w - runner_up >= opts.margin and not vetoed[k] else REVIEW
            chosen.append((k, band))
        # A REVIEW person's other candidates close to its pair (within the margin) are listed
        # too, up to ``review_alternatives``: the reviewer chooses among them (a namesake with no
        # date of birth is no better than the others). AUTO persons have no close runner-up.
        best_of = {int(nj[k]): float(weight[k]) for k, band in chosen if band == REVIEW}
        extra: dict[int, int] = {}
        for k in alternatives:
            j = int(nj[k])
            best = best_of.get(j)
            if best is not None and best - float(weight[k]) < opts.margin and extra.get(j, 0) < opts.review_alternatives:
                extra[j] = extra.get(j, 0) + 1
                chosen.append((k, REVIEW))
        for k, band in chosen:
            i, j = int(li[k]), int(nj[k])
            s = round(float(score[k]), 1)
            w = float(weight[k])
            lv = tuple(int(levels[f][k]) for f in range(len(FIELDS)))
            weights = [float(tables[f][lv[f]]) for f in range(len(FIELDS))]
            weights[F_FAMILY] = float(family_weights[k])  # term-frequency adjusted when exact
            prior = self.priors[1] if keyed[k] else self.priors[0]
            yield (PersonPair(
                PROBABLE_DUPLICATE if keyed[k] else PROBABLE_MATCH, int(self.legacy.ref[i]), self.new.ref[j], s, band,
                round(w, 2), lv, tuple(round(x, 2) for x in weights), round(prior, 2),
                self.legacy.shown(i, text), self.new.shown(j, text)))


_PRIOR_PAIRS = 100.0


def _logit_of(score: float) -> float:
    """The match weight (log2 odds) of a score (100 × probability)."""
    p = min(max(score / 100.0, 1e-15), 1 - 1e-15)
    return math.log2(p / (1 - p))


def _weight_tables(m, u) -> list[np.ndarray]:
    """Per field, log2(m/u) of each level, and 0 at index -1 (no evidence)."""
    return [np.append(np.log2(m[f] / u[f]), 0.0) for f in range(len(FIELDS))]
#: Fields whose worst level ("different") keeps a pair out of AUTO whatever its score.
_VETO = (F_FAMILY, F_GIVEN, F_DOB, F_PNC)


def _logit(levels, m, u, fields, start: np.ndarray) -> np.ndarray:
    """``start`` + the sum over ``fields`` of log2(m/u) of each pair's level."""
    logit = start.copy()
    tables = _weight_tables(m, u)
    for f in fields:
        logit += tables[f][levels[f]]
    return logit


def _em_session(levels: list[np.ndarray], subset: np.ndarray, fields: list[int], m_start, u) -> list[np.ndarray]:
    """EM over the pairs in ``subset``: m of ``fields`` (u fixed), with a Dirichlet prior."""
    m = [x.copy() for x in m_start]
    rows = np.flatnonzero(subset)
    if not len(rows):
        return m
    lv_s = [lv[rows] for lv in levels]
    lam = 0.5
    for _ in range(EM_ITERATIONS):
        logit = _logit(lv_s, m, u, fields, np.full(len(rows), math.log2(lam / (1 - lam))))
        p = 1.0 / (1.0 + np.exp2(-np.clip(logit, -60, 60)))
        lam = float(np.clip(p.mean(), 1e-6, 1 - 1e-6))
        for f in fields:
            lv = lv_s[f]
            ok = lv >= 0
            k = len(m[f])
            counts = np.bincount(lv[ok], weights=p[ok], minlength=k) + _PRIOR_PAIRS * m_start[f]
            m[f] = np.maximum(counts / counts.sum(), _M_FLOOR)
            m[f] /= m[f].sum()
    return m


def _top2(index: np.ndarray, weight: np.ndarray) -> dict[int, tuple[float, float]]:
    """Per record, its two best weights (the second -inf when it has one pair)."""
    order = np.lexsort((-weight, index))
    idx, w = index[order], weight[order]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = idx[1:] != idx[:-1]
    out: dict[int, tuple[float, float]] = {}
    starts = np.flatnonzero(first)
    for s in starts:
        i = int(idx[s])
        second = float(w[s + 1]) if s + 1 < len(idx) and idx[s + 1] == i else -math.inf
        out[i] = (float(w[s]), second)
    return out


def _second(top: tuple[float, float] | None, w: float) -> float:
    """The best weight among the record's *other* pairs."""
    if top is None:
        return -math.inf
    return top[1] if top[0] == w else top[0]


# ------------------------------------------------------------------------- blocking keys


def _swapped(f: str, g: str) -> tuple[str, str]:
    """Family and given names exchanged (all the given names as the family name: a swapped
    double-barrelled name keeps its parts)."""
    return g, f


def _deletions(key: str) -> tuple[str, ...]:
    """The name and each way of deleting one letter from it: two names one edit apart
    (a letter changed, added, dropped, or two swapped) share one of these."""
    if len(key) < 3:
        return (key,) if key else ()
    return tuple(dict.fromkeys([key] + [key[:i] + key[i + 1:] for i in range(len(key))]))


@lru_cache(maxsize=_CACHE)
def _family_bases(f: str) -> tuple:
    """Hashes of a family name's key parts: (sounds, spellings one edit away)."""
    if not f:
        return (), ()
    fk = family_key(f)
    parts = [family_key(x) for x in f.split() if len(x) > 2] if " " in f else []
    spellings = dict.fromkeys(_deletions(fk) + tuple(parts))
    return tuple(hash(("s", x)) for x in _family_parts(f)), tuple(hash(("sp", x)) for x in spellings)


@lru_cache(maxsize=_CACHE)
def _given_bases(g: str) -> tuple:
    """Hashes of a given name's key parts: (forenames it may stand for, their initials)."""
    names, initials = _given_parts(g)
    return tuple(hash(("n", x)) for x in names), tuple(hash(("i", x)) for x in initials)


#: One salt per kind of key: a key is the XOR of its kind's salt and its parts' hashes.
_K = {kind: hash(("kind", kind)) for kind in ("fd", "gd", "fgy", "fyi", "sy", "fgm", "sm", "fg", "sg", "fgn", "sgn")}


def _key_bases(f: str, g: str) -> tuple[tuple[int, ...], ...]:
    """The name halves of a name's blocking keys, once per distinct name (names repeat): with
    the date of birth; with the birth year (strong, weak); with the day and month (strong,
    weak); names alone asked ("fg") and answered ("fgn"). A key is the XOR of its kind's salt,
    its parts' hashes and its date part's: equal keys are equal (kind, name, date), bar a
    2^-64 chance. Weak keys: an initial only, or a family name one edit away (a digit typed
    wrong in the date spoils only one half of it)."""
    sounds, spellings = _family_bases(f)
    names, initials = _given_bases(g)
    k = _K
    sn = [s ^ n for s in sounds for n in names]
    si = [s ^ i for s in sounds for i in initials]
    spi = [sp ^ i for sp in spellings for i in initials] if initials else list(spellings)
    by_dob = [k["fd"] ^ s for s in sounds] + [k["gd"] ^ n for n in names]
    by_year = [k["fgy"] ^ x for x in sn]
    by_year_weak = [k["fyi"] ^ x for x in si] + [k["sy"] ^ sp for sp in spellings]
    by_monthday = [k["fgm"] ^ x for x in sn]
    by_monthday_weak = [k["sm"] ^ sp for sp in spellings]
    asked = [k["fg"] ^ x for x in sn] + [k["sg"] ^ x for x in spi]
    answered = [k["fgn"] ^ x for x in sn] + [k["sgn"] ^ x for x in spi]
    return tuple(map(tuple, (by_dob, by_year, by_year_weak, by_monthday, by_monthday_weak, asked, answered)))


_MASK = (1 << 64) - 1
_M1, _M2, _M3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
#: Which date part a key half is XORed with: the date of birth, its year, its day and month, none.
BY_DOB, BY_YEAR, BY_MONTHDAY, BY_NONE = range(4)


def _mix(x: int) -> int:
    """splitmix64 of a date part (as a signed 64-bit int): the same bits as ``_mix_np``."""
    x = (x + _M1) & _MASK
    x = ((x ^ (x >> 30)) * _M2) & _MASK
    x = ((x ^ (x >> 27)) * _M3) & _MASK
    x ^= x >> 31
    return x - (1 << 64) if x >> 63 else x


def _mix_np(x: np.ndarray) -> np.ndarray:
    """splitmix64 of an array of date parts (int64 in, int64 out), wrapping as ``_mix``."""
    x = x.astype(np.uint64) + np.uint64(_M1)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_M2)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_M3)
    x ^= x >> np.uint64(31)
    return x.view(np.int64)


def _salts(d: int) -> tuple[int, int, int]:
    """The date parts' hashes: date of birth, year, day and month."""
    return _mix(d * 4 + 1), _mix(d // 10000 * 4 + 2), _mix(d % 10000 * 4 + 3)


def _pnc_keys(p: str) -> tuple[int, ...]:
    keys = [hash(("p", p))]
    number = p.split("/", 1)[-1][:-1]
    if len(number) >= 4:
        keys.append(hash(("pn", number)))  # the number without its year and check letter
    return tuple(keys)


def _keys(f: str, g: str, d: int, p: str, new: bool) -> tuple[list[int], list[int]]:
    """The blocking keys of one record (64-bit hashes of equality keys): (strong, weak). A
    weak key's block is capped lower (``PersonOptions.weak_cap``). The legacy side computes the
    same keys a chunk at a time in numpy (``PersonMatcher._probe``).

    Keys on the names alone serve a date of birth missing on one side, and their blocks are
    big (every JOHN SMITH), so they are asymmetric: a new record with a date of birth puts
    "fg" in the index, which only legacy records *without* one ask for; a new record without
    one puts "fgn" too, which every legacy record asks for."""
    by_dob, by_year, by_year_weak, by_monthday, by_monthday_weak, fg, fgn = _key_bases(f, g)
    if d:
        hd, hy, hm = _salts(d)
        strong = [b ^ hd for b in by_dob]
        strong += [b ^ hy for b in by_year]
        strong += [b ^ hm for b in by_monthday]
        weak = [b ^ hy for b in by_year_weak]
        weak += [b ^ hm for b in by_monthday_weak]
        weak += fg if new else fgn
    else:
        strong, weak = [], list(fg + fgn)
    if p:
        strong += _pnc_keys(p)
    return strong, weak


def _legacy_halves(f: str, g: str) -> tuple[list[int], list[int], list[int]]:
    """A legacy name's key halves as ``_keys`` combines them: (halves and their date parts
    with a date of birth, halves without one)."""
    by_dob, by_year, by_year_weak, by_monthday, by_monthday_weak, fg, fgn = _key_bases(f, g)
    with_dob = list(by_dob) + list(by_year) + list(by_year_weak) + list(by_monthday) + list(by_monthday_weak) + list(fgn)
    kinds = ([BY_DOB] * len(by_dob) + [BY_YEAR] * (len(by_year) + len(by_year_weak))
             + [BY_MONTHDAY] * (len(by_monthday) + len(by_monthday_weak)) + [BY_NONE] * len(fgn))
    return with_dob, kinds, list(fg + fgn)


# ------------------------------------------------------------------------- comparing


def _compare(matcher: PersonMatcher, left: Side, li: np.ndarray, nj: np.ndarray, *, evidence: bool) -> list[np.ndarray]:
    """Levels per field (int8 arrays, -1 = no evidence) of the pairs (left[li], new[nj])."""
    new = matcher.new
    text = matcher.strings.text
    col = lambda a, dtype=np.int32: np.frombuffer(a, dtype=dtype).astype(np.int64)  # noqa: E731
    lf, nf, lg, ng = col(left.family)[li], col(new.family)[nj], col(left.given)[li], col(new.given)[nj]

    family = _by_unique_pairs(lf, nf, lambda a, b: _family_level(text[a], text[b]))
    given = _by_unique_pairs(lg, ng, lambda a, b: _given_level(text[a], text[b]))
    # Swapped names: the family name against the other's given names and back.
    worse = family >= FAM_SOUND
    if worse.any():
        cross_f = _by_unique_pairs(lf[worse], ng[worse], lambda a, b: _family_level(text[a], text[b]))
        cross_g = _by_unique_pairs(lg[worse], nf[worse], lambda a, b: _given_level(text[a], text[b]))
        swapped = (cross_f <= FAM_JW) & (cross_g <= GIV_JW) & (cross_f >= 0) & (cross_g >= 0)
        where = np.flatnonzero(worse)[swapped]
        family[where] = FAM_SWAPPED
        given[where] = cross_g[swapped]

    dob = _dob_levels(col(left.dob)[li], col(new.dob)[nj])

    ls, ns = col(left.sex, np.int8)[li], col(new.sex, np.int8)[nj]
    sex = np.where((ls == 0) | (ns == 0), -1, np.where(ls == ns, 0, 1)).astype(np.int8)

    lp, np_ = col(left.pnc)[li], col(new.pnc)[nj]
    pnc = np.full(len(li), -1, dtype=np.int8)
    both = (lp != 0) & (np_ != 0)
    pnc[both & (lp == np_)] = 0
    differ = np.flatnonzero(both & (lp != np_))
    if len(differ):
        a = [text[c] for c in lp[differ]]
        b = [text[c] for c in np_[differ]]
        dist = process.cpdist(a, b, scorer=Levenshtein.distance, workers=1)
        pnc[differ] = np.where(np.asarray(dist) <= 1, 1, 2)

    links = np.full(len(li), -1, dtype=np.int8)
    if evidence and len(matcher._evidence_pairs):
        # (new person, NOM_ID) of each pair looked up among the persons' links at once.
        has = np.frombuffer(matcher._has_evidence, dtype=np.int8)[nj].astype(bool)
        known = np.frombuffer(matcher._evidence_pairs, dtype=np.int64)
        refs = np.frombuffer(left.ref, dtype=np.int64)[li[has]]  # NOM_IDs
        links[has] = np.where(np.isin(nj[has].astype(np.int64) * _EV + refs, known), 0, 1)
    return [family, given, dob, sex, pnc, links]


_EV = 1 << 32  # NOM_IDs are 32-bit (OPUS INTEGER)


def _by_unique_pairs(a: np.ndarray, b: np.ndarray, level: Callable[[int, int], int]) -> np.ndarray:
    """``level(a, b)`` per pair, computed once per distinct (a, b): names repeat a lot."""
    if not len(a):
        return np.zeros(0, dtype=np.int8)
    combined = a * (1 << 32) + b
    uniq, inverse = np.unique(combined, return_inverse=True)
    values = np.fromiter((level(int(c >> 32), int(c & 0xFFFFFFFF)) for c in uniq), dtype=np.int8, count=len(uniq))
    return values[inverse]


@lru_cache(maxsize=_CACHE // 2)
def _family_level(a: str, b: str) -> int:
    if not a or not b:
        return -1
    if a == b:
        return FAM_EXACT
    ka, kb = family_key(a), family_key(b)
    if ka == kb:
        return FAM_FOLDED
    pa, pb = set(a.split()), set(b.split())
    if (len(pa) > 1 or len(pb) > 1) and (pa <= pb or pb <= pa):
        return FAM_FOLDED  # one part of a double-barrelled name
    if JaroWinkler.similarity(ka, kb) >= JW_THRESHOLD or (min(len(ka), len(kb)) >= 3 and OSA.distance(ka, kb) <= 1):
        return FAM_JW
    if soundex(ka) == soundex(kb):
        return FAM_SOUND
    return FAM_ELSE


@lru_cache(maxsize=_CACHE // 2)
def _given_level(a: str, b: str) -> int:
    if not a or not b:
        return -1
    if a == b:
        return GIV_EXACT
    ta, tb = a.split(), b.split()
    if ta[0] == tb[0]:
        return GIV_FIRST  # a middle name dropped, added or different
    if set(ta) <= set(tb) or set(tb) <= set(ta):
        return GIV_SUBSET  # the first name dropped: or a twin named after the other's middle name
    fa, fb = ta[0], tb[0]
    if canon(fa) & canon(fb):
        return GIV_VARIANT
    if len(fa) > 1 and len(fb) > 1 and (JaroWinkler.similarity(fa, fb) >= JW_THRESHOLD
                                        or (min(len(fa), len(fb)) >= 3 and OSA.distance(fa, fb) <= 1)):
        return GIV_JW
    if (len(fa) == 1 or len(fb) == 1) and fa[0] == fb[0]:
        return GIV_INITIAL
    return GIV_ELSE


def _dob_levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(len(a), DOB_ELSE, dtype=np.int8)
    known = (a != 0) & (b != 0)
    out[~known] = -1
    # Unknown on both sides is (weak) evidence: a date unknown in OPUS is often unknown again.
    out[(a == 0) & (b == 0)] = DOB_UNKNOWN
    year_a, year_b = a // 10000, b // 10000
    month_a, month_b = (a // 100) % 100, (b // 100) % 100
    day_a, day_b = a % 100, b % 100
    digits_a = np.stack([(a // 10 ** k) % 10 for k in range(8)])
    digits_b = np.stack([(b // 10 ** k) % 10 for k in range(8)])
    diff = digits_a != digits_b
    ndiff = diff.sum(axis=0)
    # two adjacent digits swapped (1985 -> 1958): positions k, k+1 differ and cross-equal
    adjacent = np.zeros(len(a), dtype=bool)
    for k in range(7):
        adjacent |= (diff[k] & diff[k + 1] & (digits_a[k] == digits_b[k + 1]) & (digits_a[k + 1] == digits_b[k]))
    adjacent &= ndiff == 2
    year = known & (year_a == year_b)
    out[year] = DOB_YEAR
    swap = year & (day_a == month_b) & (month_a == day_b)
    typo = known & ((ndiff == 1) | adjacent)
    out[typo] = DOB_TYPO
    out[swap & ~typo] = DOB_SWAP
    out[known & (a == b)] = DOB_EXACT
    return out


# ------------------------------------------------------------------------- the stores


def person_findings(rec, unkeyed: Sequence[tuple[str, str]], options: PersonOptions) -> Iterator:
    """The person matching pass of a reconciliation (``rec``: ``reconcile.decide.Reconciler``,
    after its crime passes, before the link pass): reads the unkeyed iOPS persons, their links
    and reports, and streams the legacy nominals once; yields the PROBABLE_MATCH and
    PROBABLE_DUPLICATE rows, then the MISSING rows of the nominals left without a keyed or
    AUTO counterpart. An AUTO match is recorded in ``rec.person_auto`` (person_id → NOM_ID)
    and the nominal counts as matched: its links are compared through the pair."""
    from reconcile.model import Discrepancy  # data only; kept local to show the one dependency

    keys = rec.keys["person"]
    totals = rec.totals["person"]
    pairs: Iterable[PersonPair] = ()
    if unkeyed:
        matcher = PersonMatcher(options)
        ids = [pid for pid, _ in unkeyed]
        linked = _linked_nominals(rec, ids)
        for row in _new_persons(rec, ids):
            pid = row[0]
            matcher.add_new(pid, row[1], row[2], row[3], row[4], row[5],
                            (row[6] or "").strip().upper() == "IOPS", linked.get(pid, ()))
        for nom_id, family, given, dob, sex, pnc in _legacy_nominals(rec):
            matcher.add_legacy(nom_id, family, given, dob, sex, pnc, keys.encode(nom_id) not in keys.unmatched)
        pairs = matcher.iter_pairs()  # the matcher's columns go with it
        del matcher
    listed = 0
    for pair in pairs:
        listed += 1
        code = pair.band if pair.category == PROBABLE_MATCH else f"DUPLICATE_{pair.band}"
        differs = ", ".join(pair.differing) or "nothing"
        yield Discrepancy("person", pair.category, str(pair.legacy_ref), str(pair.new_ref),
                          ", ".join(pair.differing) or None, shown_text(pair.legacy_shown), pair.explanation(),
                          shown_text(pair.new_shown), pair.score, pair.band,
                          f"{explain(code)} (score {pair.score:.1f}; differs: {differs})")
        if pair.category == PROBABLE_MATCH and pair.band == AUTO:
            keys.unmatched.discard(keys.encode(pair.legacy_ref))
            rec.person_auto[pair.new_ref] = pair.legacy_ref
            totals.matched_auto += 1
    pairs = None
    clear_caches()
    totals.new_in_iops += len(unkeyed) - listed
    for key in sorted(keys.unmatched, key=str):
        yield Discrepancy("person", "MISSING", str(key), explanation=explain("MISSING_NO_REASON"))


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _new_persons(rec, ids: list[str]) -> Iterator[tuple]:
    import sqlalchemy as sa

    from core.db import store_errors

    person = rec.tt["person"]
    stmt = sa.select(person.c.person_id, person.c.family_name, person.c.given_names, person.c.date_of_birth,
                     person.c.sex, person.c.pnc_id, person.c.source_system)
    with store_errors(rec.target, "target"), rec.target.connect() as conn:
        for chunk in _chunks(ids, rec.lookup_chunk):
            yield from conn.execute(stmt.where(person.c.person_id.in_(list(chunk)))).all()


def _legacy_nominals(rec) -> Iterator[tuple]:
    """(NOM_ID, family, given, date of birth, sex, PNC id) of every live nominal the mapping
    accepts, mapped as ``mappings.person`` maps them (name split, DOB and PNC rules)."""
    import sqlalchemy as sa

    from core.db import store_errors, stream
    from mappings.parse import INVALID, UNKNOWN, code, is_deleted, local_date, normalise_pnc, parse_date, parse_nom_id
    from mappings.person import SEXES, split_name

    table = rec.lt["nominal"]
    accepted = rec.keys["person"].is_accepted
    run_date = local_date(rec.ctx.run_started)
    stmt = sa.select(table.c.nom_id, table.c.surname, table.c.forenames, table.c.dob, table.c.sex, table.c.pnc_id,
                     table.c.del_flag)
    with store_errors(rec.legacy, "legacy"), rec.legacy.connect() as conn:
        for partition in stream(conn, stmt).partitions():
            for raw_id, surname, forenames, raw_dob, raw_sex, raw_pnc, flag in partition:
                nom_id = parse_nom_id(raw_id)
                if nom_id is None or is_deleted(flag) or not accepted(nom_id):
                    continue
                family, given = split_name(surname, forenames)
                dob = parse_date(raw_dob)
                if dob is UNKNOWN or dob is INVALID or dob > run_date:
                    dob = None
                pnc = normalise_pnc(raw_pnc)
                if pnc is UNKNOWN or pnc is INVALID:
                    pnc = None
                yield nom_id, family, given, dob, SEXES.get(code(raw_sex), "UNKNOWN"), pnc


def _linked_nominals(rec, ids: list[str]) -> dict[str, set[int]]:
    """person_id → the NOM_IDs OPUS links to the crimes and reports iOPS links that person to
    (crimes by legacy_ref or through an AUTO pair; reports by legacy_ref)."""
    import sqlalchemy as sa

    from core.db import store_errors
    from mappings.parse import parse_nom_id

    crime, cp, ir = rec.tt["crime"], rec.tt["crime_person"], rec.tt["intelligence_report"]
    by_auto = {crime_id: key for key, (crime_id, _) in rec.auto_pairs.items()}
    crimes_of: dict[str, set[str]] = {}
    reports_of: dict[str, set[str]] = {}
    with store_errors(rec.target, "target"), rec.target.connect() as conn:
        for chunk in _chunks(ids, rec.lookup_chunk):
            stmt = (sa.select(cp.c.person_id, crime.c.legacy_ref, crime.c.crime_id)
                    .select_from(cp.join(crime, cp.c.crime_id == crime.c.crime_id))
                    .where(cp.c.person_id.in_(list(chunk))))
            for pid, legacy_ref, crime_id in conn.execute(stmt):
                key = legacy_ref.strip() if isinstance(legacy_ref, str) and legacy_ref.strip() else by_auto.get(crime_id)
                if key:
                    crimes_of.setdefault(key, set()).add(pid)
            stmt = (sa.select(ir.c.subject_person_id, ir.c.legacy_ref)
                    .where(ir.c.subject_person_id.in_(list(chunk)), ir.c.legacy_ref.is_not(None)))
            for pid, legacy_ref in conn.execute(stmt):
                if isinstance(legacy_ref, str) and legacy_ref.strip():
                    reports_of.setdefault(legacy_ref.strip(), set()).add(pid)
    linked: dict[str, set[int]] = {}
    crime_nom, intel = rec.lt["crime_nom"], rec.lt["intel"]
    with store_errors(rec.legacy, "legacy"), rec.legacy.connect() as conn:
        for table, key_col, nom_col, wanted in ((crime_nom, crime_nom.c.crime_no, crime_nom.c.nom_id, crimes_of),
                                                (intel, intel.c.intel_no, intel.c.subj_nom_id, reports_of)):
            refs = sorted(wanted)
            for chunk in _chunks(refs, rec.lookup_chunk):
                for ref, raw_nom in conn.execute(sa.select(key_col, nom_col).where(key_col.in_(list(chunk)))):
                    nom = parse_nom_id(raw_nom)
                    persons = wanted.get(ref.strip() if isinstance(ref, str) else ref)
                    if nom is None or not persons:
                        continue
                    for pid in persons:
                        linked.setdefault(pid, set()).add(nom)
    return linked
