"""Connections to the stores, and every difference between database engines.

Engine differences live here and only here: read-only sessions, table-name case,
creating/dropping scratch databases, streaming cursors, error translation. The rest of the
tool speaks SQLAlchemy Core and never asks which dialect it is on.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import os
import re
import secrets
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from core.errors import ConfigError, Opus2IopsError, StoreUnavailable, UsageError

# psycopg logs a warning when it cleans up after a connection that was just lost; with no
# logging configured, Python prints it to stderr, a second line after our one-line error.
# (An application that configures logging still receives it.)
logging.getLogger("psycopg").addHandler(logging.NullHandler())

#: Rows fetched per round trip when streaming (``yield_per``).
STREAM_CHUNK = 5000


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL or raise a one-line ``UsageError``."""
    try:
        u = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError; any failure means the same to a user
        raise UsageError(
            f"not a database URL: {mask_url(url)!r} "
            "(expected e.g. sqlite:///opus.db, postgresql+psycopg://user@host/db, mysql+pymysql://root@host/db)"
        ) from None
    if "@" in (u.host or ""):
        # make_url ends the password at its first "@": the rest would be taken for the host and
        # echoed by the driver's "could not resolve host" message — half the password in clear.
        raise UsageError(f"the password in {mask_url(url)} contains '@': write it as %40 in the URL")
    return u


# --- credentials: the one rule for masking them ------------------------------------------
# Every URL shown or stored goes through ``mask_url``; any other text that may hold one (a
# driver's message, a stored URL written by an older version) through ``mask_secrets``.
# Over-masking is the safe failure: a query string or host swallowed into "***" is a
# nuisance, a password half-shown is a leak.

MASK = "***"
#: Query keys whose value is a credential (password, passwd, pwd, sslpassword, secret, token,
#: api_key, sslkey, credentials...). Matched anywhere in the key, case-insensitively.
_SECRET_KEY = r"[^\s=&;?#]*(?:pass|pwd|secret|token|key|cred)[^\s=&;?#]*"
# "scheme://user:password@": the password runs to the LAST "@" of that run of non-blank text
# (a raw "@" in it is illegal in a URL, yet typed). The user part may itself hold an "@".
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/\s]*):(?P<secret>\S*)@")
# The same without a scheme, e.g. "alice:s3cret@db.example".
_BARE_USERINFO = re.compile(r"(?P<head>(?<![\w:/.%+\-])[\w.%+\-]+):(?P<secret>[^\s@/]+)@")
# "?password=..." / "&token=..." / "password=..." (libpq key=value text): the value runs to the
# next "&key=", blank or end, so a raw "&" in it does not leave its tail in clear.
_SECRET_PARAM = re.compile(rf"(?P<head>(?:^|(?<=[\s?&;,(]))(?i:{_SECRET_KEY})\s*=)(?P<secret>.*?)"
                           rf"(?=&[^\s=&]*=|\s|$)")


def mask_secrets(text: str) -> str:
    """``text`` with every credential it may hold replaced by ``***``. Idempotent."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    text = _BARE_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: m["head"] + (MASK if m["secret"] else ""), text)


def mask_url(url: str | URL) -> str:
    """The URL with every credential (password, secret query values) replaced by ``***`` — the
    only form ever printed or written. A string is masked as written (parseable or not)."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)  # quoted: an "@" in the password is %40
    return mask_secrets(url)


def recorded_url(url: str | URL) -> str:
    """The URL as it is recorded for later (``mig_run.legacy_url``), masked: a relative SQLite
    path made absolute, so that ``runs`` and a rollback report name the file whatever folder
    they are run from (``sqlite:///opus.db`` -> ``sqlite:////work/demo/opus.db``). Anything
    else, or a URL that cannot be parsed, is masked as it is."""
    try:
        u = url if isinstance(url, URL) else make_url(url)
    except Exception:
        return mask_url(url)
    path = u.database or ""
    if u.get_backend_name() == "sqlite" and path and path != ":memory:" and not path.startswith("file:") \
            and not os.path.isabs(path):
        u = u.set(database=os.path.abspath(path))
    return mask_url(u)


