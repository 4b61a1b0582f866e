"""Publishing a set of report files so that a reader sees the old set or the new set, never a mix.

Every set of files the tool publishes goes through :class:`ReportSet`: the reconciler's four
(``discrepancies.csv``, ``crime_stats.csv``, ``reconciliation.xlsx``, ``summary.json``), the
rollback report's two, and any later set (:data:`SETS` names them all, so that a run can
recognise what a dead run left behind).

How (Linux, the normal case)
----------------------------
The whole set is written into a *staging folder beside the output folder* (same parent, so
same file system), each file mode 0600 and fsynced. The user's own files in the output folder
(anything not of this set) are hard-linked into the staging folder, which takes the output
folder's mode, group and extended attributes (ACLs). Then one system call,
``renameat2(RENAME_EXCHANGE)``, swaps the two folders: before it a reader finds the old set,
after it the new one, and a ``kill -9`` cannot fall between two files. The old folder (now
under the staging name) is then emptied — only files of the set and links whose twin is in the
new folder are deleted; a file the user added meanwhile is moved into the new folder — and
removed. ``os`` has no wrapper for ``renameat2``; it is called through ``ctypes`` on libc.

Why not a symlink per file into a versioned folder (the Kubernetes "AtomicWriter" way): the
report files would be symbolic links, and an auditor who *moves* ``discrepancies.csv`` into an
evidence folder would move a link that dangles once the next run removes its target.

Fallback
--------
The swap is not used when it would change more than the report files: the output folder holds
a sub-folder or a special file (those cannot be hard-linked), is a mount point, belongs to
another user, its parent is not writable, its group or extended attributes cannot be copied,
or the system has no ``RENAME_EXCHANGE`` (not Linux, NFS, ...). Then the files are moved in
one by one, *index last*: the set's last file (``summary.json``, ``rollback.json``) is removed
first and written last, so while a mix of files is on disk there is no index vouching for it,
and the staging folder is first renamed "committed" so that the next run finishes the moves
(rolls forward) after a kill.

Leftovers
---------
Staging folders are named ``.<folder>~opus2iops~<state>~<set>~<host>~<pid>~<start>~<token>``
(beside the folder; ``.~opus2iops~...`` inside it when the parent is not writable). Each new
publication first removes the leftovers of *dead* runs — a process id that is gone, or reused
by a process with another start time — never those of a live run or of another host.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import socket
import stat
from pathlib import Path
from typing import Callable, Iterable, Sequence

from core.errors import OutputError

FILE_MODE = 0o600
FOLDER_MODE = 0o700

#: Every set of files the tool publishes, by kind, in publication order: the last is the index.
SETS: dict[str, tuple[str, ...]] = {
    "reconciliation": ("discrepancies.csv", "crime_stats.csv", "crime_map.png", "reconciliation.xlsx", "summary.json"),
    "rollback": ("rollback.xlsx", "rollback.json"),
    "migration": ("rejects.csv", "warnings.csv", "conflicts.csv", "run.json"),
}

_TAG = "opus2iops"
_STAGING, _COMMITTED = "staging", "committed"
#: Temporary files that live in a staging folder but are never published (spools).
SCRATCH_PREFIX = ".opus2iops-scratch-"
_PREFIX_CHARS = 100  # of the folder's name, in a staging folder's name (names are <= 255 bytes)


try:  # openpyxl streams sheets through lxml when it is installed (a dependency of this tool)
    from lxml.etree import SerialisationError as _LxmlSerialisationError

    _SERIALISATION_ERRORS: tuple[type[BaseException], ...] = (_LxmlSerialisationError,)
except ImportError:  # pragma: no cover - openpyxl then writes through Python files (OSError)
    _SERIALISATION_ERRORS = ()


def _io_error(exc: BaseException) -> OSError | None:
    """lxml reports a failed write (a full disk) as ``SerialisationError('IO_ENOSPC')``, not as
    ``OSError``: the same failure, as the OS error it names (None: not a write failure)."""
    name = str(exc).strip()
    code = getattr(errno, name[3:], None) if name.startswith("IO_") else None
    return OSError(code, os.strerror(code)) if code is not None else None


# ---- the output folder ------------------------------------------------------------------------


def reason(exc: OSError) -> str:
    """An OS error as a few words (``No space left on device``), never a traceback."""
    if exc.strerror:
        return exc.strerror
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def check_output_folder(folder: Path, what: str = "the reports") -> None:
    """Fail early (before hours of work) when ``folder`` could not hold the reports.

    ``folder`` may not exist yet; its nearest existing ancestor must then be a writable folder.
    A file where a folder is needed is named as such, not reported as "permission denied".
    """
    folder = Path(folder)
    for path in (folder, *folder.parents):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # a file further up: found below, as the nearest existing ancestor
        except OSError as exc:
            raise OutputError(f"cannot write {what} into {folder}: {reason(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            if path == folder:
                raise OutputError(f"cannot write {what} into {folder}: it is a file, not a folder")
            raise OutputError(f"cannot write {what} into {folder}: {path} is a file, not a folder "
                              "(a file is in the way)")
        if not os.access(path, os.W_OK | os.X_OK):
            why = "permission denied"
            with contextlib.suppress(OSError, AttributeError):
                if os.statvfs(path).f_flag & os.ST_RDONLY:
                    why = "read-only file system"
            raise OutputError(f"cannot write {what} into {folder}: {why} on {path}")
        return
    raise OutputError(f"cannot write {what} into {folder}: no existing folder above it")


def _prepare_folder(folder: Path, what: str) -> None:
    check_output_folder(folder, what)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    except OSError as exc:
        raise OutputError(f"cannot create the folder for {what}, {folder}: {reason(exc)}") from None
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} into {folder}: it is a file, not a folder")


def create_private(path: Path, *, binary: bool = False, mode: str = "w"):
    """A new file (never an existing one) readable by its owner only, whatever the umask and the
    folder's defaults. Text files are UTF-8 with newlines as written."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except (AttributeError, OSError):
        pass
    if binary:
        return os.fdopen(fd, mode.replace("b", "") + "b")
    return os.fdopen(fd, mode, encoding="utf-8", newline="")


