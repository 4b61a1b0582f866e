"""How a person's particulars go wrong when someone types them again, and people who only
look like someone else — for the simulator's person re-keys, duplicate nominals and hard
negatives (``synth/simulate.py``).

Pure functions of a mapped iOPS ``person`` row and a ``random.Random``: the same generator
state gives the same result. Names are upper case as OPUS held them.

Variation kinds (one per group at most, so a record keeps something to be found by):

=================  ==============================================================================
given name         ``forename_variant`` (WILLIAM → BILL / WM, MARGARET → PEGGY, BILL → WILLIAM,
                   from ``mappings/forename_variants.csv``), ``given_typo`` (one edit),
                   ``middle_dropped``, ``middle_added``
family name        ``family_typo`` (one edit), ``mc_mac`` (MCDONALD ↔ MACDONALD, MC DONALD),
                   ``apostrophe`` (O'BRIEN → OBRIEN / O BRIEN), ``hyphen`` (SMITH-JONES → SMITH,
                   JONES, SMITH JONES; SMITH → SMITH-KHAN)
order              ``names_swapped`` (family and given names exchanged)
date of birth      ``dob_typo`` (one digit), ``dob_day_month`` (day and month swapped)
PNC id             ``pnc_typo`` (one digit or the check letter), ``pnc_dropped``
=================  ==============================================================================

Look-alikes (genuinely different people): ``namesake`` (same names, another date of birth),
``twin`` (same family name and date of birth, another given name), ``parent_child`` (same
names, born 25–40 years apart).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from functools import lru_cache
from pathlib import Path

from synth import names

VARIANTS_CSV = Path(__file__).resolve().parent.parent / "mappings" / "forename_variants.csv"

#: (group, kind, weight): a kind is drawn only where it applies; at most one per group.
KINDS: tuple[tuple[str, str, float], ...] = (
    ("given", "forename_variant", 3.0),
    ("given", "given_typo", 2.0),
    ("given", "middle_dropped", 2.0),
    ("given", "middle_added", 0.8),
    ("family", "family_typo", 3.0),
    ("family", "mc_mac", 6.0),
    ("family", "apostrophe", 5.0),
    ("family", "hyphen", 4.0),
    ("order", "names_swapped", 1.2),
    ("dob", "dob_typo", 2.0),
    ("dob", "dob_day_month", 1.5),
    ("pnc", "pnc_typo", 1.0),
    ("pnc", "pnc_dropped", 2.5),
)
ALL_KINDS = tuple(k for _, k, _ in KINDS)
LOOKALIKE_KINDS = ("namesake", "twin", "parent_child")

_FAMILY_MAX, _GIVEN_MAX = 60, 80
_LAST_DOB = dt.date(2018, 12, 31)
_PNC_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


# ------------------------------------------------------------------------------ forename variants


@lru_cache(maxsize=1)
def forename_groups() -> dict[str, tuple[str, ...]]:
    """Each name of forename_variants.csv → the other names it is written as: its variants
    and abbreviations when it is a forename, its forename when it is a variant (BILL →
    WILLIAM), sorted."""
    out: dict[str, set[str]] = {}
    with VARIANTS_CSV.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            variant, forename = row["variant"].strip().upper(), row["forename"].strip().upper()
            if variant and forename and variant != forename:
                out.setdefault(forename, set()).add(variant)
                out.setdefault(variant, set()).add(forename)
    return {name: tuple(sorted(others)) for name, others in out.items()}


def related_forenames(name: str) -> set[str]:
    """The name and every name one step away in forename_variants.csv (both directions)."""
    groups = forename_groups()
    out = {name, *groups.get(name, ())}
    for other in list(out):
        out.update(groups.get(other, ()))
    return out


# ------------------------------------------------------------------------------ edits


def _one_edit(name: str, rng: random.Random) -> str:
    """One typing slip in a name: two adjacent letters swapped, one dropped, doubled or
    replaced by its neighbour on the keyboard; rarely the first letter."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    # The first letter is slipped far less often than the rest (it is the one people check).
    later = letters[1:] or letters
    for _ in range(8):
        i = letters[0] if rng.random() < 0.05 else rng.choice(later)
        how = rng.random()
        if how < 0.35 and i + 1 < len(name) and name[i + 1].isalpha() and name[i] != name[i + 1]:
            out = name[:i] + name[i + 1] + name[i] + name[i + 2:]
        elif how < 0.6 and len(letters) > 3:
            out = name[:i] + name[i + 1:]
        elif how < 0.8:
            out = name[:i] + name[i] + name[i:]
        else:
            near = _NEIGHBOURS.get(name[i])
            if not near:
                continue
            out = name[:i] + rng.choice(near) + name[i + 1:]
        if out != name:
            return out
    return name[:-1] if len(letters) > 3 else name + "E"


