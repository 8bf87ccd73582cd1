"""A sweep's workdir: the names of what it holds, whole-or-nothing writes (local paths or gs:// URLs), the lock that
keeps one run per workdir, up-front checks of a path, and the write protocol tests' fault injection (``Faults``).

run.json          the run config, package versions, devices, data provenance, wall time, status
results.parquet   one row per (model, epoch) (``engine.results``)
manifest.json     the last commit: which epochs of which chunks are recorded, the results' and checkpoints'
                  hashes (``engine.checkpoint``); anything the manifest does not name is not trusted
scores.parquet    per-model environment scores (tasks that score in an environment)
checkpoints/      the chunk in training (two kept) and each finished chunk's final state (``engine.checkpoint``):
                  the one store of the trained weights
run.lock          held (flock) by the run using the workdir; run.lock.json names it (host, pid, start time)
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from etils import epath

RUN_FILE = "run.json"
RESULTS_FILE = "results.parquet"
MANIFEST_FILE = "manifest.json"
SCORES_FILE = "scores.parquet"
CHECKPOINTS_DIR = "checkpoints"
FINAL_PARAMS_DIR = "final_params"
"""A second copy of the trained weights that runs before 2026-12-05 wrote; never read, removed with the other outputs
when a run starts afresh."""
TENSORBOARD_DIR = "tensorboard"
"""Live metrics (TensorBoard event files) of a running sweep."""
LOG_FILE = "sweep.log"
"""The entry points' log of every invocation on the workdir (appended; not a run output)."""
LOCK_FILE = "run.lock"
LOCK_OWNER_FILE = "run.lock.json"
"""The lock holder's record (host, pid, start time) beside ``LOCK_FILE`` (``WorkdirLock``)."""
RUN_OUTPUTS: tuple[str, ...] = (
    MANIFEST_FILE,
    RESULTS_FILE,
    SCORES_FILE,
    CHECKPOINTS_DIR,
    FINAL_PARAMS_DIR,
    TENSORBOARD_DIR,
    RUN_FILE,
)
"""Everything a run writes into its workdir, in the order starting afresh removes it (the manifest first, so that
a kill while clearing leaves nothing that looks committed; anything else in the folder stays)."""

FAULT_EXIT_STATUS = 86
FAULT_POINTS: tuple[str, ...] = (
    "run_json",  # run.json written with status "running"
    "before_results",  # an epoch evaluated, nothing of it written
    "results_written",  # results.parquet holds the epoch's rows; no checkpoint or manifest names them yet
    "checkpoint_partial",  # half of a checkpoint file written (to its temporary name)
    "checkpoint_written",  # the checkpoint file in place; the manifest does not name it yet
    "manifest_written",  # the epoch committed (manifest written), old checkpoints not yet removed
    "chunk_done",  # a chunk finished and committed, the next not started
    "repair",  # results.parquet rewritten from its verified rows, the manifest not yet
    "clear",  # --overwrite: the manifest removed, the other outputs not yet
)
"""The write boundaries of the protocol, where ``Faults`` can kill a run."""


