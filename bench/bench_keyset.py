"""Key sets at N keys: the home-made IntSet (8 KB bitmap blocks; kept here, in the bench
only, as the yardstick) against ``core.keyset.KeySet`` (pyroaring) and a plain set.

The keys are the tool's: crime references encoded by ``core.refs`` (year * 10^6 + number),
dense numbers within each year, in the order a legacy table yields them (shuffled within a
year), and NOM_IDs (consecutive from 70001). Measures add (the keyed pass's ``claim``),
contains (hits and misses), ascending iteration (``sorted_ints``, the link pass),
``without`` (the census: target keys less accepted and rejected), the pickled size (sent to
workers) and the memory held (tracemalloc; pyroaring's C allocations are not traced, so its
figure is its serialized size, which is what Roaring keeps in memory to within a few %).

    python bench/bench_keyset.py [N]        # default 1,000,000
"""

from __future__ import annotations

import gc
import heapq
import pickle
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.keyset import KeySet  # noqa: E402


class IntSet:
    """The key set the tool used before pyroaring (core/intset.py), integer keys only."""

    _SHIFT = 16
    _BLOCK_BYTES = (1 << 16) >> 3
    _MASK = (1 << _SHIFT) - 1

    def __init__(self) -> None:
        self._blocks: dict[int, bytearray] = {}
        self._other: set = set()
        self._count = 0

    def add(self, key) -> bool:
        high = key >> self._SHIFT
        block = self._blocks.get(high)
        if block is None:
            if key in self._other:
                return False
            if (len(self._blocks) + 1) * self._BLOCK_BYTES > (1 << 20) + 16 * (self._count + 1):
                self._other.add(key)
                self._count += 1
                return True
            block = self._blocks[high] = bytearray(self._BLOCK_BYTES)
        low = key & self._MASK
        bit = 1 << (low & 7)
        if block[low >> 3] & bit or key in self._other:
            return False
        block[low >> 3] |= bit
        self._count += 1
        return True

    def __contains__(self, key) -> bool:
        block = self._blocks.get(key >> self._SHIFT)
        if block is not None:
            low = key & self._MASK
            if block[low >> 3] & (1 << (low & 7)):
                return True
        return key in self._other

    def __len__(self) -> int:
        return self._count

    def sorted_ints(self):
        return heapq.merge(self._block_ints(), sorted(self._other))

    def _block_ints(self):
        for high in sorted(self._blocks):
            block = self._blocks[high]
            base = high << self._SHIFT
            for index in range(len(block)):
                byte = block[index]
                if byte:
                    start = base + (index << 3)
                    for bit in range(8):
                        if byte >> bit & 1:
                            yield start + bit

    def without(self, *others):
        for high in sorted(self._blocks):
            bits = int.from_bytes(self._blocks[high], "little")
            for other in others:
                if isinstance(other, IntSet) and high in other._blocks:
                    bits &= ~int.from_bytes(other._blocks[high], "little")
            base = high << self._SHIFT
            while bits:
                lowest = bits & -bits
                key = base + lowest.bit_length() - 1
                bits ^= lowest
                if not any(key in other for other in others):
                    yield key
        for key in sorted(self._other):
            if not any(key in other for other in others):
                yield key


class PlainSet(set):
    def add(self, key) -> bool:  # the interface's add (a bool), as the others
        if key in self:
            return False
        set.add(self, key)
        return True

    def sorted_ints(self):
        return iter(sorted(self))

    def without(self, *others):
        rest = set(self)
        for other in others:
            rest.difference_update(other)
        return iter(sorted(rest))


def crime_keys(n: int, rng: random.Random) -> list[int]:
    """n encoded crime references over 12 years, each year's numbers dense from 1, in the
    order of a table scan (years in turn, numbers shuffled within the year)."""
    per_year = -(-n // 12)
    keys = []
    for year in range(12, 24):
        numbers = list(range(1, per_year + 1))
        rng.shuffle(numbers)
        keys.extend(year * 1_000_000 + number for number in numbers)
    return keys[:n]


def measure(kind, keys: list[int], probes: list[int]) -> dict:
    gc.collect()
    tracemalloc.start()
    s = kind()
    add = s.add
    for k in keys:
        add(k + 1)  # a new int each, as the encoder makes them (a set keeps them)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del s, add
    start = time.perf_counter()
    s = kind()
    add = s.add
    for k in keys:
        add(k)
    t_add = time.perf_counter() - start
    start = time.perf_counter()
    hits = sum(1 for k in probes if k in s)
    t_contains = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(1 for _ in s.sorted_ints())
    t_iter = time.perf_counter() - start
    assert count == len(set(keys)) == len(s)
    # the census: the target's keys (the accepted ones, 0.1% extra) less accepted and rejected
    target = kind()
    for k in keys:
        target.add(k)
    for k in range(99_000_001, 99_000_001 + len(keys) // 1000):
        target.add(k)
    start = time.perf_counter()
    left = sum(1 for _ in target.without(s, set()))
    t_without = time.perf_counter() - start
    assert left == len(keys) // 1000
    pickled = len(pickle.dumps(s))
    held = len(s._ints.serialize()) if kind is KeySet else traced
    return dict(add=t_add, contains=t_contains, iterate=t_iter, without=t_without, pickled=pickled, held=held,
                hits=hits)


def main(n: int = 1_000_000) -> list[tuple]:
    rng = random.Random(19)
    patterns = {"crime refs": crime_keys(n, rng), "NOM_IDs": list(range(70_001, 70_001 + n))}
    rows = []
    for name, keys in patterns.items():
        probes = keys[::2] + [k + 500_000 for k in keys[::2]]  # half hits, half (mostly) misses
        for kind in (IntSet, KeySet, PlainSet):
            best = None
            for _ in range(5):
                m = measure(kind, keys, probes)
                best = m if best is None else {k: min(best[k], m[k]) for k in m}
            rows.append((name, kind.__name__, best))
    print(f"key sets at {n:,} keys (min of 5; seconds; sizes in KB)")
    print(f"{'keys':<11} {'set':<8} {'add':>6} {'contains':>9} {'iterate':>8} {'without':>8} {'held KB':>9} {'pickled KB':>11}")
    for name, kind, m in rows:
        print(f"{name:<11} {kind:<8} {m['add']:6.2f} {m['contains']:9.2f} {m['iterate']:8.2f} {m['without']:8.3f} "
              f"{m['held'] / 1024:9,.0f} {m['pickled'] / 1024:11,.0f}")
    return rows


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