_NEIGHBOURS = {
    "A": "SQ", "B": "VN", "C": "XV", "D": "SF", "E": "WR", "F": "DG", "G": "FH", "H": "GJ", "I": "UO",
    "J": "HK", "K": "JL", "L": "K", "M": "N", "N": "BM", "O": "IP", "P": "O", "Q": "W", "R": "ET",
    "S": "AD", "T": "RY", "U": "YI", "V": "CB", "W": "QE", "X": "ZC", "Y": "TU", "Z": "X",
}


def _dob_typo(dob: dt.date, rng: random.Random) -> dt.date | None:
    """One digit of YYYY-MM-DD changed, giving another real past date that is not the day and
    month swapped."""
    text = dob.strftime("%Y%m%d")
    for _ in range(20):
        i = rng.choice((2, 3, 3, 5, 6, 7, 7))
        digit = rng.choice([d for d in "0123456789" if d != text[i]])
        candidate = text[:i] + digit + text[i + 1:]
        try:
            new = dt.date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
        if new <= _LAST_DOB and new.year >= 1900 and new != _swapped(dob):
            return new
    return None


def _swapped(dob: dt.date) -> dt.date | None:
    try:
        return dt.date(dob.year, dob.day, dob.month)
    except ValueError:
        return None


def _pnc_typo(pnc: str, rng: random.Random) -> str:
    """'08/123456A' → one digit of the number changed, or another check letter."""
    year, _, rest = pnc.partition("/")
    digits, letter = rest[:-1], rest[-1]
    if rng.random() < 0.7 and digits:
        i = rng.randrange(len(digits))
        new = rng.choice([d for d in "0123456789" if d != digits[i] and (i or d != "0" or len(digits) == 1)])
        return f"{year}/{digits[:i]}{new}{digits[i + 1:]}{letter}"
    return f"{year}/{digits}{rng.choice([c for c in _PNC_LETTERS if c != letter])}"


def new_pnc(rng: random.Random, avoid: str | None = None) -> str:
    """A well-formed PNC id that is not ``avoid``."""
    while True:
        pnc = f"{rng.randint(0, 99):02d}/{rng.randint(1, 9_999_999)}{rng.choice(_PNC_LETTERS)}"
        if pnc != avoid:
            return pnc


def _forenames(sex: str) -> tuple[list[str], list[float]]:
    pool = names.FEMALE_FORENAMES if sex == "FEMALE" else names.MALE_FORENAMES
    return [n for n, _ in pool], [w for _, w in pool]


def other_forename(sex: str, rng: random.Random, avoid: str | None) -> str:
    """A forename of the generator's lists for that sex, not ``avoid`` nor any of its variants
    nor one with the same initial (a twin called JACK beside JOHN is a nickname, not a twin)."""
    taken = related_forenames(avoid) if avoid else set()
    pool, weights = _forenames(sex)
    for _ in range(50):
        name = rng.choices(pool, weights)[0]
        if name not in taken and (not avoid or name[0] != avoid[0]):
            return name
    return next(n for n in pool if n not in taken and (not avoid or n[0] != avoid[0]))


