"""A credential in a store URL never appears anywhere: console, `runs`, mig_run, reports, errors.

A credential can sit in every part of a URL: the password of the userinfo (percent-encoded,
or typed raw with "@" and ":" in it), a query option (``?password=``, ``passwd``, ``pwd``,
``sslpassword``, ``secret``, ``token``, key-like names), or a string that is no URL at all.
``core.db.mask_url`` is the one rule; these tests hold every output to it: each command's
console, ``runs`` and ``runs --json``, the ``mig_run`` rows, summary.json and the other
reports, the truth file, the rollback report, and the one-line error of a refused connection
or a bad option. Every secret below contains ``S3cr3t``: no output may contain that.
"""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from core import db
from tests.conftest import need_server
from tests.opus_fixture import make_legacy
from tests.test_security import all_output_text, run_every_command
from tests.test_user_errors import assert_user_error, run_cli

MARK = "S3cr3t"
#: The userinfo password as a URL carries it (%40 is "@", %3A is ":") and as the driver gets it.
USERINFO_PW = f"ui{MARK}%40x%3Ay"
#: Query options that hold a credential. libpq knows password and sslpassword (so a server
#: run accepts them); the other names are refused by the drivers, which must not echo them.
QUERY_SECRETS = {"password": f"qp{MARK}", "sslpassword": f"sp{MARK}&x"}
OTHER_SECRET_KEYS = ("passwd", "pwd", "secret", "token", "api_key", "sslkey", "auth_token", "PASSWORD",
                     "credentials")


def assert_masked(text: str) -> None:
    assert MARK.lower() not in text.lower(), text
    assert "tPW" not in text  # the tail of a half-masked "@" password


def assert_one_line_error(res) -> str:
    """Exit 2, one line, no traceback (``assert_user_error``), and no credential anywhere."""
    line = assert_user_error(res)
    assert_masked(res.output)
    return line


# ------------------------------------------------------------------------ the rule itself


@pytest.mark.parametrize("url, expected", [
    (f"postgresql+psycopg://postgres:{USERINFO_PW}@db:5432/iops", "postgresql+psycopg://postgres:***@db:5432/iops"),
    # A raw "@" (and ":" and "/") in the password: masked whole, not "postgres:***@tPW@db".
    (f"postgresql+psycopg://postgres:p{MARK}@tPW:x/y@db/iops", "postgresql+psycopg://postgres:***@db/iops"),
    (f"mysql+pymysql://root:{MARK}@127.0.0.1:3306/opus?charset=utf8mb4",
     "mysql+pymysql://root:***@127.0.0.1:3306/opus?charset=utf8mb4"),
    (f"postgresql+psycopg://postgres@db/iops?password={MARK}", "postgresql+psycopg://postgres@db/iops?password=***"),
    (f"postgresql+psycopg://postgres@db/iops?connect_timeout=5&password={MARK}&application_name=o2i",
     "postgresql+psycopg://postgres@db/iops?connect_timeout=5&password=***&application_name=o2i"),
    # A raw "&" inside the value does not leave its tail in clear.
    (f"postgresql+psycopg://postgres@db/iops?sslpassword=a&{MARK}&x=1", "postgresql+psycopg://postgres@db/iops?sslpassword=***&x=1"),
    *[(f"mysql+pymysql://root@h/opus?{key}={MARK}", f"mysql+pymysql://root@h/opus?{key}=***") for key in OTHER_SECRET_KEYS],
    # Not parseable as a URL: still masked.
    (f"postgresql+psycopg://postgres:{MARK}@db:notaport/iops", "postgresql+psycopg://postgres:***@db:notaport/iops"),
    (f"postgres:{MARK}@db/iops", "postgres:***@db/iops"),
    (f"host=db password={MARK} user=x", "host=db password=*** user=x"),
    # Nothing to mask: left exactly as written.
    ("sqlite:///opus.db", "sqlite:///opus.db"),
    ("sqlite:////srv/stores/a@b:c.db", "sqlite:////srv/stores/a@b:c.db"),
    ("mysql+pymysql://root@127.0.0.1:3306/opus?connect_timeout=5", "mysql+pymysql://root@127.0.0.1:3306/opus?connect_timeout=5"),
    ("postgresql+psycopg://postgres@127.0.0.1/iops?sslmode=disable", "postgresql+psycopg://postgres@127.0.0.1/iops?sslmode=disable"),
])
def test_mask_url_masks_every_credential(url, expected):
    assert db.mask_url(url) == expected
    assert db.mask_url(db.mask_url(url)) == expected  # idempotent: stored URLs are masked again when shown


