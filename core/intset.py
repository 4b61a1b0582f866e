"""A compact set of integer keys (the migration's accepted keys, the reconciler's key sets).

Legacy keys are held as integers (a crime reference ``CR/004512/19`` becomes 19004512, a
NOM_ID is itself) in a sparse bitmap: one bit per possible number in each 65,536-number block
that holds any key. A million keys take a few hundred kilobytes instead of the ~60 MB of a
Python set of ints — and pickle as a few byte strings when sent to a worker process.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Iterator


class IntSet:
    """A set of keys: non-negative integers as bits in 8 KB blocks, anything else in a set.

    Blocks are only allocated while they stay cheap — at most 1 MB plus 16 bytes per key held
    (a Python set costs ~60 bytes per int) — so a store of sparse, huge numbers (NOM_IDs
    scattered over 10^12) falls back to the plain set instead of allocating a block per key.
    """

    _SHIFT = 16
    _BLOCK_BYTES = (1 << 16) >> 3
    _MASK = (1 << _SHIFT) - 1

    def __init__(self) -> None:
        self._blocks: dict[int, bytearray] = {}
        self._other: set = set()  # text keys, negative numbers, keys of sparse ranges
        self._count = 0

    def add(self, key) -> bool:
        """Add ``key``; True if it was not held yet. (One look-up: the reconciler adds a
        couple of million keys in its hot loop.)"""
        if type(key) is int and key >= 0:
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
        if key in self._other:
            return False
        self._other.add(key)
        self._count += 1
        return True

    def __contains__(self, key) -> bool:
        if type(key) is int and key >= 0:
            block = self._blocks.get(key >> self._SHIFT)
            if block is not None:
                low = key & self._MASK
                if block[low >> 3] & (1 << (low & 7)):
                    return True
        return key in self._other

    def __len__(self) -> int:
        return self._count

    def sorted_ints(self) -> Iterator[int]:
        """The non-negative integer keys, ascending (the other keys: ``others``)."""
        spilled = sorted(k for k in self._other if type(k) is int and k >= 0)
        return heapq.merge(self._block_ints(), spilled)

    def others(self) -> list:
        """The keys that are not non-negative integers (text, negative numbers), sorted by
        their text so the order is the same on every run."""
        return sorted((k for k in self._other if not (type(k) is int and k >= 0)), key=lambda k: (str(type(k)), str(k)))

    def without(self, *others) -> Iterator:
        """The keys of this set that none of ``others`` (IntSets or plain sets) holds: the
        non-negative integers ascending, then the rest in ``others()`` order.

        Block by block as whole numbers (``int.from_bytes``, AND NOT), so two sets of a million
        keys that nearly coincide cost a few hundred big-integer operations, not a million
        look-ups; what survives is checked against each set in full (keys a set keeps apart
        from its blocks)."""
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
        spilled = sorted(k for k in self._other if type(k) is int and k >= 0)
        for key in itertools.chain(spilled, self.others()):
            if not any(key in other for other in others):
                yield key

    def _block_ints(self) -> Iterator[int]:
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