# ------------------------------------------------------------------------------ applicability


def _tokens(value: str | None) -> list[str]:
    return value.split() if value else []


def applicable(person: dict) -> list[tuple[str, str, float]]:
    """The kinds of ``KINDS`` that can change this person."""
    family, given = person["family_name"] or "", person["given_names"] or ""
    first = _tokens(given)[:1]
    dob, pnc = person["date_of_birth"], person["pnc_id"]
    out = []
    for group, kind, weight in KINDS:
        ok = {
            "forename_variant": bool(first) and bool(forename_groups().get(first[0])),
            "given_typo": sum(ch.isalpha() for ch in given) >= 3,
            "middle_dropped": len(_tokens(given)) >= 2,
            "middle_added": len(_tokens(given)) == 1 and len(given) < _GIVEN_MAX - 14,
            "family_typo": sum(ch.isalpha() for ch in family) >= 3,
            "mc_mac": family.startswith(("MC", "MAC")) and len(family) > 4,
            "apostrophe": "'" in family,
            "hyphen": "-" in family or (len(family) < 30 and " " not in family),
            "names_swapped": bool(given) and len(given) <= _FAMILY_MAX and len(family) <= _GIVEN_MAX,
            "dob_typo": dob is not None,
            "dob_day_month": dob is not None and dob.day <= 12 and dob.day != dob.month,
            "pnc_typo": pnc is not None and "/" in pnc,
            "pnc_dropped": pnc is not None,
        }[kind]
        if ok:
            if kind == "hyphen" and "-" not in family:
                weight = 0.6  # a second family name added: rarer than one of two dropped
            out.append((group, kind, weight))
    return out


def choose_kinds(person: dict, rng: random.Random, at_least: int = 1) -> list[str]:
    """1–3 kinds from different groups (six in ten records one, three two, one three)."""
    wanted = max(at_least, rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0])
    candidates = applicable(person)
    chosen: list[str] = []
    groups: set[str] = set()
    while len(chosen) < wanted:
        open_ = [(g, k, w) for g, k, w in candidates if g not in groups]
        if not open_:
            break
        group, kind, _ = rng.choices(open_, [w for *_, w in open_])[0]
        chosen.append(kind)
        groups.add(group)
    return [k for k in ALL_KINDS if k in chosen]  # a fixed order, for readable causes


# ------------------------------------------------------------------------------ varying


def vary(person: dict, kinds: list[str], rng: random.Random) -> tuple[dict, list[str]]:
    """The person as typed again with these slips: (changed fields, the kinds that applied)."""
    family, given = person["family_name"], person["given_names"]
    dob, pnc = person["date_of_birth"], person["pnc_id"]
    done = []
    for kind in kinds:
        before = (family, given, dob, pnc)
        if kind == "forename_variant":
            tokens = given.split()
            tokens[0] = rng.choice(forename_groups()[tokens[0]])
            given = " ".join(tokens)
        elif kind == "given_typo":
            tokens = given.split()
            i = 0 if len(tokens) == 1 or rng.random() < 0.7 else rng.randrange(1, len(tokens))
            if sum(ch.isalpha() for ch in tokens[i]) >= 3:
                tokens[i] = _one_edit(tokens[i], rng)
            given = " ".join(tokens)
        elif kind == "middle_dropped":
            given = given.split()[0]
        elif kind == "middle_added":
            given = f"{given} {other_forename(person['sex'], rng, given.split()[0])}"
        elif kind == "family_typo":
            family = _one_edit(family, rng)
        elif kind == "mc_mac":
            family = _mc_mac(family, rng)
        elif kind == "apostrophe":
            family = family.replace("'", "" if rng.random() < 0.6 else " ")
        elif kind == "hyphen":
            family = _hyphen(family, rng)
        elif kind == "names_swapped":
            family, given = given, family
        elif kind == "dob_typo":
            dob = _dob_typo(dob, rng) or dob
        elif kind == "dob_day_month":
            dob = _swapped(dob) or dob
        elif kind == "pnc_typo":
            pnc = _pnc_typo(pnc, rng)
        elif kind == "pnc_dropped":
            pnc = None
        if (family, given, dob, pnc) != before:
            done.append(kind)
    return {"family_name": family[:_FAMILY_MAX], "given_names": given[:_GIVEN_MAX] if given else given,
            "date_of_birth": dob, "pnc_id": pnc}, done