class Faults:
    """Fault injection for the write protocol's tests, passed to the code that writes a workdir (``SweepLedger``,
    ``run_sweep``, ``train_and_evaluate``; default ``NO_FAULTS``, which does nothing). ``Faults(boundary, count)``
    ends the process at once with ``exit(FAULT_EXIT_STATUS)`` (default ``os._exit``: no cleanup, like a kill) the
    ``count``-th time the run reaches ``boundary`` (one of ``FAULT_POINTS``). Each object counts for itself."""

    def __init__(self, boundary: str | None = None, count: int = 1, exit: Callable[[int], Any] | None = None):
        if boundary is not None and boundary not in FAULT_POINTS:
            raise ValueError(f"boundary must be one of {FAULT_POINTS}, got {boundary!r}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.boundary, self.count, self.reached = boundary, int(count), 0
        self.exit = exit

    def reach(self, name: str) -> None:
        """The run reached write boundary ``name``: exits when it is this object's boundary for the count-th time."""
        if name != self.boundary:
            return
        self.reached += 1
        if self.reached == self.count:
            (self.exit or os._exit)(FAULT_EXIT_STATUS)


NO_FAULTS = Faults()
"""The ``Faults`` of every real run: no boundary, nothing happens."""


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a cloud URL (gs://, s3://, ...) rather than a local path."""
    return "://" in os.fspath(path)


def absolute(path: str | os.PathLike) -> epath.Path:
    """``path`` as an absolute ``epath.Path`` (``~`` expanded; cloud URLs unchanged)."""
    if is_remote(path):
        return epath.Path(path)
    return epath.Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def path_problem(path: str | os.PathLike, kind: str = "dir") -> str | None:
    """Why a local folder (``kind="dir"``) or file (``"file"``) could not be created or written at ``path``, in a
    few words (None when it can; cloud URLs are not checked). Checks the path itself, or the nearest existing
    folder above it: a file in the way, no write permission, and then a probe file created and removed there (so a
    folder that passes the permission bits but refuses writes, as ``/proc`` or a read-only mount do even for root,
    is found before any work). Nothing is left behind."""
    if is_remote(path):
        return None
    try:
        if "\0" in os.fspath(path):
            raise ValueError("embedded null byte")
        p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        if p.exists():
            if kind == "dir":
                if not p.is_dir():
                    return f"{p} exists and is not a folder"
                if not os.access(p, os.W_OK | os.X_OK):
                    return f"folder {p} is not writable"
                return _probe(p, f"cannot write in folder {p}")
            if p.is_dir():
                return f"{p} is a folder"
            if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK | os.X_OK):
                return f"{p} is not writable"
            return _probe(p.parent, f"cannot write {p}")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"cannot create {p}: {parent} is a file"
                if not os.access(parent, os.W_OK | os.X_OK):
                    return f"cannot create {p}: folder {parent} is not writable"
                return _probe(parent, f"cannot create {p}")
        return f"cannot create {p}"
    except (OSError, ValueError) as e:  # a name too long, an embedded NUL byte, ...
        return f"unusable path {os.fspath(path)!r} ({getattr(e, 'strerror', None) or e})"


PROBE_PREFIX = ".sparse_rnn_probe."


def _probe(folder: Path, what: str) -> str | None:
    """None when a file can be created (and is removed again) in ``folder``; else ``what`` with the reason."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f"{PROBE_PREFIX}{os.getpid()}.", suffix=".tmp")
    except OSError as e:
        return f"{what} ({e.strerror or e})"
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


def link_problem(workdir: str | os.PathLike, names: tuple[str, ...]) -> str | None:
    """Why the managed entries ``names`` of a local ``workdir`` cannot be trusted: one that is a symbolic link
    (the run would write, and clean up, wherever it points). None when none is a link (cloud URLs: None)."""
    if is_remote(workdir):
        return None
    for name in names:
        path = os.path.join(os.fspath(workdir), name)
        if os.path.islink(path):
            return (
                f"{name} in workdir {workdir} is a symbolic link (to {os.readlink(path)}); a run writes and removes "
                "files only in its own folders: replace the link with a real folder"
            )
    return None


RUN_STATUSES: tuple[str, ...] = ("running", "interrupted", "failed", "complete")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


RECORD_FIELDS: dict[str, tuple[Any, str]] = {
    "config": (lambda v: isinstance(v, dict), "an object"),
    "status": (lambda v: v in RUN_STATUSES, f"one of {', '.join(RUN_STATUSES)}"),
    "task": (lambda v: isinstance(v, str), "a string"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "num_models": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "chunk_models": (
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "an integer >= 0 or null",
    ),
    "wall_time_s": (lambda v: _number(v) and 0 <= v < float("inf"), "a number >= 0"),
    "chance_loss": (lambda v: v is None or _number(v), "a number or null"),
    "padding_efficiency": (lambda v: v is None or _number(v), "a number or null"),
    "processes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "devices": (lambda v: isinstance(v, list), "a list"),
    "platform": (lambda v: isinstance(v, str), "a string"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "matmul_precision": (lambda v: v is None or isinstance(v, str), "a string or null"),
}
"""The fields of run.json the code reads, with what each must be (absent fields are allowed: older runs lack
some); ``record_problem`` checks a record against them when it is read."""


def record_problem(record: Any) -> str | None:
    """Why a parsed run.json cannot be used, naming the field (None when it fits ``RECORD_FIELDS``)."""
    if not isinstance(record, dict):
        return f"not a JSON object (a {type(record).__name__})"
    for name, (ok, words) in RECORD_FIELDS.items():
        if name in record and not ok(record[name]):
            shown = repr(record[name])
            return f"field {name!r} is {shown[:60]}{'...' if len(shown) > 60 else ''}, not {words}"
    return None


# ------------------------------------------------------------------------------------------- a full disk

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""A write that failed for lack of room: no space left on the device, a quota, the file-size limit (ulimit -f)."""


class NoSpaceError(OSError):
    """A write that failed for lack of room (``NO_SPACE_ERRNOS``); the message is one line naming the path, the
    bytes the write needed and what is free (or the file-size limit). Raised from the OSError it replaces, so its
    ``errno`` is the original one."""

    def __str__(self) -> str:
        return str(self.strerror)


def no_space_message(path: str | os.PathLike | None, needed: int | None, err: OSError) -> str:
    """One line: what could not be written, how many bytes it needed, what is free or the file-size limit."""
    where = os.fspath(path) if path is not None else (err.filename or "a file")
    size = f" ({needed:,} bytes)" if needed else ""
    if err.errno == errno.EFBIG:
        try:
            import resource

            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            shown = "unlimited" if limit == resource.RLIM_INFINITY else f"{limit:,} bytes"
        except (ImportError, OSError, ValueError):
            shown = "unknown"
        return f"cannot write {where}{size}: file too large for the file-size limit (ulimit -f: {shown})"
    try:
        free = f"{shutil.disk_usage(os.path.dirname(os.path.abspath(where)) or '.').free:,} bytes free"
    except (OSError, ValueError):
        free = "free space unknown"
    what = "disk quota exceeded" if err.errno == errno.EDQUOT else "no space left on the device"
    return f"cannot write {where}{size}: {what} ({free})"


def _umask() -> int:
    """The process' umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(data: bytes, path: str | os.PathLike, halfway: Callable[[], None] | None = None) -> None:
    """Writes ``data`` to ``path`` whole or not at all: locally via a temporary file in the same folder (mode 0666
    less the umask, like any new file), flushed to disk, and an atomic rename; on a cloud store (gs://) as one object
    upload, which is atomic there. ``halfway`` is called with half of the data written (a ``Faults`` boundary)."""
    if is_remote(path):
        target = epath.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if halfway:
            halfway()
        target.write_bytes(data)
        return
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            if halfway:
                f.flush()
                halfway()
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in NO_SPACE_ERRNOS and not isinstance(e, NoSpaceError):
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)  # first, so that the message tells the free space without it
            raise NoSpaceError(e.errno, no_space_message(path, len(data), e)) from e
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def remove_temporaries(folder: str | os.PathLike, names: tuple[str, ...]) -> list[str]:
    """Removes the temporary files ``write_bytes_atomic`` leaves in ``folder`` when killed mid-write of one of the
    files ``names``."""
    if is_remote(folder) or not os.path.isdir(folder):
        return []
    removed = []
    for name in os.listdir(folder):
        if name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in names):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def write_parquet_atomic(df, path: str | os.PathLike) -> None:
    """Writes ``df`` (a pandas DataFrame) to ``path`` (local or gs://) atomically."""
    write_bytes_atomic(parquet_bytes(df), path)


def parquet_bytes(df) -> bytes:
    """``df`` as parquet bytes (no index)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    """``obj`` as the JSON bytes ``write_json_atomic`` writes."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Writes ``obj`` as JSON to a local path or gs:// URL, whole or not at all."""
    write_bytes_atomic(json_bytes(obj), path)


def read_parquet(path: str | os.PathLike):
    """Reads a parquet file from a local path or a cloud URL (a pandas DataFrame)."""
    import pandas as pd

    return pd.read_parquet(io.BytesIO(epath.Path(path).read_bytes()))


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------------ the lock


class WorkdirBusy(RuntimeError):
    """Another live process holds the workdir's lock (message: one line naming it)."""


def lock_path(workdir: str | os.PathLike) -> Path:
    """The lock file of ``workdir``: inside it for a local folder; for a cloud URL (gs://), a local file named after
    the URL under ``~/.cache/sparse_rnn_jax/locks`` (so it only keeps runs on this host apart)."""
    if is_remote(workdir):
        key = sha256_hex(os.fspath(workdir).rstrip("/").encode())[:24]
        return Path(os.path.expanduser("~")) / ".cache" / "sparse_rnn_jax" / "locks" / f"{key}.lock"
    return Path(os.fspath(workdir)) / LOCK_FILE


class WorkdirLock:
    """The lock that keeps one run per workdir: an OS file lock (``filelock``; flock on Linux, released by the
    kernel when its process dies, so a crashed run's lock is simply taken over) plus a JSON record of the holder
    (host, pid, start time), removed on release. ``acquire`` raises WorkdirBusy naming the live holder; it returns
    the record of a previous holder that died without releasing (None otherwise)."""

    def __init__(self, workdir: str | os.PathLike):
        self.path = lock_path(workdir)
        self.owner_path = self.path.with_name(LOCK_OWNER_FILE)
        self._lock = None

    def holder(self) -> dict | None:
        """The holder record as written (None when there is none or it is unreadable)."""
        try:
            record = json.loads(self.owner_path.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _live_holder(self) -> dict | None:
        """The holder record, unless it names a process of this host that is gone (the record a crashed run left,
        which the live holder, having just taken the lock, has not replaced yet)."""
        record = self.holder()
        if not isinstance(record, dict):
            return None
        pid = record.get("pid")
        if record.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0 and not process_alive(pid):
            return None
        return record

    def acquire(self) -> dict | None:
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = self._live_holder()
            for _ in range(20):  # a holder that has just started writes its record within moments
                if holder is not None:
                    break
                time.sleep(0.05)
                holder = self._live_holder()
            raise WorkdirBusy(f"is in use by another run ({describe_holder(holder)})") from None
        self._lock = lock
        remove_temporaries(self.owner_path.parent, (self.owner_path.name,))  # a record write that was killed
        stale = self.holder()
        record = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json_atomic(record, self.owner_path)
        return stale

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            self.owner_path.unlink()
        except OSError:
            pass
        self._lock.release()
        self._lock = None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def describe_holder(record: dict | None) -> str:
    """A lock holder record in words."""
    if not record:
        return "holder unknown: it has just started"
    return f"host {record.get('host')}, pid {record.get('pid')}, started {record.get('started')}"
