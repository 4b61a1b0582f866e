"""Both schemas in SQLAlchemy Core, and the tool's own ``mig_`` tables.

* Legacy (OPUS): created from ``opus-legacy.sql`` itself, so a store we generate is exactly
  what the DDL makes on that engine; declared here in lower case for reading, and resolved to
  the store's real table names by ``core.db.resolve_tables``.
* Target (iOPS): exactly the columns of ``iops-target.md``.
* ``mig_*``: runs, checkpoints, ledger, cross-reference, rejects and warnings of migrations.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources

import sqlalchemy as sa
from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, Numeric, String, Table
from sqlalchemy import Text as _PortableText
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator

from core.db import quote_reserved_words, resolve_tables
from core.errors import ForeignSchemaError


_UTC = dt.timezone.utc
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def as_utc(value: dt.datetime) -> dt.datetime:
    """An instant as an aware UTC datetime; a naive one is taken as UTC.

    Naive values are made aware by arithmetic from the epoch, not ``value.replace(tzinfo=UTC)``:
    the same value, an order of magnitude cheaper (``datetime.replace`` parses keywords), and
    the reconciler reads several instants per record, millions of records."""
    if value.tzinfo is None:
        return _UTC_EPOCH + (value - _NAIVE_EPOCH)
    return value.astimezone(_UTC)


def utc_now() -> dt.datetime:
    """Now, as the tool records it (run, lock, heartbeat and report instants): aware UTC,
    whole seconds."""
    return dt.datetime.now(_UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator):
    """An instant, always returned as an aware UTC datetime.

    PostgreSQL stores ``timestamptz``; SQLite and MariaDB have no zone, so we store naive UTC
    and attach UTC on the way out. Naive datetimes on the way in are refused: every instant in
    this tool is computed with an explicit zone.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        if dialect.name == "postgresql":
            return value.astimezone(_UTC)
        return _NAIVE_EPOCH + (value - _UTC_EPOCH)  # naive UTC, = astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return _stored_instant(value)

    def result_processor(self, dialect, coltype):
        """On SQLite, the stored text goes straight to ``_stored_instant`` (``fromisoformat``, C)
        instead of SQLAlchemy's regex parser followed by ours. Same values (the round-trip tests)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _stored_instant


def _stored_instant(value: str | dt.datetime | None) -> dt.datetime | None:
    """A stored instant (a driver's datetime, or SQLite's text) as an aware UTC datetime;
    NULL stays None.

    The naive UTC text this tool stores is parsed with its zone in one call (``text +
    "+00:00"``: several times cheaper than parsing, then attaching UTC). Text with a zone of its
    own (a store filled by another tool) fails that, and a date alone reads as naive
    (``'2019-07-01+00:00'`` is taken as 00:00): both are parsed as written."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            instant = dt.datetime.fromisoformat(value + "+00:00")
            if instant.tzinfo is _UTC:
                return instant
        except ValueError:
            pass
        value = dt.datetime.fromisoformat(value)
    return as_utc(value)


class Text(_PortableText):
    """Unbounded text, on every engine: every ``Text`` column of the tables below.

    SQLAlchemy's Text is MariaDB's TEXT, which holds 65,535 *bytes* (a 22,000-character MO in
    the euro sign's 3 bytes); there this one is LONGTEXT (4 GB), as text is unbounded on
    PostgreSQL and SQLite. (What one statement may carry is the server's ``max_allowed_packet``,
    16 MB by default.)"""


@compiles(Text, "mysql")
@compiles(Text, "mariadb")
def _longtext(_type, _compiler, **_kw) -> str:
    return "LONGTEXT"


def uuid_col(name: str, *args, **kw) -> Column:
    return Column(name, String(36), *args, **kw)


# ---------------------------------------------------------------------------------- legacy

legacy_metadata = MetaData()

