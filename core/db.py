"""Connections to the stores, and every difference between database engines.

Engine differences live here and only here: read-only sessions, table-name case,
creating/dropping scratch databases, streaming cursors, error translation. The rest of the
tool speaks SQLAlchemy Core and never asks which dialect it is on.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from core.errors import ConfigError, StoreUnavailable, UsageError

# psycopg logs a warning when it cleans up after a connection that was just lost; with no
# logging configured, Python prints it to stderr, a second line after our one-line error.
# (An application that configures logging still receives it.)
logging.getLogger("psycopg").addHandler(logging.NullHandler())

#: Rows fetched per round trip when streaming (``yield_per``).
STREAM_CHUNK = 5000


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL or raise a one-line ``UsageError``."""
    try:
        return make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError; any failure means the same to a user
        raise UsageError(
            f"not a database URL: {mask_url(url)!r} "
            "(expected e.g. sqlite:///opus.db, postgresql+psycopg://user@host/db, mysql+pymysql://root@host/db)"
        ) from None


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***`` — the only form ever printed or written."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Not parseable: mask anything between "://user:" and "@" by hand.
        import re

        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _create_engine(url: URL, **kwargs) -> Engine:
    try:
        # hide_parameters: driver errors must never echo row values (intelligence text) into a message.
        return sa.create_engine(url, hide_parameters=True, **kwargs)
    except ModuleNotFoundError as exc:
        raise ConfigError(_missing_driver_message(exc.name, url)) from None
    except sa.exc.NoSuchModuleError:
        raise UsageError(f"unknown database dialect {url.drivername!r} in {mask_url(url)}") from None
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"bad database URL {mask_url(url)}: {exc}") from None


# Import name -> the pip package that provides it, where they differ.
_PIP_PACKAGE = {"MySQLdb": "mysqlclient", "psycopg2": "psycopg2-binary"}
# The driver this tool installs for each server, to suggest instead.
_INSTALLED_DRIVER = {"postgresql": "postgresql+psycopg://", "mysql": "mysql+pymysql://",
                     "mariadb": "mariadb+pymysql://"}


def _missing_driver_message(module: str | None, url: URL) -> str:
    package = _PIP_PACKAGE.get(module or "", module)
    message = f"the database driver {module!r} for {url.drivername} is not installed: pip install {package}"
    installed = _INSTALLED_DRIVER.get(url.get_backend_name())
    if installed and not url.drivername.startswith(installed.rstrip(":/")):
        message += f", or write the URL as {installed}... (a driver this tool installs)"
    return message


def open_legacy(url: str) -> Engine:
    """An engine on the OPUS store that cannot write (see ``_read_only_engine``)."""
    u = parse_url(url)
    if u.get_backend_name() == "sqlite" and not _sqlite_file(u).is_file():
        raise UsageError(f"legacy store not found: {u.database} (run `generate --legacy {mask_url(u)}` first?)")
    engine = _read_only_engine(u)
    check_connection(engine, "legacy")
    return engine


def open_target_read_only(url: str) -> Engine:
    """The iOPS store opened so that it cannot be written (the reconciler; see
    ``_read_only_engine``). A SQLite file that does not exist is an error, never silently
    created empty (``open_target(read_only=True)`` gives None for it instead)."""
    u = parse_url(url)
    if u.get_backend_name() == "sqlite":
        path = u.database or ""
        if not path or path == ":memory:":
            raise UsageError("the target store must be a SQLite file, not an in-memory database")
        if not Path(path).is_file():
            raise UsageError(f"target store not found: {path} (check --target)")
    engine = _read_only_engine(u)
    check_connection(engine, "target")
    return engine


def open_target(url: str, *, read_only: bool = False) -> Engine | None:
    """An engine on the iOPS store.

    ``read_only`` (the reconciler, dry runs): the store cannot be written through it, and a
    SQLite file that does not exist yet gives ``None`` (an empty store) instead of creating it.
    """
    u = parse_url(url)
    backend = u.get_backend_name()
    _check_backend(backend)
    if read_only:
        if backend == "sqlite" and not _sqlite_file(u).is_file():
            return None
        engine = _read_only_engine(u)
    elif backend == "sqlite":
        parent = _sqlite_file(u).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"folder for the target store does not exist: {parent}")
        engine = _create_engine(u)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets the reconciler read while a migration writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    else:
        engine = _create_engine(u, pool_pre_ping=True)
    check_connection(engine, "target")
    return engine


def _check_backend(backend: str) -> None:
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise UsageError(f"unsupported database {backend!r}: use sqlite, postgresql or mysql/mariadb")