def _secrets_of(url: URL | None) -> list[str]:
    """The credential values a URL holds (password, secret query values), longest first."""
    if url is None:
        return []
    found = [url.password] if url.password else []
    for key, value in url.query.items():
        if re.fullmatch(_SECRET_KEY, key, re.IGNORECASE):
            found.extend(v for v in (value if isinstance(value, tuple) else (value,)) if v)
    return sorted({str(s) for s in found}, key=len, reverse=True)


def _scrubbed(text: str, url: URL | None) -> str:
    """A driver's message made safe: masked, and any credential of ``url`` in it replaced."""
    for secret in _secrets_of(url):
        text = text.replace(secret, MASK)
    return mask_secrets(text)


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
        raise UsageError(f"bad database URL {mask_url(url)}: {_scrubbed(str(exc), url)}") from None
    except (ValueError, TypeError) as exc:  # a query option the dialect cannot convert (?connect_timeout=abc)
        raise _bad_option(url, exc) from None


def _bad_option(url: URL, exc: BaseException) -> UsageError:
    """A URL option the dialect or driver refuses, as one line naming the (masked) URL."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = _scrubbed(lines[0] if lines else type(exc).__name__, url)
    return UsageError(f"bad option in database URL {mask_url(url)}: {reason}")


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
    _read_undecodable_text(engine)
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


#: Page cache of a writing connection to a SQLite target, in KiB (SQLite's default: 2 MiB). The
#: target's primary keys are UUIDs, so each insert lands on a random page of its index; with
#: the default cache, past a few hundred thousand rows nearly every one re-reads its page.
#: A cache is memory only: what is durable, and when, is unchanged (WAL, synchronous=NORMAL).
TARGET_CACHE_KIB = 65536


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
            cur.execute(f"PRAGMA cache_size=-{TARGET_CACHE_KIB}")
            cur.close()

    else:
        engine = _create_engine(u, pool_pre_ping=True)
    check_connection(engine, "target")
    return engine


def _check_backend(backend: str) -> None:
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise UsageError(f"unsupported database {backend!r}: use sqlite, postgresql or mysql/mariadb")


#: Query options of a SQLite URL: SQLAlchemy's own (pysqlite) and SQLite's URI parameters.
_SQLITE_OPTIONS = frozenset({"timeout", "isolation_level", "detect_types", "check_same_thread",
                             "cached_statements", "uri", "mode", "cache", "immutable", "nolock", "vfs",
                             "modeof", "psow"})


def _sqlite_file(u: URL) -> Path:
    """The file a SQLite URL names; an in-memory database or an unknown or bad option is refused
    (SQLAlchemy would silently ignore an unknown one)."""
    path = u.database or ""
    if not path or path == ":memory:":
        raise UsageError("a store must be a SQLite file, not an in-memory database")
    unknown = sorted(set(u.query) - _SQLITE_OPTIONS)
    if unknown:
        raise UsageError(f"bad option in database URL {mask_url(u)}: unknown SQLite option(s) {', '.join(unknown)}")
    try:
        u.get_dialect()().create_connect_args(u)  # converts timeout, check_same_thread...
    except (ValueError, TypeError) as exc:
        raise _bad_option(u, exc) from None
    return Path(path)


def _read_only_engine(u: URL) -> Engine:
    """Writes through this engine fail in the database itself.

    SQLite opens the file with ``mode=ro``; PostgreSQL sessions start with
    ``default_transaction_read_only``; MariaDB sessions are ``SET SESSION TRANSACTION READ ONLY``.
    """
    backend = u.get_backend_name()
    _check_backend(backend)
    if backend == "sqlite":
        path = _sqlite_file(u).resolve()
        query = {"mode": "ro", "uri": "true"}
        if _wal_store_in_read_only_folder(path):
            query["immutable"] = "1"
        ro = URL.create("sqlite", database=f"file:{path}", query=query)
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


_SQLITE_CANTOPEN = 14


def _wal_store_in_read_only_folder(path: Path) -> bool:
    """True when ``path`` can be read only as ``immutable=1``: a WAL-mode SQLite file in a
    folder this process cannot write (read-only media, a read-only mount or snapshot).

    Reading a WAL database needs its ``-shm`` index beside it, which ``mode=ro`` still has to
    create; in a read-only folder it cannot, and every read fails with "unable to open
    database file". SQLite documents ``immutable=1`` for read-only media: no ``-shm``, no
    locks, the file taken as it is. That is right only if the file holds every committed
    write, i.e. there is no write-ahead log with content beside it. A writer would need a
    ``-wal`` file in that same folder, so without one (or with an empty one) nobody is
    writing; with one, its content is not in the main file and ``immutable`` would read a
    stale store — refused. Anything else (not WAL, another error) is left to the normal
    opening and its error message.
    """
    import sqlite3

    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()  # "SELECT 1" reads no page
        return False
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", None) != _SQLITE_CANTOPEN:
            return False
    finally:
        probe.close()
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    if header[:16] != b"SQLite format 3\x00" or header[18] != 2:  # byte 18 = 2: WAL mode
        return False
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreUnavailable(
            f"the SQLite store {path} is in a read-only folder with an unfinished write-ahead log "
            f"({wal.name}) that cannot be read there: copy the .db and its -wal file to a writable folder"
        )
    return True


# --- legacy text that is not UTF-8 ----------------------------------------------------------
# A legacy store can hold text whose bytes are not UTF-8: SQLite stores whatever it is given
# (``CAST(x || X'FF' AS TEXT)``), a PostgreSQL SQL_ASCII database checks nothing, and a BLOB or
# a MariaDB VARBINARY column hands back bytes. The drivers' own decoding raises in the middle of
# a stream, with the value in the message, and every resumed run would meet the same row. So
# every reader of the legacy store gets such text decoded with ``surrogateescape``: each byte
# that is not UTF-8 becomes a lone surrogate (U+DC80..U+DCFF), which no decoded text can hold, so
# the value is told apart without doubt (``mappings/storable.py`` rejects its record as
# INVALID_ENCODING) and encodes back to exactly the stored bytes (``legacy_key_bound``).
# Bytes (BLOB, VARBINARY) stay bytes: the mapping decodes them by the same rule.

#: Stored text bytes -> str; bytes that are not UTF-8 become lone surrogates. C code throughout.
decode_legacy_text = functools.partial(str, encoding="utf-8", errors="surrogateescape")


def _read_undecodable_text(engine: Engine) -> None:
    """Make the legacy engine's connections hand over undecodable text instead of raising."""
    backend = engine.dialect.name
    if backend == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_text(dbapi_conn, _record):
            dbapi_conn.text_factory = decode_legacy_text

    elif backend == "postgresql":
        # Only a SQL_ASCII database can hold such bytes (UTF8 and the other server encodings
        # validate every value on input). There psycopg returns every text as bytes — even the
        # server version SQLAlchemy reads on first connect — so text loaders go in first.
        @event.listens_for(engine, "connect", insert=True)
        def _postgresql_text(dbapi_conn, _record):
            if dbapi_conn.info.parameter_status("server_encoding") == "SQL_ASCII":
                for name in ("text", "varchar", "bpchar", "name"):
                    dbapi_conn.adapters.register_loader(name, _SqlAsciiTextLoader)
    # MariaDB checks text on input into every character set that has invalid byte sequences
    # (utf8mb4 refuses 0xFF even from a binary client); latin1 decodes any byte. What is not
    # text comes from VARBINARY/BLOB columns as bytes.