offence_code = Table(
    "offence_code", legacy_metadata,
    Column("off_code", String(12), primary_key=True),
    Column("off_desc", String(80)),
    Column("active", String(1)),
)
division = Table(
    "division", legacy_metadata,
    Column("div", String(2), primary_key=True),
    Column("div_name", String(40)),
)
legacy_crime = Table(
    "crime", legacy_metadata,
    Column("crime_no", String(12), primary_key=True),
    Column("off_code", String(12)),
    Column("rec_date", String(10)),
    Column("rec_time", String(4)),
    Column("from_date", String(10)),
    Column("from_time", String(4)),
    Column("to_date", String(10)),
    Column("to_time", String(4)),
    Column("div", String(2)),
    Column("beat", String(6)),
    Column("addr_line", String(120)),
    Column("pcode", String(10)),
    Column("grid_e", Integer),
    Column("grid_n", Integer),
    Column("status", String(1)),
    Column("disposal", String(6)),
    Column("mo_text", String(2000)),
    Column("oic", String(8)),
    Column("del_flag", String(1)),
    Column("last_upd", String(14)),
)
legacy_nominal = Table(
    "nominal", legacy_metadata,
    Column("nom_id", Integer, primary_key=True, autoincrement=False),
    Column("surname", String(40)),
    Column("forenames", String(60)),
    Column("dob", String(10)),
    Column("sex", String(1)),
    Column("pnc_id", String(13)),
    Column("eth_code", String(3)),
    Column("del_flag", String(1)),
    Column("last_upd", String(14)),
)
legacy_crime_nom = Table(
    "crime_nom", legacy_metadata,
    Column("crime_no", String(12), primary_key=True),
    Column("nom_id", Integer, primary_key=True, autoincrement=False),
    Column("role", String(1), primary_key=True),
)
legacy_intel = Table(
    "intel", legacy_metadata,
    Column("intel_no", String(12), primary_key=True),
    Column("submit_date", String(10)),
    Column("submit_time", String(4)),
    Column("src_eval", String(1)),
    Column("int_eval", String(1)),
    Column("handling", String(1)),
    Column("subj_nom_id", Integer),
    Column("int_text", String(4000)),
    Column("div", String(2)),
    Column("grid_e", Integer),
    Column("grid_n", Integer),
    Column("review_date", String(10)),
    Column("officer", String(8)),
    Column("del_flag", String(1)),
    Column("last_upd", String(14)),
)

LEGACY_TABLES = ("offence_code", "division", "crime", "nominal", "crime_nom", "intel")


