"""A compact set of integer keys (the migration's accepted keys, the reconciler's key sets).

Legacy keys are held as integers (a crime reference ``CR/004512/19`` becomes 19004512, a
NOM_ID is itself) in a sparse bitmap: one bit per possible number in each 65,536-number block
that holds any key. A million keys take a few hundred kilobytes instead of the ~60 MB of a
Python set of ints — and pickle as a few byte strings when sent to a worker process.
"""

from __future__ import annotations


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

    def add(self, key) -> None:
        if key in self:
            return
        self._count += 1
        if type(key) is int and key >= 0:
            block = self._blocks.get(key >> self._SHIFT)
            if block is None and (len(self._blocks) + 1) * self._BLOCK_BYTES <= (1 << 20) + 16 * self._count:
                block = self._blocks[key >> self._SHIFT] = bytearray(self._BLOCK_BYTES)
            if block is not None:
                low = key & self._MASK
                block[low >> 3] |= 1 << (low & 7)
                return
        self._other.add(key)

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