class UndecodableText(Exception):
    """A read with the driver's own text decoding met bytes that are not UTF-8 (see below)."""


def _is_undecodable(exc: BaseException) -> bool:
    return isinstance(exc, sa.exc.OperationalError) and str(exc.orig).startswith("Could not decode to UTF-8")


@contextlib.contextmanager
def driver_text_decoding(conn: sa.Connection):
    """Inside: a SQLite legacy connection decodes text with sqlite3's own C decoder, which costs
    half of ``decode_legacy_text`` (a Python-level call per value), and a value that is not UTF-8
    raises ``UndecodableText`` instead; the reader then reads again with ``surrogateescape``
    (outside this block), so a hostile value still becomes an INVALID_ENCODING reject. Other
    engines decode in their drivers already: a no-op there."""
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi_conn = conn.connection.dbapi_connection
    dbapi_conn.text_factory = str
    try:
        yield
    except sa.exc.OperationalError as exc:
        if _is_undecodable(exc):
            raise UndecodableText() from None
        raise
    finally:
        dbapi_conn.text_factory = decode_legacy_text


def _sql_ascii_loader():
    from psycopg.adapt import Loader

    class SqlAsciiTextLoader(Loader):
        def load(self, data) -> str:
            return decode_legacy_text(bytes(data))

    return SqlAsciiTextLoader


