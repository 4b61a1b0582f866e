"""Unkeyed matching: pair new records that carry no legacy key with the live legacy records
left without a keyed counterpart (``reconciliation.md``, Matching 2; method after
``../shared/notes/linkage.md``).

1. **Blocking** — candidate pairs share an equality key *and* fall within ± 7 days of each
   other: full postcode; postcode district + offence group; family-name prefix of a linked
   person; 250 m / 1 km grid cell; house number + street; offence code (± 1 day). Each
   block is capped to the ``BLOCK_CAP`` legacy records nearest in time, so one busy premises
   or one very common surname cannot blow the candidate pairs up.
2. **Scoring** — Fellegi-Sunter style: per field a *level* and its log2-odds weight, summed:
   recorded date/time, offence (same code / same group), **one** combined place comparison
   (coordinates, postcode, address — scored together, not separately, so a busy shop's
   postcode is not counted three times), linked people's names, free text. A postcode
   shared by many legacy candidates (a busy premises) is down-weighted. The sum ``W`` becomes
   a 0–100 score ``100 / (1 + 2^-(W - OFFSET))``.
3. **Bands** — ``AUTO`` when the score reaches ``auto_threshold`` *and* the pair is clearly
   ahead of the runner-up (``MARGIN`` log2-odds over any other pair of either record);
   ``REVIEW`` when the score reaches ``review_threshold`` but not that; below, no pair.
4. **One-to-one** — greedily by descending weight: each legacy record and each new record
   is paired at most once.

Records are small ``SimRecord`` objects built from *mapped* values (legacy side) and stored
values (new side), normalised once here. String similarity is rapidfuzz's.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from rapidfuzz import fuzz

from core.schema import as_utc

AUTO = "AUTO"
REVIEW = "REVIEW"

WINDOW_MINUTES = 7 * 24 * 60  # the date window of every block
TIGHT_WINDOW_MINUTES = 24 * 60  # offence-code-only block: a much weaker key, a tighter window
BLOCK_CAP = 40  # legacy records per block and new record, nearest in time first
OFFSET = 10.0  # log2-odds at which the score is 50
MARGIN = 3.0  # log2-odds an AUTO pair must lead its runner-up by (8× more likely)
TEXT_PREFIX = 400  # characters of free text compared (the start carries the substance)

_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)


def _fold(value) -> str:
    if value is None:
        return ""
    return " ".join(_NON_WORD.sub(" ", str(value)).split()).casefold()


def _sorted_tokens(names: Iterable[str]) -> str:
    return " ".join(sorted({tok for name in names for tok in _fold(name).split()}))


@dataclass(slots=True)
class SimRecord:
    """One record as the matcher sees it (all text already folded)."""

    ref: str  # legacy_ref (legacy side) or crime_ref (new side)
    minute: int | None  # recorded_at, minutes since the epoch (UTC)
    offence_code: str
    offence_group: str
    postcode: str  # 'M1 1AA' or ''
    address: str
    easting: int | None
    northing: int | None
    names: str  # sorted distinct name tokens of all linked people
    surnames: tuple[str, ...]  # folded family names of linked people
    text: str  # folded free text prefix

    @property
    def outward(self) -> str:
        return self.postcode.split(" ", 1)[0] if self.postcode else ""

    @property
    def house(self) -> str:
        tokens = self.address.split()
        if len(tokens) >= 2 and tokens[0][:1].isdigit():
            return f"{tokens[0]} {tokens[1][:5]}"
        return ""


def make_record(ref: str, *, recorded_at: dt.datetime | None, offence_code=None, offence_group=None,
                postcode=None, address=None, easting=None, northing=None,
                people: Sequence[tuple[str | None, str | None]] = (), text=None) -> SimRecord:
    """Build a record from mapped or stored values; ``people`` = (family, given) names."""
    minute = None
    if recorded_at is not None:
        if recorded_at.tzinfo is None:
            recorded_at = as_utc(recorded_at)
        minute = int(recorded_at.timestamp() // 60)
    try:
        e = int(easting) if easting is not None else None
        n = int(northing) if northing is not None else None
    except (TypeError, ValueError):
        e = n = None
    return SimRecord(
        ref=ref,
        minute=minute,
        offence_code=(offence_code or "").strip().upper(),
        offence_group=(offence_group or "").strip().casefold(),
        postcode=" ".join((postcode or "").upper().split()),
        address=_fold(address),
        easting=e if e and n else None,
        northing=n if e and n else None,
        names=_sorted_tokens(f"{f or ''} {g or ''}" for f, g in people),
        surnames=tuple(sorted({_fold(f) for f, _ in people if _fold(f)})),
        text=_fold((text or "")[: TEXT_PREFIX * 2])[:TEXT_PREFIX],
    )


@dataclass(frozen=True)
class Pair:
    legacy_ref: str
    new_ref: str
    score: float  # 0–100, one decimal
    band: str  # AUTO | REVIEW
    weight: float  # the log2-odds sum (for tests and tuning)


# ---------------------------------------------------------------------------------- blocking


def _block_keys(r: SimRecord) -> list[tuple[tuple, int]]:
    """(equality key, window in minutes) pairs of one record."""
    keys: list[tuple[tuple, int]] = []
    if r.postcode:
        keys.append((("pc", r.postcode), WINDOW_MINUTES))
        if r.offence_group:
            keys.append((("og", r.outward, r.offence_group), WINDOW_MINUTES))
    for surname in r.surnames:
        keys.append((("sn", surname[:4]), WINDOW_MINUTES))
    if r.easting is not None:
        keys.append((("g250", r.easting // 250, r.northing // 250), WINDOW_MINUTES))
        keys.append((("g1k", r.easting // 1000, r.northing // 1000, r.offence_group), WINDOW_MINUTES))
    if r.house:
        keys.append((("hs", r.house), WINDOW_MINUTES))
    if r.offence_code:
        keys.append((("oc", r.offence_code), TIGHT_WINDOW_MINUTES))
    return keys


class _Blocks:
    """Legacy records indexed by block key, each block sorted by time."""

    def __init__(self, legacy: Sequence[SimRecord]) -> None:
        blocks: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for i, r in enumerate(legacy):
            if r.minute is None:
                continue
            for key, _ in _block_keys(r):
                blocks[key].append((r.minute, i))
        self.minutes: dict[tuple, list[int]] = {}
        self.members: dict[tuple, list[int]] = {}
        for key, items in blocks.items():
            items.sort()
            self.minutes[key] = [m for m, _ in items]
            self.members[key] = [i for _, i in items]

    def candidates(self, r: SimRecord, cap: int) -> set[int]:
        found: set[int] = set()
        if r.minute is None:
            return found
        for key, window in _block_keys(r):
            minutes = self.minutes.get(key)
            if minutes is None:
                continue
            lo = bisect.bisect_left(minutes, r.minute - window)
            hi = bisect.bisect_right(minutes, r.minute + window)
            if hi - lo > cap:  # cap the block: keep the records nearest in time
                centre = bisect.bisect_left(minutes, r.minute, lo, hi)
                lo = max(lo, min(centre - cap // 2, hi - cap))
                hi = lo + cap
            found.update(self.members[key][lo:hi])
        return found


def candidate_pairs(legacy: Sequence[SimRecord], new: Sequence[SimRecord], cap: int = BLOCK_CAP) -> list[tuple[int, int]]:
    """(legacy index, new index) pairs sharing a block within its date window."""
    blocks = _Blocks(legacy)
    pairs = []
    for j, r in enumerate(new):
        for i in sorted(blocks.candidates(r, cap)):
            pairs.append((i, j))
    return pairs


# ----------------------------------------------------------------------------------- scoring


def _pairwise(scorer, left: list[str], right: list[str]) -> list[float]:
    """scorer(left[k], right[k]) for every k (0 where either side is empty). Pair by pair:
    rapidfuzz's cpdist would need numpy, a dependency for a phase of a few seconds."""
    return [scorer(a, b) if a and b else 0.0 for a, b in zip(left, right)]