def legacy_ddl_statements() -> list[str]:
    """The statements of ``opus-legacy.sql`` (comments stripped), in order."""
    text = resources.files("core").joinpath("opus-legacy.sql").read_text(encoding="utf-8")
    lines = [line.split("--", 1)[0] for line in text.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def create_legacy_schema(engine: Engine) -> None:
    """Create the OPUS tables by running the contract's DDL (as unchanged as the engine allows)."""
    with engine.begin() as conn:
        for statement in legacy_ddl_statements():
            conn.exec_driver_sql(quote_reserved_words(statement, engine.dialect))


def legacy_tables(engine: Engine) -> dict[str, Table]:
    """The OPUS tables of this store, resolved to their real names; error if any table, or any
    column the tool reads (every column of ``opus-legacy.sql``), is absent.

    Checked up front by every reader (migrate, its dry run, reconcile, simulate): a missing
    column would otherwise fail only when its table is first read — for INTEL, after every
    person and crime had been written.
    """
    tables = resolve_tables(engine, legacy_metadata)
    missing = [name.upper() for name, table in tables.items() if table is None]
    if missing:
        raise ForeignSchemaError(
            f"the legacy store has no {', '.join(missing)} table(s): is this an OPUS store?"
        )
    _check_legacy_columns(engine, tables)
    return tables


def _check_legacy_columns(engine: Engine, tables: dict[str, Table]) -> None:
    from core.db import store_errors

    inspector = sa.inspect(engine)
    gaps = []
    with store_errors(engine, "legacy"):
        for name, table in tables.items():
            # Column names compare without case: the DDL's are unquoted upper case, which
            # PostgreSQL folds to lower case and MariaDB and SQLite keep (matching either case).
            present = {c["name"].lower() for c in inspector.get_columns(table.name)}
            gaps += [f"{name.upper()}.{c.name.upper()}" for c in table.columns if c.name.lower() not in present]
    if gaps:
        raise ForeignSchemaError(
            f"the legacy store has no column{'s' if len(gaps) > 1 else ''} {', '.join(gaps)}: the tool reads "
            "every column of opus-legacy.sql; restore it or point --legacy at a complete OPUS store"
        )


# ---------------------------------------------------------------------------------- target

target_metadata = MetaData()

location = Table(
    "location", target_metadata,
    uuid_col("location_id", primary_key=True),
    Column("address", String(200)),
    Column("postcode", String(8)),
    Column("easting", Integer),
    Column("northing", Integer),
    Column("latitude", Numeric(9, 6, asdecimal=False)),
    Column("longitude", Numeric(9, 6, asdecimal=False)),
    Column("beat", String(6)),
    Column("district_code", String(9)),
)
person = Table(
    "person", target_metadata,
    uuid_col("person_id", primary_key=True),
    Column("legacy_nominal_id", Integer, index=True),
    Column("family_name", String(60), nullable=False),
    Column("given_names", String(80)),
    Column("date_of_birth", Date),
    Column("sex", String(7), nullable=False),
    Column("pnc_id", String(13)),
    Column("ethnicity_code", String(3)),
    Column("source_system", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
crime = Table(
    "crime", target_metadata,
    uuid_col("crime_id", primary_key=True),
    Column("crime_ref", String(16), nullable=False, unique=True),
    Column("legacy_ref", String(12), index=True),
    Column("ho_offence_code", String(16), nullable=False),
    Column("offence_description", String(120), nullable=False),
    Column("offence_group", String(60), nullable=False),
    Column("police_uk_category", String(40), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("committed_from", UTCDateTime),
    Column("committed_to", UTCDateTime),
    uuid_col("location_id", sa.ForeignKey("location.location_id")),
    Column("district_code", String(9)),
    Column("status", String(12), nullable=False),
    Column("outcome_code", Integer),
    Column("mo_summary", Text),
    Column("oic_collar", String(8)),
    Column("source_system", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
crime_person = Table(
    "crime_person", target_metadata,
    uuid_col("crime_id", sa.ForeignKey("crime.crime_id"), primary_key=True),
    uuid_col("person_id", sa.ForeignKey("person.person_id"), primary_key=True),
    Column("role", String(10), primary_key=True),
)
intelligence_report = Table(
    "intelligence_report", target_metadata,
    uuid_col("intel_id", primary_key=True),
    Column("intel_ref", String(16), nullable=False, unique=True),
    Column("legacy_ref", String(12), index=True),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("source_evaluation", String(1), nullable=False),
    Column("intelligence_assessment", String(1), nullable=False),
    Column("handling_code", String(1), nullable=False),
    Column("handling_conditions", Text),
    Column("grading_review_required", Boolean, nullable=False),
    uuid_col("subject_person_id", sa.ForeignKey("person.person_id")),
    Column("intel_text", Text, nullable=False),
    uuid_col("location_id", sa.ForeignKey("location.location_id")),
    Column("district_code", String(9)),
    Column("review_date", Date),
    Column("officer_collar", String(8)),
    Column("source_system", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Target tables in dependency order (parents first); delete in reverse.
TARGET_TABLES = ("location", "person", "crime", "crime_person", "intelligence_report")

#: Primary-key columns of each target table, in order.
TARGET_KEYS = {
    "location": ("location_id",),
    "person": ("person_id",),
    "crime": ("crime_id",),
    "crime_person": ("crime_id", "person_id", "role"),
    "intelligence_report": ("intel_id",),
}

# ----------------------------------------------------------------------- the tool's own tables

mig_run = Table(
    "mig_run", target_metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(12), nullable=False),  # running, interrupted, complete, rolled_back
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("heartbeat_at", UTCDateTime),
    Column("legacy_url", String(400), nullable=False),  # password masked
    # What the run read: a fingerprint of the legacy store's content (migrate/engine.py
    # legacy_fingerprint); a resume must read the same store. Absent from targets made before
    # it existed: added by the next writing run (ADDED_COLUMNS), NULL for their old runs.
    Column("legacy_fingerprint", String(64)),
    Column("host", String(120)),
    Column("os_user", String(120)),
    Column("pid", Integer),
    Column("tool_version", String(20)),
    Column("mapping_digest", String(64)),
    Column("batch_size", Integer),
    Column("counts", Text),  # JSON: per entity read/written/updated/unchanged/excluded/rejected...
    Column("rolled_back_at", UTCDateTime),
)
mig_checkpoint = Table(
    "mig_checkpoint", target_metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=False),
    Column("entity", String(20), primary_key=True),
    # The last legacy key committed (JSON of its raw values, as ordered by the legacy store).
    # Unbounded: a SQLite legacy store holds keys of any length, and JSON escapes each
    # non-ASCII character of a 12-character key as up to 12 characters.
    Column("last_key", Text),
    Column("batches", Integer, nullable=False, default=0),
    Column("done", Boolean, nullable=False, default=False),
    Column("counts", Text),  # JSON, cumulative for this entity
)
mig_ledger = Table(
    "mig_ledger", target_metadata,
    # Rows a run *updated* (with their before-image) and rows an update added (action insert,
    # no image): what a rollback restores or deletes besides the records the run inserted,
    # which mig_xref names (first_run) and whose ids are deterministic. No row per insert.
    Column("ledger_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("batch_no", Integer, nullable=False),
    Column("table_name", String(30), nullable=False),
    Column("row_key", String(120), nullable=False),  # primary key; composite keys joined by '|'
    Column("legacy_key", String(40)),
    Column("action", String(8), nullable=False),  # insert | update
    Column("digest", String(64), nullable=False),  # of the row as written
    Column("before_image", Text),  # JSON of the row before an update
    Index("ix_mig_ledger_row", "table_name", "row_key"),
)
mig_xref = Table(
    "mig_xref", target_metadata,
    # One row per legacy record the migration wrote (cutover.md): what it read and what it
    # wrote, so that a re-run decides per record without mapping an unchanged one.
    Column("entity", String(20), primary_key=True),
    Column("legacy_key", String(40), primary_key=True),
    # 16-byte digest of the raw legacy row, the code tables and tool version it was mapped
    # with, and the accepted state of the records it depends on (a link's crime and person).
    Column("source", sa.LargeBinary(16), nullable=False),
    # What the tool wrote: per target row (TARGET_TABLES order) a table number, the row's
    # 16-byte digest and one fingerprint byte per column (core.digest.written_image).
    Column("written", sa.LargeBinary, nullable=False),
    Column("first_run", Integer, nullable=False),  # the run that inserted the record
    Column("last_run", Integer, nullable=False),  # the last run that wrote it (inserted or updated)
    sqlite_with_rowid=False,  # the key is the table: no second copy of it in a rowid index
)
mig_xref_before = Table(
    "mig_xref_before", target_metadata,
    # The xref row a run replaced when it updated a record: a rollback puts it back.
    Column("run_id", Integer, primary_key=True, autoincrement=False),
    Column("entity", String(20), primary_key=True),
    Column("legacy_key", String(40), primary_key=True),
    Column("source", sa.LargeBinary(16), nullable=False),
    Column("written", sa.LargeBinary, nullable=False),
    Column("last_run", Integer, nullable=False),
    sqlite_with_rowid=False,
)
mig_reject = Table(
    "mig_reject", target_metadata,
    Column("reject_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("entity", String(20), nullable=False),
    Column("legacy_key", String(40)),
    Column("reason", String(30), nullable=False),
    Column("field", String(30)),
    Column("value", Text),  # the offending value (never intelligence text)
    Column("raw_row", Text, nullable=False),  # JSON of the legacy row, for fix-and-rerun
    # The record's source digest (as mig_xref.source): a later run reading the same digest has the
    # same reject without mapping it. NULL for DUPLICATE_KEY (it depends on another record), and
    # in targets made before this column (ADDED_COLUMNS).
    Column("source", sa.LargeBinary(16)),
    Index("ix_mig_reject_key", "entity", "legacy_key"),
)
mig_warning = Table(
    "mig_warning", target_metadata,
    Column("warning_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("entity", String(20), nullable=False),
    Column("legacy_key", String(40)),
    Column("reason", String(30), nullable=False),
    Column("field", String(30)),
    Column("value", Text),
)

mig_conflict = Table(
    "mig_conflict", target_metadata,
    # A record a delta run did not simply write (cutover.md): changed on both sides, or deleted
    # in OPUS while iOPS still holds it. Field names only, never values: the run's conflicts.csv
    # and the rollback report are written from here.
    Column("conflict_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("entity", String(20), nullable=False),
    Column("legacy_key", Text, nullable=False),
    Column("target_table", String(30), nullable=False),
    Column("target_id", String(120), nullable=False),
    Column("kind", String(20), nullable=False),  # CHANGED_BOTH | DELETED_IN_OPUS
    Column("opus_fields", Text),  # target columns the OPUS change would alter, ';'-separated
    Column("iops_fields", Text),  # target columns edited in iOPS since the tool wrote them
    Column("resolution", String(20), nullable=False),  # KEPT_IOPS (a deletion in OPUS too: nothing is deleted) | OVERWRITTEN | STOPPED
)

mig_lock = Table(
    "mig_lock", target_metadata,
    # At most one row: the migration or rollback that holds this target. A primary-key insert
    # is an atomic test-and-set on every engine, so two processes can never both hold it.
    Column("lock_id", Integer, primary_key=True, autoincrement=False),
    Column("run_id", Integer),
    Column("purpose", String(20), nullable=False),  # migrate | rollback
    Column("host", String(120), nullable=False),
    Column("pid", Integer, nullable=False),
    # When that process started (migrate.lock.process_start): a pid the OS has since given to
    # another process is then seen for what it is, a dead holder. NULL where it cannot be known.
    Column("pid_started", String(80)),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

MIG_TABLES = tuple(name for name in target_metadata.tables if name.startswith("mig_"))


#: Nullable columns of the tool's own tables that later versions added: a target made by an
#: older version lacks them, and is still ours — the next writing run adds them.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {"mig_run": ("legacy_fingerprint",), "mig_lock": ("pid_started",),
                                             "mig_reject": ("source",)}


def create_target_schema(engine: Engine) -> None:
    """Create the iOPS and ``mig_`` tables that are absent; of existing ones, only add the
    nullable ``ADDED_COLUMNS`` an older version of the tool did not create.

    Not safe against a second process creating them at the same moment: ``migrate`` calls it
    only while it holds the target lock (``create_lock_table`` first, which is)."""
    check_target_schema(engine)
    target_metadata.create_all(engine, checkfirst=True)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine, tables: tuple[str, ...] | None = None) -> None:
    inspector = sa.inspect(engine)
    preparer = engine.dialect.identifier_preparer
    for name, columns in ADDED_COLUMNS.items():
        if tables is not None and name not in tables:
            continue
        have = {c["name"].lower() for c in inspector.get_columns(name)}
        table = target_metadata.tables[name]
        for column in (table.c[c] for c in columns if c not in have):
            # Names and types are this module's constants, quoted by the dialect: no user input.
            ddl = (f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(column)} "
                   f"{column.type.compile(engine.dialect)}")
            with engine.begin() as conn:
                conn.execute(sa.text(ddl))


def present_columns(engine: Engine, table: Table) -> list[sa.Column]:
    """The columns of one of the tool's tables that this store has (an older target may lack
    some ``ADDED_COLUMNS``): what a reader that must not alter the store selects."""
    later = set(ADDED_COLUMNS.get(table.name, ()))
    if not later:
        return list(table.columns)
    have = {c["name"].lower() for c in sa.inspect(engine).get_columns(table.name)}
    return [c for c in table.columns if c.name not in later or c.name in have]


def create_lock_table(engine: Engine) -> None:
    """Create ``mig_lock`` if absent, tolerating another process creating it at the same moment.

    Two first runs into a fresh target both see no table and both create it: the loser's
    CREATE fails (PostgreSQL: a duplicate in its catalogue; MariaDB and SQLite: the table
    exists). Whoever created it, the table is there, which is all the caller needs before it
    takes the lock and creates the rest under it."""
    try:
        mig_lock.create(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(mig_lock.name):
            raise
    try:  # a lock table made by an older version: the lock itself needs its newer columns
        _add_missing_columns(engine, (mig_lock.name,))
    except sa.exc.DBAPIError:  # another first run added it at the same moment
        have = {c["name"].lower() for c in sa.inspect(engine).get_columns(mig_lock.name)}
        if not set(ADDED_COLUMNS[mig_lock.name]) <= have:
            raise


def check_target_schema(engine: Engine) -> None:
    """Refuse a target whose existing tables of our names cannot take what this tool writes.

    Checked for every table before any is created, so a refused target is left as it was:
    each column we write must exist with a type that holds its values (kind, length, zone),
    and the table must have no column of its own that an insert of ours would leave empty
    while it is NOT NULL without a default."""
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    if mig_xref.name in existing and "source" not in {c["name"].lower() for c in inspector.get_columns(mig_xref.name)}:
        # Layout 1 (a ledger row per row written, a hex record digest per record) cannot tell
        # an OPUS change from an iOPS edit; converting it would need the legacy rows it was read from.
        raise ForeignSchemaError(
            "this target's bookkeeping was written by an older opus2iops (before delta runs): roll its runs "
            "back with that version and migrate again, or migrate into an empty iOPS store")
    for name, table in target_metadata.tables.items():
        if name not in existing:
            continue
        columns = {c["name"].lower(): c for c in inspector.get_columns(name)}
        lacking = [c.name for c in table.columns
                   if c.name not in columns and c.name not in ADDED_COLUMNS.get(name, ())]
        if lacking:
            problem = f"lacks column(s) {', '.join(lacking)}"
        else:
            problem = (_first_type_problem(table, columns, engine.dialect)
                       or _unfilled_columns(table, columns))
        if problem:
            raise ForeignSchemaError(
                f"target table {name!r} exists but {problem}: "
                "this is not an iOPS store this tool can write to (give it an empty database)"
            )


#: The column of each iOPS table that names the OPUS record a row came from (NULL in a record
#: entered in iOPS itself).
_OPUS_REFERENCE = {"person": "legacy_nominal_id", "crime": "legacy_ref", "intelligence_report": "legacy_ref"}


def check_no_foreign_records(engine: Engine) -> None:
    """Refuse a target holding migrated OPUS records while no migration of ours is recorded.

    Records entered in iOPS itself (no OPUS reference) are welcome: they stay, and a rollback
    leaves them. Records that name an OPUS record while ``mig_run`` records no run were
    written by another tool (a vendor's migration, ``simulate``): our deterministic ids collide
    with its rows, and a rollback could not tell its records from ours."""
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    with engine.connect() as conn:
        if mig_run.name in existing and conn.execute(sa.select(mig_run.c.run_id).limit(1)).first():
            return
        for name, column in _OPUS_REFERENCE.items():
            table = target_metadata.tables[name]
            if name in existing and conn.execute(
                    sa.select(sa.literal(1)).select_from(table).where(table.c[column].is_not(None)).limit(1)).first():
                raise ForeignSchemaError(
                    f"the target already holds migrated OPUS {name} records that no migration of this tool "
                    "wrote (none in mig_run): migrate into an iOPS store no other migration has filled"
                )


def _first_type_problem(table: Table, columns: dict, dialect) -> str | None:
    for ours in table.columns:
        if ours.name not in columns:  # one of ADDED_COLUMNS, added by the next writing run
            continue
        theirs = columns[ours.name]["type"]
        need, have = _holds(ours.type, dialect), _holds(theirs, dialect)
        if need[0] != have[0] and not (need[0] == "boolean" and have[0] == "integer"):
            return f"its column {ours.name} is {_ddl(theirs, dialect)}, not {need[0]}"
        if need[0] == "text" and have[1] is not None and (need[1] is None or have[1] < need[1]):
            wanted = "unbounded text" if need[1] is None else f"{need[1]} characters"
            return f"its column {ours.name} is {_ddl(theirs, dialect)}, too small for {wanted}"
        if need[0] == "instant" and need[1] != have[1]:
            return f"its column {ours.name} is {_ddl(theirs, dialect)}, not {_ddl(ours.type, dialect)}"
    return None


#: Characters MariaDB's smaller text types hold at worst (their capacity is in bytes; utf8mb4
#: takes up to 4 a character). LONGTEXT, and text on the other engines, is unbounded.
_MYSQL_TEXT_CHARACTERS = {mysql.TINYTEXT: 255 // 4, mysql.TEXT: 65_535 // 4, mysql.MEDIUMTEXT: 16_777_215 // 4}


def _holds(column_type, dialect) -> tuple[str, object]:
    """What a column type holds on this engine: (kind, detail). Text: its capacity in
    characters (None: unbounded); an instant: its DDL (a zone or none is not interchangeable)."""
    if isinstance(column_type, sa.types._Binary):  # BLOB, BYTEA, MariaDB's TINYBLOB and BLOB
        return "binary", None
    if isinstance(column_type, sa.String):
        if type(column_type) in _MYSQL_TEXT_CHARACTERS:
            return "text", _MYSQL_TEXT_CHARACTERS[type(column_type)]
        if isinstance(column_type, sa.Text):
            return "text", None
        return "text", getattr(column_type, "length", None)
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl
    for kind, base in (("boolean", sa.Boolean), ("instant", sa.DateTime), ("date", sa.Date),
                       ("integer", sa.Integer), ("number", sa.Numeric)):
        if isinstance(column_type, base):
            return kind, (_ddl(column_type, dialect) if kind == "instant" else None)
    return type(column_type).__name__.lower(), None


def _ddl(column_type, dialect) -> str:
    try:
        return column_type.compile(dialect=dialect)
    except sa.exc.CompileError:
        return type(column_type).__name__


def _unfilled_columns(table: Table, columns: dict) -> str | None:
    ours = {c.name for c in table.columns}
    unfilled = [name for name, c in columns.items()
                if name not in ours and not c.get("nullable", True) and c.get("default") is None
                and c.get("autoincrement") is not True and not c.get("computed") and not c.get("identity")]
    if unfilled:
        return f"has NOT NULL column(s) {', '.join(unfilled)} without a default, which this tool does not fill"
    return None


def text_length(table: str, column: str) -> int | None:
    """The length of a text column of an iOPS table (None: unbounded text, or not a text column)."""
    col = target_metadata.tables[table].c.get(column) if table in target_metadata.tables else None
    length = getattr(col.type, "length", None) if col is not None else None
    return length or None