def write_file_atomically(path: Path, write: Callable, what: str, *, binary: bool = False) -> None:
    """One file published alone (e.g. the simulator's truth file): written mode 0600 under a
    temporary name beside it, fsynced, renamed into place; nothing is left on failure."""
    path = Path(path)
    check_output_folder(path.parent, what)
    tmp = path.with_name(f".{path.name[:_PREFIX_CHARS]}~{_TAG}~{_STAGING}~file~{_owner_tag()}")
    try:
        try:
            with create_private(tmp, binary=binary) as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_folder(path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {reason(exc)}") from None


# ---- a set of files ---------------------------------------------------------------------------


class ReportSet:
    """The files of one set of kind ``kind`` (see :data:`SETS`), staged until :meth:`publish`.

    ``create(name)`` opens a new staged file (mode 0600); ``scratch(name)`` a temporary file in
    the staging folder that is never published; ``publish()`` makes the set visible in one step;
    ``discard()`` removes everything staged (idempotent; the published files stay).
    ``on_step`` is called with a label at each step of publishing (progress, and tests that kill
    the process at each step).
    """

    def __init__(self, out_dir: Path, kind: str, *, what: str = "the reports",
                 on_step: Callable[[str], None] | None = None) -> None:
        if kind not in SETS:
            raise ValueError(f"unknown set of reports {kind!r}")
        self.out_dir = Path(out_dir)
        self.kind = kind
        self.names = SETS[kind]
        self.what = what
        self._on_step = on_step or (lambda label: None)
        self._staged: set[str] = set()
        self.staging: Path | None = None
        self._committed = False  # the fallback's staging folder renamed "committed": rolled forward
        _prepare_folder(self.out_dir, what)
        with self.errors():
            out = self._out = Path(os.path.realpath(self.out_dir))
            remove_leftovers(out)
            self._beside = out.parent != out and os.access(out.parent, os.W_OK | os.X_OK)
            holder = out.parent if self._beside else out
            prefix = out.name if self._beside else ""
            self.staging = holder / _staging_name(prefix, _STAGING, kind)
            os.mkdir(self.staging, FOLDER_MODE)

    @contextlib.contextmanager
    def errors(self):
        """An OS error while staging or publishing is ``OutputError``: one line, folder and reason."""
        try:
            yield
        except OSError as exc:
            raise self.output_error(exc) from None
        except _SERIALISATION_ERRORS as exc:
            failure = _io_error(exc)
            if failure is None:
                raise
            raise self.output_error(failure) from None

    def output_error(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self.what} into {self.out_dir}: {reason(exc)}")

    def create(self, name: str, *, binary: bool = False, mode: str = "w"):
        if name not in self.names:
            raise ValueError(f"{name!r} is not a file of the {self.kind} reports")
        with self.errors():
            handle = create_private(self.staging / name, binary=binary, mode=mode)
        self._staged.add(name)
        return handle

    def scratch(self, name: str, *, mode: str = "w+"):
        with self.errors():
            return create_private(self.staging / (SCRATCH_PREFIX + name), mode=mode)

    def publish(self) -> dict[str, Path]:
        """Make the staged set the folder's set in one step; return {name: final path}."""
        missing = [n for n in self.names if n not in self._staged]
        if missing:
            raise RuntimeError(f"{self.kind} reports not staged: {missing}")
        step = self._on_step
        with self.errors():
            for entry in os.scandir(self.staging):
                if entry.name.startswith(SCRATCH_PREFIX):
                    os.unlink(entry.path)  # spools: never published
            for name in self.names:
                _fsync_file(self.staging / name)
                step(f"fsync {name}")
            if not (self._beside and self._publish_by_exchange(step)):
                self._publish_index_last(step)
        self._staged.clear()
        return {name: self.out_dir / name for name in self.names}

    def discard(self) -> None:
        """Remove the staging folder and what it holds (never a published file)."""
        if self.staging is None:
            return
        with contextlib.suppress(OSError):
            if self._committed:
                _roll_forward(self.staging, self._out, self.names)  # already the folder's set
            else:
                _empty_leftover(self.staging, self._out, self.names)
                os.rmdir(self.staging)
        self.staging = None

    # ---- the swap ------------------------------------------------------------------------------

    def _publish_by_exchange(self, step: Callable[[str], None]) -> bool:
        """True once the swap is done; False (nothing changed) when it cannot be used."""
        out, staging = self._out, self.staging
        if _renameat2 is None or os.path.ismount(out):
            return False
        folder = os.stat(out)
        if folder.st_uid != os.geteuid():
            return False
        linked = []
        try:
            for entry in os.scandir(out):
                if entry.name in self.names:
                    continue
                if not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                    return False  # a sub-folder or special file cannot be linked: moved in one by one
                try:
                    os.link(entry.path, staging / entry.name, follow_symlinks=False)
                except OSError:
                    return False  # not allowed here (another owner's file, too many links, ...)
                linked.append(entry.name)
                step(f"link {entry.name}")
            if not _same_folder_attributes(out, staging, folder):
                return False
            _fsync_folder(staging)
            step("fsync staging")
            try:
                _exchange(staging, out)
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV, errno.EBUSY,
                                 errno.EPERM, errno.EACCES):
                    return False
                raise
            linked = []  # they are the new folder's now
        finally:
            for name in linked:  # swap not done: the links go, the staged set stays
                with contextlib.suppress(OSError):
                    os.unlink(staging / name)
        step("exchanged")
        # Published. ``staging`` now names the old folder: empty it (moving the user's late files
        # over) and remove it; what cannot be removed now the next run removes.
        with contextlib.suppress(OSError):
            _fsync_folder(out.parent)
            step("fsync parent")
            _follow_cwd(staging, out)
            _empty_leftover(staging, out, self.names, step)
            os.rmdir(staging)
            step("old folder removed")
        self.staging = None
        return True

    # ---- the fallback --------------------------------------------------------------------------

    def _publish_index_last(self, step: Callable[[str], None]) -> None:
        parts = self.staging.name.split("~")
        parts[-6] = _COMMITTED  # the state field of the name (see _staging_name)
        committed = self.staging.with_name("~".join(parts))
        os.rename(self.staging, committed)
        self.staging, self._committed = committed, True
        _fsync_folder(committed.parent)
        step("committed")
        _roll_forward(committed, self._out, self.names, step)
        self.staging = None