try:
    _SqlAsciiTextLoader = _sql_ascii_loader()
except ModuleNotFoundError:  # psycopg not installed: no PostgreSQL store can be opened anyway
    _SqlAsciiTextLoader = None


def checkpoint_key(value):
    """A legacy key value as JSON can hold it and ``legacy_key_bound`` takes it back: bytes (a
    BLOB or VARBINARY key) as ``{"bytes": hex}``; text with lone surrogates is JSON already."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    return value


def legacy_key_bound(dialect, value):
    """``value`` (a legacy key as read, or its ``checkpoint_key``) as a bound that compares
    with the stored key as the key itself does: bytes as a binary value, undecodable text as
    its stored bytes made text again in SQL — never the escaped text, which sorts elsewhere."""
    if isinstance(value, dict) and set(value) == {"bytes"}:
        value = bytes.fromhex(value["bytes"])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return sa.literal(bytes(value), sa.LargeBinary)
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = sa.literal(value.encode("utf-8", "surrogateescape"), sa.LargeBinary)
            if dialect.name == "sqlite":
                return sa.cast(raw, sa.Text)
            if dialect.name == "postgresql":
                return sa.func.convert_from(raw, "SQL_ASCII")
            return raw
    return value


def check_connection(engine: Engine, role: str) -> None:
    """Connect once: an unreachable store is ``StoreUnavailable``; an option the driver refuses
    only when connecting (psycopg: ``?connect_timeout=abc``; PyMySQL: an unknown keyword) is a
    ``UsageError`` — both one line naming the masked URL, never a traceback."""
    try:
        with store_errors(engine, role):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
    except Opus2IopsError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers refuse options in their own ways (ValueError,
        # TypeError, psycopg's ProgrammingError, PyMySQL's AttributeError for ?charset=bogus,
        # FileNotFoundError for a missing ?ssl_ca): any of them at the first connect means the URL.
        raise _bad_option(getattr(engine, "display_url", engine.url), exc) from None


# --- one store named twice --------------------------------------------------------------
# "A store given as legacy is never written": the same database named as legacy and target
# is refused before anything is created, however it is spelt. Spellings cannot be compared
# (relative and absolute paths, symlinks, hard links; localhost, 127.0.0.1 and the machine's
# name; default and explicit ports; mysql:// and mariadb://), so the stores themselves are
# asked: a SQLite file by its inode, a server database by a probe the two sessions share.


def refuse_same_store(legacy: Engine, target_url: str) -> None:
    """``UsageError`` when ``target_url`` names the store ``legacy`` is open on.

    Creates nothing: a SQLite target is only ``stat``-ed (a file that does not exist yet is
    not the legacy store, which does); a server target is connected to through a read-only
    session. Call it after ``open_legacy`` and before the target is opened for writing.
    """
    target = parse_url(target_url)
    if not _same_store(legacy, target):
        return
    raise UsageError(f"--legacy and --target name the same database ({mask_url(target)}): "
                     "the legacy store is never written; give the iOPS store as --target")


def _kind(u: URL) -> str:
    backend = u.get_backend_name()
    return "mysql" if backend == "mariadb" else backend


def _same_store(legacy: Engine, target: URL) -> bool:
    legacy_url = getattr(legacy, "display_url", legacy.url)
    kind = _kind(legacy_url)
    if kind != _kind(target):
        return False
    if kind == "sqlite":
        target_file = _sqlite_file(target)
        # samefile compares (st_dev, st_ino): every path, symlink and hard link to one file.
        return target_file.exists() and os.path.samefile(_sqlite_file(legacy_url), target_file)
    if kind not in _PROBES:
        return False
    probe = _read_only_engine(target)
    try:
        check_connection(probe, "target")  # a bad option or an unreachable server: its own one line
        with connect(legacy, "legacy") as held, connect(probe, "target") as seen:
            return _PROBES[kind](held, seen)
    finally:
        probe.dispose()


def _same_postgresql_database(held: sa.Connection, seen: sa.Connection) -> bool:
    """The legacy session takes an advisory lock under a random key; the target session looks
    for it among its own database's locks. PostgreSQL scopes advisory locks by database, so it
    is found exactly when both sessions are in one database of one cluster — whatever host,
    port or address reached it (a copied cluster, same system identifier, is another store)."""
    key = (secrets.randbelow(2**31), secrets.randbelow(2**31))
    held.execute(sa.text("SELECT pg_advisory_lock(:a, :b)"), {"a": key[0], "b": key[1]})
    try:
        return bool(seen.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :a AND objid = :b"
            " AND objsubid = 2 AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"a": key[0], "b": key[1]}).scalar_one())
    finally:
        held.execute(sa.text("SELECT pg_advisory_unlock(:a, :b)"), {"a": key[0], "b": key[1]})
        held.rollback()
        seen.rollback()


def _same_mysql_database(held: sa.Connection, seen: sa.Connection) -> bool:
    """The legacy session takes a named lock (server-wide in MariaDB and MySQL); when the target
    session sees it held, the two are on one server, and then the same database is the same
    name (compared as the server compares names: folded when ``lower_case_table_names`` is set)."""
    name = f"opus2iops-{secrets.token_hex(16)}"
    held.execute(sa.text("SELECT GET_LOCK(:n, 10)"), {"n": name})
    try:
        mine = held.execute(sa.text("SELECT CONNECTION_ID(), DATABASE(), @@lower_case_table_names")).one()
        holder, database = seen.execute(sa.text("SELECT IS_USED_LOCK(:n), DATABASE()"), {"n": name}).one()
    finally:
        held.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        held.rollback()
        seen.rollback()
    if holder is None or int(holder) != int(mine[0]) or mine[1] is None or database is None:
        return False
    return mine[1] == database if not int(mine[2]) else mine[1].lower() == database.lower()


_PROBES = {"postgresql": _same_postgresql_database, "mysql": _same_mysql_database}


@contextlib.contextmanager
def store_errors(engine: Engine | None, role: str) -> Iterator[None]:
    """Turn driver errors into one-line ``StoreUnavailable`` messages (no traceback, no password)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if not _store_failure(exc):
            raise
        url = getattr(engine, "display_url", engine.url) if engine is not None else None
        where = mask_url(url) if url is not None else role
        reason = _driver_reason(exc, engine)
        raise StoreUnavailable(f"{role} store {where}: {_scrubbed(reason, url)}") from None