def _date_weight(a: int | None, b: int | None) -> float:
    if a is None or b is None:
        return 0.0
    delta = abs(a - b)
    if delta <= 60:
        return 4.0
    if delta <= 24 * 60:
        return 2.5
    if delta <= 3 * 24 * 60:
        return 0.5
    if delta <= 7 * 24 * 60:
        return -1.5
    return -5.0


def _offence_weight(a: SimRecord, b: SimRecord) -> float:
    if not a.offence_code or not b.offence_code:
        return 0.0
    if a.offence_code == b.offence_code:
        return 3.0
    if a.offence_group and a.offence_group == b.offence_group:
        return 1.0
    return -2.0


def _place_weight(a: SimRecord, b: SimRecord, address_score: float, postcode_freq: Counter) -> float:
    """One combined comparison of coordinates, postcode and address."""
    dist = None
    if a.easting is not None and b.easting is not None:
        dist = math.hypot(a.easting - b.easting, a.northing - b.northing)
    have_pc = bool(a.postcode and b.postcode)
    pc_eq = have_pc and a.postcode == b.postcode
    have_addr = bool(a.address and b.address)
    addr = address_score if have_addr else 0.0
    if dist is None and not have_pc and not have_addr:
        return 0.0  # nothing to compare: neither evidence for nor against
    if (dist is not None and dist <= 10) or (pc_eq and addr >= 90):
        weight = 7.0
    elif (dist is not None and dist <= 100) or (pc_eq and addr >= 70) or (addr >= 95 and not (have_pc and not pc_eq)):
        weight = 5.0
    elif (dist is not None and dist <= 500) or pc_eq or addr >= 80:
        weight = 2.0
    else:
        return -3.5
    if pc_eq:
        # A busy premises: many legacy candidates share the postcode, so agreeing on it says less.
        weight -= min(3.0, math.log2(max(1, postcode_freq[a.postcode])))
    return weight