# ---- steps ------------------------------------------------------------------------------------


def _roll_forward(committed: Path, out: Path, names: Sequence[str], step=lambda label: None) -> None:
    """Move a committed set's files into ``out``, index removed first and written last."""
    index = names[-1]
    if (committed / index).exists():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out / index)  # no index vouches for the mix while the files move
        _fsync_folder(out)
        step(f"old {index} removed")
        for name in names[:-1]:
            if (committed / name).exists():
                os.replace(committed / name, out / name)
                step(f"moved {name}")
        _fsync_folder(out)
        os.replace(committed / index, out / index)
        step(f"moved {index}")
    _fsync_folder(out)
    _empty_leftover(committed, out, names)
    os.rmdir(committed)
    step("committed folder removed")


def _empty_leftover(folder: Path, out: Path, names: Iterable[str], step=lambda label: None) -> None:
    """Empty a staging folder (or the old folder after a swap) without ever losing a user's file.

    Deleted: files of the set, spools, and links whose twin (same inode) is in ``out`` under the
    same name. Moved into ``out``: a file that is not there (the user's, made during the swap).
    Anything else stays, and so does the folder.
    """
    names = set(names)
    for entry in os.scandir(folder):
        if entry.name in names or entry.name.startswith(SCRATCH_PREFIX):
            os.unlink(entry.path)
        else:
            mine = os.stat(entry.path, follow_symlinks=False)
            try:
                theirs = os.stat(out / entry.name, follow_symlinks=False)
            except FileNotFoundError:
                _rename_no_replace(Path(entry.path), out / entry.name)
                continue
            if (mine.st_ino, mine.st_dev) != (theirs.st_ino, theirs.st_dev):
                continue
            os.unlink(entry.path)
        step(f"removed {entry.name}")