def _sqlite_file(u: URL) -> Path:
    path = u.database or ""
    if not path or path == ":memory:":
        raise UsageError("a store must be a SQLite file, not an in-memory database")
    return Path(path)


def _read_only_engine(u: URL) -> Engine:
    """Writes through this engine fail in the database itself.

    SQLite opens the file with ``mode=ro``; PostgreSQL sessions start with
    ``default_transaction_read_only``; MariaDB sessions are ``SET SESSION TRANSACTION READ ONLY``.
    """
    backend = u.get_backend_name()
    _check_backend(backend)
    if backend == "sqlite":
        ro = URL.create("sqlite", database=f"file:{_sqlite_file(u).resolve()}", query={"mode": "ro", "uri": "true"})
        engine = _create_engine(ro)
        engine.display_url = u  # what messages show: the user's URL, not our rewrite
        return engine
    if backend == "postgresql":
        return _create_engine(u, connect_args={"options": "-c default_transaction_read_only=on"})
    engine = _create_engine(u)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")

    return engine


def check_connection(engine: Engine, role: str) -> None:
    with store_errors(engine, role):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


@contextlib.contextmanager
def store_errors(engine: Engine | None, role: str) -> Iterator[None]:
    """Turn driver errors into one-line ``StoreUnavailable`` messages (no traceback, no password)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if not _store_failure(exc):
            raise
        where = mask_url(getattr(engine, "display_url", engine.url)) if engine is not None else role
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        raise StoreUnavailable(f"{role} store {where}: {reason}") from None


def _store_failure(exc: sa.exc.DBAPIError) -> bool:
    """Errors that mean the store cannot be used, as opposed to a bug in a statement.

    Connection refused or lost, locked (Operational/InterfaceError); and a *bare*
    ``DatabaseError`` — not a subclass such as ``IntegrityError`` — which is how SQLite says the
    file itself is unusable ("file is not a database", "database disk image is malformed").
    """
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or type(exc) is sa.exc.DatabaseError


@contextlib.contextmanager
def connect(engine: Engine, role: str) -> Iterator[sa.Connection]:
    """A connection to the ``role`` store for a ``with`` block. Failing to get one, and losing
    the store while closing it (a connection the server cut cannot even roll back), is
    ``StoreUnavailable`` — never a driver error."""
    with store_errors(engine, role):
        conn = engine.connect()
    try:
        yield conn
    finally:
        with store_errors(engine, role):
            conn.close()


def stream(conn: sa.Connection, statement) -> sa.Result:
    """Execute a SELECT as a server-side stream, ``STREAM_CHUNK`` rows per round trip."""
    return conn.execution_options(stream_results=True, yield_per=STREAM_CHUNK).execute(statement)


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """executemany-insert ``rows`` (dicts with the same keys) with the least per-row overhead.

    SQLAlchemy's executemany builds and type-processes a parameter set per row, which costs
    more than the database insert itself at migration volumes. Here the INSERT is compiled
    once for this engine, each column's bind processor (e.g. UTC timestamps) is looked up
    once, and the driver gets plain tuples or dicts in its own parameter style.
    """
    if not rows:
        return
    dialect = conn.dialect
    columns = list(rows[0])
    shared: dict = {}  # column type -> its memo: one per call, shared by the columns of that type
    processors = {name: _bind_processor(table.c[name].type, dialect, shared) for name in columns}
    if dialect.name == "postgresql":
        _copy_in(conn, table, columns, _positional_params(rows, columns, processors))
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=columns)
    if compiled.positional:
        params = _positional_params(rows, list(compiled.positiontup), processors)
    else:
        convert = [(name, p) for name, p in processors.items() if p is not None]
        params = [dict(row) for row in rows]
        for values in params:
            for name, process in convert:
                if values[name] is not None:
                    values[name] = process(values[name])
    conn.exec_driver_sql(compiled.string, params)


def _positional_params(rows: list[dict], order: list[str], processors: dict) -> list[tuple]:
    """Each row as a tuple of driver values in ``order``, bind processors applied."""
    values_of = operator.itemgetter(*order)
    params = [(values_of(row),) for row in rows] if len(order) == 1 else [values_of(row) for row in rows]
    convert = [(i, processors[name]) for i, name in enumerate(order) if processors[name] is not None]
    if convert:
        for n, values in enumerate(params):
            values = list(values)
            for i, process in convert:
                if values[i] is not None:
                    values[i] = process(values[i])
            params[n] = tuple(values)
    return params


def _bind_processor(column_type, dialect, shared: dict):
    """The column's bind processor; for timestamps, remembered per value for this call.

    A batch repeats instants (a crime's recorded_at is also its created_at, often its
    updated_at), and converting one costs more than the insert of the value itself. Columns
    with the same processor share one memo (``shared``), so the instant is converted once.
    """
    process = column_type._cached_bind_processor(dialect)  # noqa: SLF001
    if process is None or not isinstance(getattr(column_type, "impl", column_type), sa.DateTime):
        return process
    kind = (type(column_type), repr(column_type))  # equal repr, equal conversion (UTCDateTime())
    if kind in shared:
        return shared[kind]
    done: dict = {}

    def remembered(value):
        out = done.get(value)
        if out is None:
            out = done[value] = process(value)
        return out

    shared[kind] = remembered
    return remembered


def _copy_in(conn: sa.Connection, table: sa.Table, columns: list[str], params: list[tuple]) -> None:
    """PostgreSQL: ``COPY ... FROM STDIN`` inside the caller's transaction.

    psycopg's executemany sends one prepared INSERT per row (pipelined): ~15 us of client CPU
    per row, half the migration's CPU on a PostgreSQL target. COPY streams the rows in one
    statement, formatted by psycopg's C code. Identifiers are composed by ``psycopg.sql``,
    never by string formatting. Driver errors are turned into SQLAlchemy's (and a lost
    connection invalidated) exactly as ``execute`` would, so ``store_errors`` still applies.
    """
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    dbapi = conn.dialect.loaded_dbapi
    try:
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for values in params:
                copy.write_row(values)
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate()
        raise sa.exc.DBAPIError.instance(statement.as_string(None), None, exc, dbapi.Error,
                                         connection_invalidated=lost) from exc


# --- table-name case -------------------------------------------------------------------
# The OPUS DDL uses unquoted upper-case names. PostgreSQL folds them to lower case, MariaDB
# keeps them as written (and is case-sensitive on Linux), SQLite does not care. We declare
# tables in lower case and resolve each to the name the store really has.


def resolve_tables(engine: Engine, metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Map each declared (lower-case) table name to a Table bound to the store's real name."""
    with store_errors(engine, "legacy"):
        actual = {name.lower(): name for name in sa.inspect(engine).get_table_names()}
    resolved_md = sa.MetaData()
    tables = {}
    for name, table in metadata.tables.items():
        real = actual.get(name.lower())
        if real is None:
            tables[name] = None
            continue
        tables[name] = table.to_metadata(resolved_md, name=real) if real != name else table
    return tables