def _mc_mac(family: str, rng: random.Random) -> str:
    if family.startswith("MAC"):
        rest = family[3:].lstrip()
        return ("MC" if rng.random() < 0.7 else "MC ") + rest
    rest = family[2:].lstrip()
    return ("MAC" if rng.random() < 0.6 else "MC " if not family[2:3] == " " else "MC") + rest


def _hyphen(family: str, rng: random.Random) -> str:
    if "-" in family:
        first, _, second = family.partition("-")
        return rng.choice((first, second, f"{first} {second}", f"{first}{second}"))
    other = rng.choices([n for n, _ in names.SURNAMES[:60]], [w for _, w in names.SURNAMES[:60]])[0]
    if other == family:
        other = "JONES" if family != "JONES" else "SMITH"
    return f"{family}-{other}" if rng.random() < 0.6 else f"{other}-{family}"


# ------------------------------------------------------------------------------ look-alikes


def lookalike_kinds(person: dict) -> list[str]:
    """Which look-alikes this person can have (all need a date of birth)."""
    dob = person["date_of_birth"]
    if dob is None or not person["given_names"]:
        return []
    return list(LOOKALIKE_KINDS)


def lookalike(person: dict, kind: str, rng: random.Random) -> dict:
    """Another person who resembles this one: (family_name, given_names, date_of_birth,
    sex, pnc_id) — never a variation of them (see the module docstring)."""
    family, given, dob, sex = person["family_name"], person["given_names"], person["date_of_birth"], person["sex"]
    pnc = new_pnc(rng, person["pnc_id"]) if rng.random() < 0.25 else None
    if kind == "namesake":
        return {"family_name": family, "given_names": given, "date_of_birth": _far_date(dob, rng),
                "sex": sex, "pnc_id": pnc}
    if kind == "twin":
        twin_sex = sex if sex in ("MALE", "FEMALE") and rng.random() < 0.5 else rng.choice(("MALE", "FEMALE"))
        first = given.split()[0]
        return {"family_name": family, "given_names": other_forename(twin_sex, rng, first),
                "date_of_birth": dob, "sex": twin_sex, "pnc_id": pnc}
    # parent_child: a father and son (mother and daughter) of the same names
    years = rng.randint(25, 40)
    older = dob.year + years > _LAST_DOB.year - 1 or rng.random() < 0.5
    year = dob.year - years if older else dob.year + years
    day = min(dob.day, 28) if dob.month == 2 else dob.day
    other = dt.date(year, dob.month, day)
    other = other.replace(day=rng.randint(1, 28), month=rng.randint(1, 12)) if rng.random() < 0.8 else other
    return {"family_name": family, "given_names": given.split()[0] if rng.random() < 0.5 else given,
            "date_of_birth": other, "sex": sex, "pnc_id": pnc}


def _far_date(dob: dt.date, rng: random.Random) -> dt.date:
    """A date of birth that no typing slip of ``dob`` explains: at least two years away and
    differing in at least three digits, not the day and month swapped."""
    text = dob.strftime("%Y%m%d")
    lo = max(1930, dob.year - 30)
    hi = max(lo + 5, min(_LAST_DOB.year - 10, dob.year + 30))
    while True:
        year = rng.randint(lo, hi)
        candidate = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        if (abs((candidate - dob).days) > 730 and candidate != _swapped(dob)
                and sum(a != b for a, b in zip(text, candidate.strftime("%Y%m%d"))) >= 3):
            return candidate