def test_mask_url_of_a_url_object_masks_password_and_query():
    u = make_url(f"postgresql+psycopg://postgres:{USERINFO_PW}@db/iops?password=q{MARK}&token=t{MARK}&b=2")
    assert_masked(db.mask_url(u))
    assert db.mask_url(u).startswith("postgresql+psycopg://postgres:***@db/iops?")


_SECRET_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1)


@given(secret=_SECRET_TEXT)
def test_any_userinfo_password_is_masked_whole(secret):
    url = f"postgresql+psycopg://postgres:{MARK}{secret}@db.example:5432/iops?connect_timeout=5"
    assert db.mask_url(url) == "postgresql+psycopg://postgres:***@db.example:5432/iops?connect_timeout=5"


@given(secret=_SECRET_TEXT.filter(lambda s: "&" not in s), key=st.sampled_from(["password", "pwd", "sslpassword",
                                                                               "secret", "token", "ssl_key"]))
def test_any_query_credential_is_masked_whole(secret, key):
    url = f"mysql+pymysql://root@db/opus?charset=utf8mb4&{key}={MARK}{secret}&connect_timeout=5"
    assert db.mask_url(url) == f"mysql+pymysql://root@db/opus?charset=utf8mb4&{key}=***&connect_timeout=5"


# ------------------------------------------------------------------------ refused connections


def _unreachable(backend: str) -> list[str]:
    """URLs of a server that refuses the connection (port 1), a credential in each part."""
    scheme = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}[backend]
    return [f"{scheme}://u:{USERINFO_PW}@127.0.0.1:1/x",
            f"{scheme}://u:p{MARK}@tPW@127.0.0.1:1/x",  # raw "@": refused before any connection
            f"{scheme}://u@127.0.0.1:1/x?password=q{MARK}" if backend == "postgresql"
            else f"{scheme}://u@127.0.0.1:1/x?passwd=q{MARK}",
            f"{scheme}://u:{MARK}@127.0.0.1:notaport/x"]


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
@pytest.mark.parametrize("role", ["legacy", "target"])
def test_a_refused_connection_names_the_url_masked(tmp_path, backend, role):
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=[{"crime_no": "CR/000001/18"}])
    for url in _unreachable(backend):
        stores = ["--legacy", url, "--target", f"sqlite:///{tmp_path / 'iops.db'}"] if role == "legacy" else \
            ["--legacy", legacy, "--target", url]
        for command in (["migrate", *stores], ["migrate", *stores, "--dry-run"], ["simulate", *stores],
                        ["reconcile", *stores, "--out", str(tmp_path / "out")]):
            line = assert_one_line_error(run_cli(*command))
            assert "127.0.0.1" in line, line  # the store is named (masked), so the user knows which
        if role == "target":
            for command in (["runs", "--target", url], ["runs", "--target", url, "--json"], ["rollback", "1", "--target", url]):
                assert_one_line_error(run_cli(*command))


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_wrong_password_and_a_bad_option_are_one_masked_line(tmp_path, backend):
    need_server(backend)
    server = db.server_url(backend)
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=[{"crime_no": "CR/000001/18"}])
    base = server.render_as_string(hide_password=False)
    bad = [  # an option the driver refuses, beside a credential
        f"{base}{'&' if '?' in base else '?'}connect_timeout=abc&password=q{MARK}",
        f"{base}{'&' if '?' in base else '?'}token=t{MARK}",
    ]
    if backend == "mysql":  # root has no password: giving one is refused by the server
        bad.append(server.set(username="root", password=f"w{MARK}").render_as_string(hide_password=False))
    for url in bad:
        for command in (["migrate", "--legacy", legacy, "--target", url],
                        ["migrate", "--legacy", url, "--target", f"sqlite:///{tmp_path / 'iops.db'}"],
                        ["runs", "--target", url]):
            line = assert_one_line_error(run_cli(*command))
            assert "***" in line or "Access denied" in line, line


# ------------------------------------------------------------------------ every output of a full run


