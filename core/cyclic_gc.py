"""Python's cyclic garbage collector, run by hand at quiet moments instead of automatically.

Left automatic, its full collections re-traverse everything long-lived again and again —
the mapping's caches, the key sets, each batch's survivors: a third or more of the
migration's and the reconciler's CPU (figures: bench/README.md). Reference counting still
frees at once everything that is not in a cycle, and nothing built per record is in one;
what little else is (connection, transaction and result objects) is collected at each
``collect()`` call, so memory stays flat.

After each collection the survivors are frozen (``gc.freeze``), so the next one traverses
only what was allocated since, not the caches again; they are unfrozen at the end. Frozen
objects are still freed by reference counting.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Callable, Iterator


@contextlib.contextmanager
def manual_cyclic_gc() -> Iterator[Callable[[], None]]:
    """Disable automatic collection inside the block; yield ``collect()`` to call between
    units of work (a batch every so often, an entity, a pass). Restores the caller's state."""
    was_enabled = gc.isenabled()
    freeze = gc.get_freeze_count() == 0  # never unfreeze what a caller of the library froze
    gc.disable()

    def collect() -> None:
        gc.collect()
        if freeze:
            gc.freeze()

    try:
        yield collect
    finally:
        if freeze:
            gc.unfreeze()
        gc.collect()
        if was_enabled:
            gc.enable()
