"""Shared fixtures: stores on SQLite, PostgreSQL and MariaDB.

Server tests create and drop their own uniquely named databases. When a server is down the
test is skipped — except when ``OPUS2IOPS_REQUIRE_SERVERS=1`` (set by ``.ci/run``), where it
fails: CI must prove the tool on every engine, not quietly skip one. A test that needs a
capability of the machine (root, a tmpfs mount) says so through ``need_capability``: skipped on
a developer's machine without it, a failure in CI (``OPUS2IOPS_REQUIRE_SERVERS=1`` or ``CI=true``).
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from core import db

BACKENDS = ("sqlite", "postgresql", "mysql")
REQUIRE_SERVERS = os.environ.get("OPUS2IOPS_REQUIRE_SERVERS") == "1"
#: In CI every test must run: a missing capability is a failure there, not a skip.
REQUIRE_CAPABILITIES = REQUIRE_SERVERS or os.environ.get("CI", "").lower() == "true"

_server_state: dict[str, str | None] = {}


def server_problem(backend: str) -> str | None:
    """None when the server answers, else why not (checked once per session)."""
    if backend == "sqlite":
        return None
    if backend not in _server_state:
        engine = sa.create_engine(db.server_url(backend), connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _server_state[backend] = None
        except Exception as exc:  # any failure to connect means the same here
            _server_state[backend] = f"{backend} server not reachable: {str(exc).splitlines()[0]}"
        finally:
            engine.dispose()
    return _server_state[backend]


def need_server(backend: str) -> None:
    problem = server_problem(backend)
    if problem:
        if REQUIRE_SERVERS:
            pytest.fail(f"{problem} (OPUS2IOPS_REQUIRE_SERVERS=1: server tests must run)")
        pytest.skip(problem)


def need_capability(problem: str | None) -> None:
    """Skip the test for a missing machine capability (``problem`` says which), fail it in CI."""
    if problem:
        if REQUIRE_CAPABILITIES:
            pytest.fail(f"{problem} (CI: every test must run)")
        pytest.skip(problem)


class StoreFactory:
    """Makes empty stores (URL strings) and drops the server databases afterwards."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.created: list[tuple[str, str]] = []

    def __call__(self, backend: str, label: str = "store") -> str:
        if backend == "sqlite":
            path = self.tmp_path / f"{label}-{uuid.uuid4().hex[:8]}.db"
            return f"sqlite:///{path}"
        need_server(backend)
        name = f"o2i_{label}_{uuid.uuid4().hex[:10]}".lower()
        url = db.create_database(backend, name)
        self.created.append((backend, name))
        return url.render_as_string(hide_password=False)

    def cleanup(self) -> None:
        for backend, name in self.created:
            db.drop_database(backend, name)


@pytest.fixture
def make_store(tmp_path):
    factory = StoreFactory(tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param != "sqlite":
        need_server(request.param)
    return request.param


#: The pairings the suite migrates and reconciles across: (legacy backend, target backend).
PAIRS = [("sqlite", "sqlite"), ("sqlite", "postgresql"), ("mysql", "postgresql")]


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}-to-{p[1]}")
def pair(request):
    for b in request.param:
        if b != "sqlite":
            need_server(b)
    return request.param
