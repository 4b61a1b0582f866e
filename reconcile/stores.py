"""The two stores of a reconciliation, opened read-only, with their tables.

The reconciler reads the legacy tables and the five iOPS tables (never a ``mig_`` table). The
main process and each worker process open them the same way: ``open_stores``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import schema
from core.db import open_legacy, open_target_read_only, refuse_same_store, store_errors
from core.errors import ForeignSchemaError

#: iOPS tables the reconciler reads (never the tool's own mig_ tables).
IOPS_TABLES = schema.TARGET_TABLES


@dataclass(frozen=True)
class Stores:
    legacy: Engine
    target: Engine
    legacy_tables: dict[str, sa.Table]
    target_tables: dict[str, sa.Table]


@contextlib.contextmanager
def open_stores(legacy_url: str, target_url: str) -> Iterator[Stores]:
    """Both stores, read-only (a write would fail in the database itself), and their tables;
    disposed of on leaving the block."""
    legacy = open_legacy(legacy_url)
    try:
        refuse_same_store(legacy, target_url)  # comparing a store with itself proves nothing
        target = open_target_read_only(target_url)
        try:
            with store_errors(legacy, "legacy"):
                legacy_tables = schema.legacy_tables(legacy)
            yield Stores(legacy, target, legacy_tables, target_iops_tables(target))
        finally:
            target.dispose()
    finally:
        legacy.dispose()


def target_iops_tables(engine: Engine) -> dict[str, sa.Table]:
    """The five iOPS tables of this store (resolved to their real names); error if absent."""
    with store_errors(engine, "target"):
        inspector = sa.inspect(engine)
        actual = {name.lower(): name for name in inspector.get_table_names()}
        missing = [name for name in IOPS_TABLES if name not in actual]
        if missing:
            raise ForeignSchemaError(
                f"the target store has no {', '.join(missing)} table(s): is this an iOPS store?"
            )
        md = sa.MetaData()
        tables = {}
        for name in IOPS_TABLES:
            table = schema.target_metadata.tables[name]
            have = {c["name"].lower() for c in inspector.get_columns(actual[name])}
            lacking = [c.name for c in table.columns if c.name not in have]
            if lacking:
                raise ForeignSchemaError(
                    f"target table {name!r} lacks column(s) {', '.join(lacking)} of iops-target.md"
                )
            tables[name] = table if actual[name] == name else table.to_metadata(md, name=actual[name])
    return tables
