"""The discrepancy spool: rows on disk, sorted, re-iterable — so a million discrepancies cost
the memory of one sort run, not of a million objects.

Rows are appended in any order while the reconciler streams. Every ``RUN_ROWS`` rows the
buffer is sorted and written as a run file; ``close()`` merges the runs (``heapq.merge``) into
one file sorted by entity, category and legacy reference (the order of ``reconcile.model``'s
``ENTITIES`` and ``CATEGORIES``; references that are whole numbers — person ``NOM_ID`` — in
numeric order). Iterating the spool reads that file again each time.

The files live in a private temporary folder (mode 0700) removed when the spool is
garbage-collected or ``discard()`` is called. A process killed outright (SIGKILL, out of
memory) removes nothing, so the folder is named with the process id (``o2i-spool-<pid>-…``)
and each new spool first removes the folders of processes that no longer exist. They hold what the reports hold — never
intelligence text (the reconciler puts fingerprints in the rows before they get here).
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Iterable, Iterator

from reconcile.model import CATEGORIES, DISCREPANCY_COLUMNS, ENTITIES, Discrepancy

#: Rows sorted in memory before a run is written (≈ 50–100 MB at worst).
RUN_ROWS = 100_000

_ENTITY_ORDER = {name: i for i, name in enumerate(ENTITIES)}
_CATEGORY_ORDER = {name: i for i, name in enumerate(CATEGORIES)}


def _ref_key(ref: str | None) -> str:
    if not ref:
        return ""
    # Whole numbers (NOM_ID) sort numerically; everything else as text.
    return ref.zfill(20) if ref.isdigit() else ref


def sort_key(d: Discrepancy) -> tuple:
    return (
        _ENTITY_ORDER.get(d.entity, len(ENTITIES)), d.entity,
        _CATEGORY_ORDER.get(d.category, len(CATEGORIES)), d.category,
        _ref_key(d.legacy_ref), d.new_ref or "", d.field or "", d.detail or "",
    )


def _encode(d: Discrepancy) -> str:
    return json.dumps(d.as_tuple(), ensure_ascii=False, separators=(",", ":"))


def _decode(line: str) -> Discrepancy:
    return Discrepancy(*json.loads(line))


_PREFIX = "o2i-spool-"


def remove_stale_spools(directory: str | os.PathLike | None = None) -> list[Path]:
    """Remove the spool folders left in ``directory`` (default: the system's temporary folder)
    by processes that have ended without cleaning up; return them. A folder of a live
    process, or one this cannot tell about, is left alone."""
    removed = []
    base = Path(directory or tempfile.gettempdir())
    try:
        candidates = list(base.glob(f"{_PREFIX}*-*"))
    except OSError:
        return removed
    for path in candidates:
        pid = path.name[len(_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, another user's
        return True
    return True


class DiscrepancySpool:
    """Append ``Discrepancy`` rows; ``close()``; then iterate (as often as needed) in sorted order."""

    def __init__(self, directory: str | os.PathLike | None = None, run_rows: int = RUN_ROWS) -> None:
        remove_stale_spools(directory)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=directory))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        self._run_rows = run_rows
        self._buffer: list[Discrepancy] = []
        self._runs: list[Path] = []
        self._merged: Path | None = None
        self._count = 0

    # --- writing ---------------------------------------------------------------------

    def add(self, d: Discrepancy) -> None:
        if self._merged is not None:
            raise RuntimeError("spool is closed")
        self._buffer.append(d)
        self._count += 1
        if len(self._buffer) >= self._run_rows:
            self._flush()

    def extend(self, rows: Iterable[Discrepancy]) -> None:
        for d in rows:
            self.add(d)

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=sort_key)
        path = self._dir / f"run-{len(self._runs):05d}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for d in self._buffer:
                fh.write(_encode(d))
                fh.write("\n")
        self._runs.append(path)
        self._buffer = []

    def close(self) -> "DiscrepancySpool":
        """Sort and merge everything written so far; the spool becomes read-only."""
        if self._merged is not None:
            return self
        self._flush()
        merged = self._dir / "discrepancies.jsonl"
        if len(self._runs) == 1:
            self._runs[0].rename(merged)
        else:
            with merged.open("w", encoding="utf-8", newline="\n") as out:
                streams = [self.read_file(path) for path in self._runs]
                for d in heapq.merge(*streams, key=sort_key):
                    out.write(_encode(d))
                    out.write("\n")
            for path in self._runs:
                path.unlink()
        if not self._runs:
            merged.touch()
        self._runs = []
        self._merged = merged
        return self

    # --- reading ---------------------------------------------------------------------

    @staticmethod
    def read_file(path: Path) -> Iterator[Discrepancy]:
        """The rows of one of the spool's files, in order."""
        with path.open(encoding="utf-8", newline="\n") as fh:
            for line in fh:
                yield _decode(line)

    def __iter__(self) -> Iterator[Discrepancy]:
        """Every row, in order."""
        if self._merged is None:
            raise RuntimeError("close() the spool before reading it")
        return self.read_file(self._merged)

    def __len__(self) -> int:
        return self._count

    def discard(self) -> None:
        """Remove the files now (otherwise they go when the spool is garbage-collected)."""
        self._finalizer()


__all__ = ["DiscrepancySpool", "sort_key", "DISCREPANCY_COLUMNS"]