# A quoted span of a driver message (to its end if the quote is never closed: SQLite cuts a
# value at its first line break); an apostrophe inside a word ("Can't") opens none.
_QUOTED = re.compile(r"""(?<!\w)(['"])(.*?)(?:\1(?!\w)|\Z)""", re.S)


def _driver_reason(exc: sa.exc.DBAPIError, engine: Engine | None) -> str:
    """The first line of the driver's message, with every quoted span that is not a name of the
    store (its file, database, user or host, or a table or column of the schemas) shown as '…'.

    Data errors quote row values — SQLite's "Could not decode to UTF-8 column 'X' with text
    '…'", MariaDB's "Incorrect … value: '…'" (which pymysql raises as OperationalError) — and
    no value of a record, intelligence text least of all, may reach a console or a log.
    """
    names = _store_names(engine)

    def shown(m) -> str:
        quote, inner = m.group(1), m.group(2)
        return m.group(0) if inner.lower() in names else f"{quote}…{quote}"

    orig = exc.orig if exc.orig is not None else exc
    args = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        # pymysql: (code, message), whose str() quotes the whole message once more.
        message = f'({args[0]}, "{_QUOTED.sub(shown, args[1].strip())}")'
    else:
        message = _QUOTED.sub(shown, str(orig).strip())
    return (message.splitlines() or [""])[0]


