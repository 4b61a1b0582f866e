"""Small hand-written OPUS stores for edge cases: one call, a few rows, every other column defaulted."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Callable, Iterator

import sqlalchemy as sa

from core import schema
from core.db import server_url
from core.digest import row_digest

CRIME_DEFAULTS = {
    "off_code": "TFMV", "rec_date": "15/06/2018", "rec_time": "1430", "from_date": "15/06/2018",
    "from_time": "1200", "to_date": "15/06/2018", "to_time": "1400", "div": "MC", "beat": "MC04",
    "addr_line": "12 OXFORD ROAD, MANCHESTER", "pcode": "M1 5QA", "grid_e": 384000, "grid_n": 397500,
    "status": "F", "disposal": "NFA", "mo_text": "SIDE WINDOW SMASHED, SATNAV TAKEN", "oic": "4521",
    "del_flag": "N", "last_upd": "20180620093000",
}
NOMINAL_DEFAULTS = {
    "surname": "SMITH", "forenames": "JOHN", "dob": "01/02/1980", "sex": "M", "pnc_id": "80/123456A",
    "eth_code": "IC1", "del_flag": "N", "last_upd": "20180101120000",
}
INTEL_DEFAULTS = {
    "submit_date": "01/05/2018", "submit_time": "0900", "src_eval": "B", "int_eval": "2", "handling": "1",
    "subj_nom_id": None, "int_text": "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS", "div": "MC",
    "grid_e": 384376, "grid_n": 398246, "review_date": "01/05/2019", "officer": "1234", "del_flag": "N",
    "last_upd": "20180501090000",
}


def make_legacy(url: str, crimes=(), nominals=(), links=(), intel=()) -> str:
    """Create an OPUS store at ``url`` holding the given rows (dicts of lower-case columns)."""
    engine = sa.create_engine(url)
    schema.create_legacy_schema(engine)
    tables = schema.legacy_tables(engine)
    with engine.begin() as conn:
        for name, rows, defaults in (("crime", crimes, CRIME_DEFAULTS), ("nominal", nominals, NOMINAL_DEFAULTS),
                                     ("intel", intel, INTEL_DEFAULTS), ("crime_nom", links, {})):
            table = tables[name]
            full = []
            for row in rows:
                values = {c.name: None for c in table.columns}
                values.update(defaults)
                values.update(row)
                full.append(values)
            if full:
                conn.execute(table.insert(), full)
    engine.dispose()
    return url


def update_legacy(url: str, table: str, key: dict, **values) -> None:
    """Change legacy rows in place (tests only: the tool itself never writes to OPUS)."""
    engine = sa.create_engine(url)
    t = schema.legacy_tables(engine)[table]
    with engine.begin() as conn:
        conn.execute(t.update().where(*[t.c[k] == v for k, v in key.items()]).values(**values))
    engine.dispose()


def execute(url: str, *statements) -> None:
    """Run ``statements`` against the store at ``url`` in one transaction (fixtures' edits)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for stmt in statements:
                conn.execute(stmt)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """The names of the tables a store has."""
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def table_digests(url: str, tables=schema.TARGET_TABLES) -> dict[str, str | None]:
    """Order-independent digest of every row of each table (absent table → None)."""
    engine = sa.create_engine(url)
    out = {}
    try:
        existing = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            for name in tables:
                if name not in existing:
                    out[name] = None
                    continue
                table = schema.target_metadata.tables[name]
                digests = sorted(row_digest(dict(r)) for r in conn.execute(sa.select(table)).mappings())
                out[name] = hashlib.sha256("".join(digests).encode()).hexdigest() + f":{len(digests)}"
    finally:
        engine.dispose()
    return out


@contextlib.contextmanager
def connection_killer(backend: str) -> Iterator[Callable[[str], int]]:
    """Yield ``kill(database)``: end every other session on that database of the server and
    return how many were ended — ``pg_terminate_backend`` on PostgreSQL, ``KILL`` on MariaDB.
    What the connection-loss tests do to a run in flight."""
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")

    def kill_postgresql(conn, database: str) -> int:
        return conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar_one()

    def kill_mysql(conn, database: str) -> int:
        ids = conn.execute(sa.text("SELECT ID FROM information_schema.PROCESSLIST "
                                   "WHERE DB = :db AND ID <> CONNECTION_ID()"), {"db": database}).scalars().all()
        killed = 0
        for connection_id in ids:
            try:
                conn.execute(sa.text("KILL :id"), {"id": int(connection_id)})
                killed += 1
            except sa.exc.DBAPIError:  # it ended on its own meanwhile
                pass
        return killed

    kill_in = {"postgresql": kill_postgresql, "mysql": kill_mysql}[backend]

    def kill(database: str) -> int:
        with admin.connect() as conn:
            return kill_in(conn, database)

    try:
        yield kill
    finally:
        admin.dispose()