def _name_weight(score: float, a: SimRecord, b: SimRecord) -> float:
    if not a.names or not b.names:
        return 0.0
    if score >= 95:
        return 5.0
    if score >= 85:
        return 3.0
    if score >= 70:
        return 0.5
    return -2.5


def _text_weight(score: float, a: SimRecord, b: SimRecord) -> float:
    if not a.text or not b.text:
        return 0.0
    if score >= 95:
        return 4.0
    if score >= 85:
        return 2.5
    if score >= 70:
        return 0.5
    return -1.5


def score_of(weight: float) -> float:
    """log2-odds → 0–100."""
    x = weight - OFFSET
    if x < -60:
        return 0.0
    return 100.0 / (1.0 + 2.0 ** (-x))


def pair_weights(legacy: Sequence[SimRecord], new: Sequence[SimRecord], pairs: Sequence[tuple[int, int]]) -> list[float]:
    """The log2-odds weight of each candidate pair."""
    if not pairs:
        return []
    left = [legacy[i] for i, _ in pairs]
    right = [new[j] for _, j in pairs]
    names = _pairwise(fuzz.token_set_ratio, [r.names for r in left], [r.names for r in right])
    addresses = _pairwise(fuzz.token_sort_ratio, [r.address for r in left], [r.address for r in right])
    texts = _pairwise(fuzz.ratio, [r.text for r in left], [r.text for r in right])
    postcode_freq = Counter(r.postcode for r in legacy if r.postcode)
    weights = []
    for k, (a, b) in enumerate(zip(left, right)):
        weights.append(
            _date_weight(a.minute, b.minute)
            + _offence_weight(a, b)
            + _place_weight(a, b, addresses[k], postcode_freq)
            + _name_weight(names[k], a, b)
            + _text_weight(texts[k], a, b)
        )
    return weights


# ------------------------------------------------------------------------- bands + assignment


def match(legacy: Sequence[SimRecord], new: Sequence[SimRecord], *, auto_threshold: float = 90.0,
          review_threshold: float = 70.0, cap: int = BLOCK_CAP) -> list[Pair]:
    """Pair unkeyed new records with legacy candidates: one-to-one, each pair banded."""
    pairs = candidate_pairs(legacy, new, cap)
    weights = pair_weights(legacy, new, pairs)

    # Best and second-best weight per record (either side), for the runner-up margin.
    best_l: dict[int, list[float]] = defaultdict(list)
    best_n: dict[int, list[float]] = defaultdict(list)
    for (i, j), w in zip(pairs, weights):
        _keep_top2(best_l[i], w)
        _keep_top2(best_n[j], w)

    order = sorted(range(len(pairs)), key=lambda k: (-weights[k], legacy[pairs[k][0]].ref, new[pairs[k][1]].ref))
    used_l: set[int] = set()
    used_n: set[int] = set()
    result: list[Pair] = []
    for k in order:
        i, j = pairs[k]
        w = weights[k]
        score = round(score_of(w), 1)  # bands decided on the score as reported
        if score < review_threshold:
            break
        if i in used_l or j in used_n:
            continue
        used_l.add(i)
        used_n.add(j)
        runner_up = max(_second(best_l[i], w), _second(best_n[j], w))
        clear = w - runner_up >= MARGIN
        band = AUTO if score >= auto_threshold and clear else REVIEW
        result.append(Pair(legacy[i].ref, new[j].ref, score, band, w))
    return result


def _keep_top2(top: list[float], w: float) -> None:
    top.append(w)
    top.sort(reverse=True)
    del top[2:]


def _second(top: list[float], w: float) -> float:
    """The best weight among the *other* pairs of a record (−inf if it has none)."""
    if len(top) < 2:
        return -math.inf
    return top[1] if top[0] == w else top[0]


def differing(a: SimRecord, b: SimRecord) -> list[str]:
    """The compared properties in which two records differ, in words: ``time`` (another
    minute), ``offence`` (code), ``address``, ``postcode``, ``grid`` (easting/northing), ``people``
    (names of linked people), ``text`` (the free text's beginning) — for a reader of a pair."""
    out = []
    if a.minute != b.minute:
        out.append("time")
    if a.offence_code != b.offence_code:
        out.append("offence")
    if a.address != b.address:
        out.append("address")
    if a.postcode != b.postcode:
        out.append("postcode")
    if (a.easting, a.northing) != (b.easting, b.northing):
        out.append("grid")
    if a.names != b.names:
        out.append("people")
    if a.text != b.text:
        out.append("text")
    return out