def quote_reserved_words(ddl: str, dialect) -> str:
    """Quote OPUS column names that are reserved words on this engine.

    ``opus-legacy.sql`` claims to be portable, but ``DIV`` is MariaDB's integer-division
    operator, so ``DIV CHAR(2)`` is a syntax error there. Quote it the engine's way.
    """
    import re

    if dialect.name != "mysql":
        return ddl
    quote = dialect.identifier_preparer.quote_identifier
    return re.sub(r"(?m)^(\s*)DIV(\s+CHAR)", lambda m: m.group(1) + quote("DIV") + m.group(2), ddl)


# --- scratch databases on servers (tests and benchmarks) ------------------------------------


def server_url(backend: str, database: str | None = None) -> URL:
    """URL of the local PostgreSQL or MariaDB server described in DEVELOPERS.md."""
    if backend == "postgresql":
        host = os.environ.get("OPUS2IOPS_PG_HOST", "127.0.0.1")
        return URL.create("postgresql+psycopg", username="postgres", host=host, port=5432,
                          database=database or "postgres")
    if backend == "mysql":
        host = os.environ.get("OPUS2IOPS_MYSQL_HOST", "127.0.0.1")
        return URL.create("mysql+pymysql", username="root", host=host, port=3306,
                          database=database, query={"charset": "utf8mb4"})
    raise ValueError(backend)


def create_database(backend: str, name: str) -> URL:
    """Create an empty database ``name`` on the local server and return its URL."""
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = admin.dialect.identifier_preparer.quote(name)
            if backend == "mysql":
                conn.execute(sa.text(f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            else:
                conn.execute(sa.text(f"CREATE DATABASE {quoted} ENCODING 'UTF8' TEMPLATE template0"))
    finally:
        admin.dispose()
    return server_url(backend, name)


def drop_database(backend: str, name: str) -> None:
    admin = sa.create_engine(server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = admin.dialect.identifier_preparer.quote(name)
            if backend == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
    finally:
        admin.dispose()