def remove_leftovers(out: Path) -> None:
    """Remove what dead runs left beside ``out`` (and inside it): roll a committed set forward,
    delete an uncommitted one. A live run's staging folder is left alone."""
    out = Path(out)
    for holder, prefix in ((out.parent, out.name), (out, "")):
        try:
            entries = list(os.scandir(holder))
        except OSError:
            continue
        for entry in entries:
            parsed = _parse_staging_name(entry.name, prefix)
            if parsed is None or not entry.is_dir(follow_symlinks=False):
                continue
            state, kind, host, pid, start = parsed
            if kind not in SETS or _alive(host, pid, start):
                continue
            path = Path(entry.path)
            with contextlib.suppress(OSError):
                if state == _COMMITTED:
                    _roll_forward(path, out, SETS[kind])
                else:
                    _empty_leftover(path, out, SETS[kind])
                    os.rmdir(path)


# ---- names and owners -------------------------------------------------------------------------


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "0" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return data[data.rindex(b")") + 2:].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return "0"


def _owner_tag() -> str:
    return f"{_host()}~{os.getpid()}~{_start_ticks(os.getpid())}~{secrets.token_hex(4)}"


def _staging_name(prefix: str, state: str, kind: str) -> str:
    return f".{prefix[:_PREFIX_CHARS]}~{_TAG}~{state}~{kind}~{_owner_tag()}"


def _parse_staging_name(name: str, prefix: str):
    parts = name.split("~")
    if len(parts) < 8 or parts[-7] != _TAG or "~".join(parts[:-7]) != "." + prefix[:_PREFIX_CHARS]:
        return None
    state, kind, host, pid, start = parts[-6:-1]
    if state not in (_STAGING, _COMMITTED) or not pid.isdigit():
        return None
    return state, kind, host, int(pid), start


def _alive(host: str, pid: int, start: str) -> bool:
    """Whether the run that made a staging folder may still be running (unknown: yes)."""
    if host != _host() or os.name == "nt":
        return True  # another machine's run (a shared folder): not ours to judge; on Windows os.kill kills
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, owned by someone else
    now = _start_ticks(pid)
    return start == "0" or now == "0" or now == start  # a reused pid has another start time


# ---- system calls -----------------------------------------------------------------------------


def _load_renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _rename2(src: Path, dst: Path, flags: int) -> None:
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(dst))


def _exchange(a: Path, b: Path) -> None:
    """Swap two directory entries in one step (``renameat2(RENAME_EXCHANGE)``)."""
    _rename2(a, b, _RENAME_EXCHANGE)


def _rename_no_replace(src: Path, dst: Path) -> None:
    if _renameat2 is not None:
        try:
            _rename2(src, dst, _RENAME_NOREPLACE)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                raise
    if not os.path.lexists(dst):
        os.rename(src, dst)


def _same_folder_attributes(out: Path, staging: Path, folder: os.stat_result) -> bool:
    """Give the staging folder the output folder's mode, group and extended attributes (ACLs,
    labels); False when one of them cannot be copied (then the folder is not swapped)."""
    try:
        if folder.st_gid != os.stat(staging).st_gid:
            os.chown(staging, -1, folder.st_gid)
        os.chmod(staging, stat.S_IMODE(folder.st_mode))
        try:
            names = os.listxattr(out)
        except (OSError, AttributeError):
            names = []
        for name in names:
            os.setxattr(staging, name, os.getxattr(out, name))
    except OSError:
        return False
    return True


def _follow_cwd(old: Path, out: Path) -> None:
    """If this process works in the output folder, it goes on working in the new one."""
    with contextlib.suppress(OSError):
        if os.path.samestat(os.stat("."), os.stat(old)):
            os.chdir(out)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported on every file system; the renames are done either way
    finally:
        os.close(fd)
