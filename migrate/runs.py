"""The run history behind ``python main.py runs``: what ``mig_run`` says, read honestly.

A run whose row still says ``running`` but whose process is gone (killed, machine rebooted)
never got the chance to record that it stopped; it is reported ``interrupted`` — the state a
person can act on (``migrate --resume N`` or ``rollback N``). The target lock
(``migrate.lock``) is what tells a live run from a dead one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import schema
from core.db import mask_url, open_target, store_errors
from core.errors import RunNotFound
from migrate import lock

STATES = ("running", "interrupted", "complete", "rolled_back")


@dataclass
class RunInfo:
    id: int
    state: str  # running | interrupted | complete | rolled_back (as it really is, see module doc)
    recorded_state: str  # what mig_run.state says
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rolled_back_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    counts: dict[str, dict] = field(default_factory=dict)  # entity -> read/written/updated/...
    host: str | None = None
    os_user: str | None = None
    pid: int | None = None
    legacy_store: str | None = None  # masked when written; masked again here
    legacy_fingerprint: str | None = None  # which store the run read (None: recorded by an older version)
    tool_version: str | None = None
    batch_size: int | None = None

    def total(self, name: str) -> int:
        """Sum of one count (``read``, ``written``, ...) over the entities."""
        return sum(int(c.get(name) or 0) for c in self.counts.values())

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "recorded_state": self.recorded_state,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "rolled_back_at": _iso(self.rolled_back_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "counts": self.counts,
            "host": self.host,
            "os_user": self.os_user,
            "pid": self.pid,
            "legacy_store": self.legacy_store,
            "legacy_fingerprint": self.legacy_fingerprint,
            "tool_version": self.tool_version,
            "batch_size": self.batch_size,
        }


class RunList(list):
    """The runs of a target, oldest first; ``note`` says why the list is empty when it is."""

    def __init__(self, items=(), note: str | None = None, target: str | None = None):
        super().__init__(items)
        self.note = note
        self.target = target  # masked URL


def list_runs(target_url: str) -> RunList:
    """Every migration run recorded in the target, oldest first. Never writes to the target."""
    masked = mask_url(target_url)
    engine = open_target(target_url, read_only=True)
    if engine is None:
        return RunList(note=f"no target store at {masked}: nothing has been migrated there", target=masked)
    try:
        with store_errors(engine, "target"):
            if not has_run_table(engine):
                return RunList(note=f"{masked} has no mig_run table: opus2iops has never migrated into it",
                               target=masked)
            with engine.connect() as conn:
                rows = conn.execute(sa.select(*schema.present_columns(engine, schema.mig_run))
                                    .order_by(schema.mig_run.c.run_id)).all()
            items = [run_info(engine, row) for row in rows]
        note = None if items else f"{masked} has no migration runs yet"
        return RunList(items, note=note, target=masked)
    finally:
        engine.dispose()


def has_run_table(engine: Engine) -> bool:
    return sa.inspect(engine).has_table(schema.mig_run.name)


def load_run(engine: Engine, run_id: int) -> RunInfo:
    """One run, or ``RunNotFound``."""
    if not has_run_table(engine):
        raise RunNotFound(f"no run {run_id}: this target has no migration runs (no mig_run table)")
    with engine.connect() as conn:
        row = conn.execute(sa.select(*schema.present_columns(engine, schema.mig_run))
                           .where(schema.mig_run.c.run_id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no run {run_id} in this target (list them with `runs --target ...`)")
    return run_info(engine, row)


def run_info(engine: Engine, row) -> RunInfo:
    return RunInfo(
        id=row.run_id,
        state=effective_state(engine, row.run_id, row.state),
        recorded_state=row.state,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rolled_back_at=row.rolled_back_at,
        heartbeat_at=row.heartbeat_at,
        counts=_counts(row.counts),
        host=row.host,
        os_user=row.os_user,
        pid=row.pid,
        legacy_store=mask_url(row.legacy_url) if row.legacy_url else None,
        legacy_fingerprint=getattr(row, "legacy_fingerprint", None),  # absent from older targets
        tool_version=row.tool_version,
        batch_size=row.batch_size,
    )


def effective_state(engine: Engine, run_id: int, recorded: str) -> str:
    """``running`` only while a live process holds the target for this run."""
    if recorded != "running":
        return recorded
    if not sa.inspect(engine).has_table(schema.mig_lock.name):
        return "interrupted"
    return "running" if lock.is_held_by_live_process(engine, run_id) else "interrupted"


def _counts(text: str | None) -> dict[str, dict]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}  # a half-written row of a crashed run; the ledger still holds the truth
    return data if isinstance(data, dict) else {}


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
