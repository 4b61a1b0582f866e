"""Progress bars for long work: tqdm on a terminal, silent in pipes or with ``--quiet``."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    return not _quiet and sys.stderr.isatty()


@contextmanager
def bar(desc: str, total: int | None = None, unit: str = "rows") -> Iterator[tqdm]:
    """A progress bar (count, rate, ETA) that is a no-op when progress is disabled."""
    with tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not enabled(),
              dynamic_ncols=True, leave=True, file=sys.stderr) as pbar:
        yield pbar