@pytest.fixture
def mysql_user():
    """A MariaDB user with a password (root has none), granted its own scratch databases."""
    need_server("mysql")
    name = f"o2i_{uuid.uuid4().hex[:8]}"
    password = f"my{MARK}@:/{secrets.token_hex(2)}"
    admin = sa.create_engine(db.server_url("mysql"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for host in ("%", "localhost", "127.0.0.1"):
            conn.execute(sa.text(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY :pw"), {"pw": password})
            conn.execute(sa.text(f"GRANT ALL ON `o2i\\_%`.* TO '{name}'@'{host}'"))
    yield name, password
    with admin.connect() as conn:
        for host in ("%", "localhost", "127.0.0.1"):
            conn.execute(sa.text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
    admin.dispose()


def _with_credentials(url: str, user: str, password: str, query: dict[str, str]) -> str:
    u = make_url(url).set(username=user, password=password).update_query_dict(query)
    return u.render_as_string(hide_password=False)


@pytest.mark.parametrize("target_backend", ["postgresql", "mysql"])
def test_no_output_of_a_full_run_holds_a_credential(tmp_path, make_store, mysql_user, target_backend):
    user, password = mysql_user
    # The legacy store on MariaDB, reached with a real password (raw "@", ":" and "/" in it).
    plain = make_store("mysql", "legacy")
    legacy = _with_credentials(plain, user, password, {})
    make_legacy(plain,
                crimes=[{"crime_no": f"CR/{i:06d}/18"} for i in range(1, 6)], nominals=[{"nom_id": 1}],
                links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"}],
                intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 1}])
    if target_backend == "postgresql":  # trust auth: any password and the libpq credential options are accepted
        target = _with_credentials(make_store("postgresql", "target"), "postgres", f"tg{MARK}@tPW:/x", QUERY_SECRETS)
        vendor = _with_credentials(make_store("postgresql", "vendor"), "postgres", f"vd{MARK}", {"password": f"v{MARK}"})
    else:
        target = _with_credentials(make_store("mysql", "target"), user, password, {"charset": "utf8mb4", "password": password})
        vendor = _with_credentials(make_store("mysql", "vendor"), user, password, {})
    assert MARK in target and MARK in legacy

    console: list[str] = []

    def run(*args: str, ok=(0, 1)) -> None:
        res = run_cli(*args)
        assert res.exit_code in ok, res.output
        console.append(res.output)

    run_every_command(run, legacy, target, vendor, tmp_path, batch_size=2)
    assert any("***" in out for out in console)  # the URLs are shown, masked

    outputs = all_output_text([tmp_path / "own", tmp_path / "vendor", tmp_path / "rollback"], console)
    assert_masked(outputs)
    assert_masked((tmp_path / "truth.json").read_text(encoding="utf-8"))
    summary = json.loads((tmp_path / "own" / "summary.json").read_text(encoding="utf-8"))
    assert "***" in json.dumps(summary)

    # What the target keeps: every column of every mig_run row.
    engine = db.open_target(target, read_only=True)
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM mig_run"))]
    finally:
        engine.dispose()
    assert rows and all("***" in r["legacy_url"] for r in rows)
    assert_masked(repr(rows))


# ------------------------------------------------------------------------ a bad URL option

BAD_OPTIONS = {
    "sqlite": ["timeout=abc", "check_same_thread=maybe", "no_such_option=1"],
    "postgresql": ["connect_timeout=abc", "no_such_option=1", "sslmode=bogus", "keepalives=abc"],
    "mysql": ["connect_timeout=abc", "no_such_option=1", "charset=bogus", "ssl_ca=/no/such/ca.pem",
              "local_infile=maybe", "read_timeout=-1"],
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_a_bad_url_option_is_one_line_naming_the_masked_url_in_every_command(tmp_path, make_store, backend):
    legacy_ok = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=[{"crime_no": "CR/000001/18"}])
    if backend == "sqlite":
        base = f"sqlite:///{tmp_path / 'opus.db'}"
    else:
        base = make_store(backend, "store")
        make_legacy(base, crimes=[{"crime_no": "CR/000001/18"}])
    for option in BAD_OPTIONS[backend]:
        # Beside the bad option, a credential: the message names the URL, masked.
        secret = "sslpassword" if backend == "postgresql" else "password"
        url = f"{base}{'&' if '?' in base else '?'}{option}"
        url_with_secret = f"{url}&{secret}=k{MARK}" if backend != "sqlite" else url
        new_target = f"sqlite:///{tmp_path / 'iops.db'}"
        commands = [["generate", "--legacy", url_with_secret, "--crimes", "5"],
                    ["migrate", "--legacy", url_with_secret, "--target", new_target],
                    ["migrate", "--legacy", legacy_ok, "--target", url_with_secret],
                    ["migrate", "--legacy", legacy_ok, "--target", url_with_secret, "--dry-run"],
                    ["simulate", "--legacy", legacy_ok, "--target", url_with_secret],
                    ["reconcile", "--legacy", url_with_secret, "--target", new_target, "--out", str(tmp_path / "o")],
                    ["runs", "--target", url_with_secret],
                    ["rollback", "1", "--target", url_with_secret]]
        if backend != "sqlite":  # the legacy fixture is the SQLite file itself
            commands.append(["reconcile", "--legacy", legacy_ok, "--target", url_with_secret, "--out", str(tmp_path / "o")])
        for command in commands:
            line = assert_one_line_error(run_cli(*command))
            assert option.split("=")[0] in line, (command, line)  # the URL (or the option) is named
            assert "bad option in database URL" in line or "invalid" in line, (command, line)
        assert not (tmp_path / "iops.db").exists()