def _store_names(engine: Engine | None) -> set[str]:
    from core import schema

    names = {""}
    for url in {getattr(engine, "display_url", None), getattr(engine, "url", None)} - {None}:
        names |= {str(part).lower() for part in (url.database, url.username, url.host, url.port) if part}
    for metadata in (schema.legacy_metadata, schema.target_metadata):
        for table in metadata.tables.values():
            names |= {table.name.lower(), *(c.name.lower() for c in table.columns)}
    return names


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
    once, and the driver gets plain tuples in its own parameter style (``bind_rows`` then
    ``insert_bound``, which a caller may also run in two processes).
    """
    if rows:
        insert_bound(conn, table, *bind_rows(conn.dialect, table, rows))


def bind_rows(dialect, table: sa.Table, rows: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    """``rows`` (dicts with the same keys) as the driver will be given them by ``insert_bound``
    on this dialect: (column order, one tuple of bound values per row), every bind processor
    applied. Plain values (text, numbers, bytes; datetimes on PostgreSQL), so a worker process
    can prepare them and the one writer only executes."""
    columns = list(rows[0])
    shared: dict = {}  # column type -> its memo: one per call, shared by the columns of that type
    processors = {name: _bind_processor(table.c[name].type, dialect, shared) for name in columns}
    order = tuple(columns) if dialect.name == "postgresql" else _insert_order(dialect, table, tuple(columns))
    return order, _positional_params(rows, list(order), processors)


def insert_bound(conn: sa.Connection, table: sa.Table, order: tuple[str, ...], params: list[tuple]) -> None:
    """executemany-insert rows made by ``bind_rows`` (COPY on PostgreSQL)."""
    if not params:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql":
        _copy_in(conn, table, list(order), params)
        return
    compiled = _compiled_insert(dialect, table, order)
    if compiled.positional:
        bound = tuple(compiled.positiontup)
        if bound != order:  # prepared by another dialect's order: put each row in this one's
            at = operator.itemgetter(*[order.index(name) for name in bound])
            params = [at(values) if len(bound) > 1 else (at(values),) for values in params]
        conn.exec_driver_sql(compiled.string, params)
    else:
        conn.exec_driver_sql(compiled.string, [dict(zip(order, values)) for values in params])


@functools.lru_cache(maxsize=256)
def _compiled_insert(dialect, table: sa.Table, columns: tuple[str, ...]):
    return table.insert().compile(dialect=dialect, column_keys=list(columns))


def _insert_order(dialect, table: sa.Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The order the compiled INSERT binds ``columns`` in (positional drivers)."""
    compiled = _compiled_insert(dialect, table, columns)
    return tuple(compiled.positiontup) if compiled.positional else columns


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
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
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
