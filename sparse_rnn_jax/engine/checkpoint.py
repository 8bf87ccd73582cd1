"""A sweep's committed state: checkpoints of the chunk in training and of every finished chunk, the results table
verified against the manifest, and the commit that ties them together.

Write protocol (``SweepLedger``; one commit per finished epoch of a chunk, and one per mid-epoch stop):

  1. results.parquet rewritten with the epoch's rows (temporary file, flush, rename)
  2. the chunk's TrainState -> checkpoints/ckpt-<n>.npz (the same way), and the sha256 of its arrays
  3. manifest.json (the same way): per chunk its model ids, committed epochs and the sha256 of its rows; the
     sha256 of results.parquet; the two latest checkpoints and each finished chunk's final checkpoint, each with
     the chunk, epoch, step, training-loss sums and array hash. This rename is the commit.
  4. checkpoint files the manifest no longer names are removed.

A finished chunk's final checkpoint is also the one store of its trained weights (``final_arrays``; read through
``engine.sweep.load_final_params`` by scoring, pruning, ``load_member`` and the gradient-scale study).

A kill at any instant leaves the previous commit intact. On start only what the manifest names is trusted:
results.parquet is read and checked against it (rows of uncommitted epochs or of model ids outside the plan are
dropped; a chunk whose committed rows are missing or differ is retrained from the start, training being
deterministic), and a checkpoint is used only when its arrays hash to the recorded value; an unreadable or
altered one is skipped with a one-line warning for the previous intact one (or the chunk's start).

Checkpoint files are numpy ``.npz`` archives holding each array's non-zero entries (bit patterns, so NaN payloads
survive), a bitmask of where they go and one of where -0.0 is: the padded and masked entries of a population's
weights and Adam moments are zeros of either sign, so a checkpoint holds about the trainable weights, not the dense
padded arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optax

from sparse_rnn_jax.engine.programs import TrainState
from sparse_rnn_jax.engine.workdir import (
    CHECKPOINTS_DIR,
    MANIFEST_FILE,
    NO_FAULTS,
    RESULTS_FILE,
    RUN_FILE,
    SCORES_FILE,
    Faults,
    is_remote,
    json_bytes,
    parquet_bytes,
    remove_temporaries,
    sha256_hex,
    write_bytes_atomic,
)

MANIFEST_FORMAT = 1
KEEP_CHECKPOINTS = 2
CHECKPOINT_NAME = re.compile(r"ckpt-[0-9]{6,}\.npz")
"""The names of the checkpoint files (``ckpt-<n>.npz``); nothing else in checkpoints/ is ever read or removed."""
CHECKPOINT_TEMPORARY = re.compile(r"\.ckpt-[0-9]{6,}\.npz\.[A-Za-z0-9_]+\.tmp")
"""The temporary files of a checkpoint write that was killed (``write_bytes_atomic``)."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, or whose arrays do not hash to the recorded value."""


# -------------------------------------------------------------------------------------------- state files


def state_leaves(state: TrainState) -> dict[str, Any]:
    """A TrainState's leaves by name: ``params|k``, ``mu|k``, ``nu|k`` (Adam's moments), ``count``, ``diverged``."""
    adam = state.opt_state
    out = {}
    for prefix, tree in (("params", state.params), ("mu", adam.mu), ("nu", adam.nu)):
        for k in sorted(tree):
            out[f"{prefix}|{k}"] = tree[k]
    out["count"] = adam.count
    out["diverged"] = state.diverged
    return out


def state_arrays(state: TrainState, fetch: Callable[[Any], np.ndarray] = np.asarray) -> dict[str, np.ndarray]:
    """``state_leaves`` as host arrays; ``fetch`` gathers a global array (every process of a multi-process run must
    call it)."""
    return {k: np.asarray(fetch(v)) for k, v in state_leaves(state).items()}


def state_from_arrays(arrays: Mapping[str, np.ndarray]) -> TrainState:
    """The inverse of ``state_arrays`` (numpy leaves)."""

    def tree(prefix):
        return {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "|")}

    adam = optax.ScaleByAdamState(count=arrays["count"], mu=tree("mu"), nu=tree("nu"))
    return TrainState(tree("params"), adam, arrays["diverged"])


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of named arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(f"u{a.dtype.itemsize}")


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Named arrays as ``.npz`` bytes: per array its non-zero bit patterns and a packed bitmask of their places."""
    meta, blobs = {}, {}
    for i, name in enumerate(sorted(arrays)):
        a = np.asarray(arrays[name])
        meta[name] = {"i": i, "dtype": a.dtype.str, "shape": list(a.shape)}
        u = _bits(a)
        support = u != 0
        if a.dtype.kind == "f":  # -0.0 (a negative initial weight times its mask 0) goes in a mask of its own
            negative_zero = u == np.asarray(1, u.dtype) << np.asarray(8 * a.dtype.itemsize - 1, u.dtype)
            support &= ~negative_zero
            blobs[f"z{i}"] = np.packbits(negative_zero)
        blobs[f"v{i}"] = u[support]
        blobs[f"m{i}"] = np.packbits(support)
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **blobs)
    return buf.getvalue()


def unpack_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The inverse of ``pack_arrays``; CheckpointError on anything malformed (zip CRCs included)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            out = {}
            for name, m in meta.items():
                dtype, shape = np.dtype(m["dtype"]), tuple(m["shape"])
                n = int(np.prod(shape, dtype=np.int64))
                support = np.unpackbits(z[f"m{m['i']}"], count=n).astype(bool)
                values = z[f"v{m['i']}"]
                flat = np.zeros(n, f"u{dtype.itemsize}")
                flat[support] = values
                if dtype.kind == "f":
                    flat[np.unpackbits(z[f"z{m['i']}"], count=n).astype(bool)] = np.asarray(
                        1, flat.dtype
                    ) << np.asarray(8 * dtype.itemsize - 1, flat.dtype)
                out[name] = flat.view(dtype).reshape(shape)
            return out
    except Exception as e:  # zipfile.BadZipFile, ValueError, KeyError, OSError, ...
        raise CheckpointError(f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def read_checkpoint(path, digest: str) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at ``path`` (an ``epath.Path``), checked against ``digest``."""
    try:
        data = path.read_bytes()
    except (OSError, FileNotFoundError) as e:
        raise CheckpointError(f"unreadable ({type(e).__name__})") from None
    arrays = unpack_arrays(data)
    if arrays_digest(arrays) != digest:
        raise CheckpointError("its arrays do not match their recorded sha256")
    return arrays


def fit_population(arrays: dict[str, np.ndarray], like: Mapping[str, Any], real: int) -> dict[str, np.ndarray]:
    """``arrays`` checked against the names, dtypes and per-model shapes of ``like``; a different population size
    (another device count pads the chunk with other ghosts, copies of its last member) is refitted from the
    ``real`` members. CheckpointError on any other difference."""
    if set(arrays) != set(like):
        raise CheckpointError("it holds other arrays than this chunk's state")
    out = {}
    for name, ref in like.items():
        a = arrays[name]
        if a.dtype != np.dtype(ref.dtype) or a.shape[1:] != tuple(ref.shape[1:]) or a.shape[0] < real:
            raise CheckpointError(f"array {name} is {a.dtype}{list(a.shape)}, expected {ref.dtype}{list(ref.shape)}")
        p = ref.shape[0]
        if a.shape[0] != p:
            a = np.concatenate([a[:real], np.repeat(a[real - 1 : real], p - real, axis=0)])
        out[name] = a
    return out


# ------------------------------------------------------------------------------------------------ results


def rows_digest(frame) -> str:
    """sha256 of a results frame's values, independent of row order and of pandas' dtype choices (numbers as
    64-bit values, NaN canonical; other columns as JSON)."""
    import pandas as pd

    frame = frame.sort_values(["model_id", "epoch"], kind="stable").reset_index(drop=True)
    h = hashlib.sha256(f"{len(frame)}\0".encode())
    for col in sorted(frame.columns):
        s = frame[col]
        h.update(f"{col}\0".encode())
        if pd.api.types.is_bool_dtype(s.dtype):
            h.update(b"b" + s.to_numpy(np.uint8).tobytes())
        elif pd.api.types.is_integer_dtype(s.dtype):
            h.update(b"i" + s.to_numpy(np.int64).tobytes())
        elif pd.api.types.is_float_dtype(s.dtype):
            v = s.to_numpy(np.float64)
            h.update(b"f" + np.where(np.isnan(v), np.nan, v).tobytes())
        else:
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in s.tolist()]
            h.update(b"o" + json.dumps(values, default=str).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ the ledger


@dataclasses.dataclass
class StartPoint:
    """Where a chunk's training starts: a restored state (host arrays; None: the chunk's initial weights), the
    1-based epoch, the step within it and the training-loss sums of the steps already done."""

    arrays: dict[str, np.ndarray] | None
    epoch: int
    step: int
    loss_sum: list[float] | None


def _empty_manifest() -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "results_sha256": None,
        "results_rows": 0,
        "chunks": {},
        "checkpoints": [],
        "finals": {},
        "next": 1,
    }


def _check_manifest(m) -> None:
    """ValueError unless ``m`` has the manifest's structure (so that no later step trips over a damaged one)."""
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise ValueError("unknown format")
    chunks, entries, finals, nxt = (m.get(k) for k in ("chunks", "checkpoints", "finals", "next"))
    for name, value, kind in (("chunks", chunks, dict), ("checkpoints", entries, list), ("finals", finals, dict)):
        if not isinstance(value, kind):
            raise ValueError(f"field {name!r} is missing or not {'an object' if kind is dict else 'a list'}")
    if not (isinstance(nxt, int) and not isinstance(nxt, bool) and nxt >= 1):
        raise ValueError("field 'next' is not an integer >= 1")
    if not (m.get("results_sha256") is None or isinstance(m["results_sha256"], str)):
        raise ValueError("field 'results_sha256' is not a string")
    for c in chunks.values():
        if not (
            isinstance(c, dict)
            and isinstance(c.get("models"), list)
            and all(isinstance(i, int) for i in c["models"])
            and isinstance(c.get("epochs"), int)
            and c["epochs"] >= 0
            and isinstance(c.get("rows_sha256"), str)
        ):
            raise ValueError("field 'chunks' holds a malformed chunk record")
    for e in entries + list(finals.values()):
        if not (
            isinstance(e, dict)
            and all(isinstance(e.get(k), str) for k in ("file", "chunk", "sha256"))
            and all(isinstance(e.get(k), int) for k in ("epoch", "step"))
            and CHECKPOINT_NAME.fullmatch(e["file"])
            and (e.get("loss_sum") is None or isinstance(e["loss_sum"], list))
        ):
            raise ValueError("field 'checkpoints' or 'finals' holds a malformed checkpoint record")


def _load_manifest(path) -> dict:
    """The manifest at ``path``, checked (``_check_manifest``); OSError, UnicodeDecodeError or ValueError otherwise."""
    m = json.loads(path.read_bytes().decode())
    _check_manifest(m)
    return m


def manifest_problem(workdir) -> str | None:
    """Why the workdir's manifest.json cannot be trusted (unreadable, not JSON, or not of the manifest's structure),
    in a few words; None when it is sound or absent."""
    path = workdir / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        _load_manifest(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return " ".join(str(e).split())[:120]
    return None


def final_entries(workdir) -> dict[str, dict]:
    """chunk key -> the record of its final checkpoint (file, epoch, step, sha256) for every finished chunk the
    workdir's manifest names ({} without a manifest). CheckpointError when the manifest is damaged."""
    path = workdir / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        m = _load_manifest(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{MANIFEST_FILE} is unreadable ({' '.join(str(e).split())[:120]})") from None
    return dict(m["finals"])


def final_arrays(workdir, chunk_key: str) -> dict[str, np.ndarray] | None:
    """The state arrays (``state_arrays``: ``params|k``, ``mu|k``, ``nu|k``, ``count``, ``diverged``) of the finished
    chunk ``chunk_key`` from the final checkpoint its manifest names (``final_entries``); None when the chunk has
    none (not finished). CheckpointError when the manifest is damaged or the file does not hash to its recorded
    value: damaged weights are never returned."""
    entry = final_entries(workdir).get(chunk_key)
    if entry is None:
        return None
    try:
        return read_checkpoint(workdir / CHECKPOINTS_DIR / entry["file"], entry["sha256"])
    except CheckpointError as e:
        raise CheckpointError(f"the final checkpoint of chunk {chunk_key} ({entry['file']}) is {e}") from None


class SweepLedger:
    """The committed state of a sweep's workdir for a plan of chunks (the write protocol of the module docstring).

    ``open`` verifies what is on disk and repairs it (the lead process writes); ``committed_epochs``,
    ``start_point``, ``commit_epoch`` and ``commit_stop`` then drive the training. Every process of a
    multi-process run makes the same calls (the state is gathered for the lead to write). ``faults``: where a test
    kills the writes (``engine.workdir.Faults``; the training loop reaches its boundaries through ``ledger.faults``)."""

    def __init__(
        self,
        workdir,
        chunks: Sequence,
        *,
        lead: bool = True,
        log: Callable[[str], None] = print,
        faults: Faults = NO_FAULTS,
    ):
        import pandas as pd

        from sparse_rnn_jax.engine.results import RESULT_COLUMNS

        self.workdir = workdir
        self.ckpt_dir = workdir / CHECKPOINTS_DIR
        self.lead = lead
        self.log = log
        self.faults = faults
        self.plan = {c.key: [m.model_id for m in c.members] for c in chunks}
        self.manifest = _empty_manifest()
        self.frame = pd.DataFrame(columns=list(RESULT_COLUMNS))

    # ---------------------------------------------------------------- reading and verifying

    def _read_manifest(self) -> dict:
        path = self.workdir / MANIFEST_FILE
        if not path.exists():
            return _empty_manifest()
        try:
            return _load_manifest(path)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            self.log(f"warning: {MANIFEST_FILE} is unreadable ({e}); nothing recorded in this workdir is trusted")
            return _empty_manifest()

    def _read_results(self):
        import pandas as pd

        path = self.workdir / RESULTS_FILE
        if not path.exists():
            return None, None, "missing"
        try:
            data = path.read_bytes()
            return pd.read_parquet(io.BytesIO(data)), sha256_hex(data), None
        except Exception as e:  # pyarrow raises several kinds
            return None, None, f"unreadable ({type(e).__name__})"

    def open(self, barrier: Callable[[str], None] = lambda name: None) -> None:
        """Reads the manifest and results.parquet, keeps what verifies, and (lead) writes back a consistent pair."""
        import pandas as pd

        m = self._read_manifest()
        dropped_plan = [k for k, c in m["chunks"].items() if self.plan.get(k) != c.get("models")]
        for k in dropped_plan:
            del m["chunks"][k]
            m["finals"].pop(k, None)
        if dropped_plan:
            self.log(f"warning: {MANIFEST_FILE} names chunks of another plan ({', '.join(dropped_plan[:3])}); ignored")
        frame, digest, problem = self._read_results()
        repaired = bool(dropped_plan)
        lost = []
        if frame is not None and digest == m.get("results_sha256") and not dropped_plan:
            self.frame = frame
        else:
            kept = []
            if frame is not None and not {"model_id", "epoch"} <= set(frame.columns):
                frame, problem = None, "without model_id and epoch columns"
            for key, c in sorted(m["chunks"].items()):
                try:
                    rows = frame[frame["model_id"].isin(c["models"]) & (frame["epoch"] <= c["epochs"])]
                    ok = len(rows) == len(c["models"]) * c["epochs"] and rows_digest(rows) == c["rows_sha256"]
                except Exception:  # no table, or columns of the wrong kind
                    ok = False
                if ok:
                    kept.append(rows)
                else:
                    lost.append(key)
            for key in lost:
                del m["chunks"][key]
            self.frame = (
                pd.concat(kept, ignore_index=True).sort_values(["model_id", "epoch"]).reset_index(drop=True)
                if kept
                else self.frame
            )
            total = 0 if frame is None else len(frame)
            extra = total - len(self.frame)
            if lost or extra > 0 or problem not in (None, "missing"):
                what = f"results.parquet is {problem}" if problem else "results.parquet differs from the manifest"
                parts = [f"kept {len(self.frame)} verified row(s)"]
                if extra > 0:
                    parts.append(f"dropped {extra} row(s) that no commit names")
                if lost:
                    parts.append(f"retraining chunk(s) {', '.join(lost[:4])}{' ...' if len(lost) > 4 else ''}")
                self.log(f"warning: {what}: {'; '.join(parts)}")
            repaired = repaired or frame is None or extra != 0 or bool(lost) or digest != m.get("results_sha256")
        self.manifest = m
        barrier("ledger_verified")
        if self.lead:
            # a repair is written back (also when it lost every chunk), so that the next open finds it consistent
            if repaired and (m["chunks"] or lost or (self.workdir / RESULTS_FILE).exists()):
                data = parquet_bytes(self.frame)
                write_bytes_atomic(data, self.workdir / RESULTS_FILE)
                self.faults.reach("repair")
                m["results_sha256"], m["results_rows"] = sha256_hex(data), len(self.frame)
                write_bytes_atomic(json_bytes(m), self.workdir / MANIFEST_FILE)
            elif not (self.workdir / MANIFEST_FILE).exists():
                # from the first moment on, results.parquet without manifest.json is never this code's doing
                write_bytes_atomic(json_bytes(m), self.workdir / MANIFEST_FILE)
            self._collect_garbage()
        barrier("ledger_repaired")

    def _referenced(self) -> set[str]:
        m = self.manifest
        return {e["file"] for e in m["checkpoints"]} | {e["file"] for e in m["finals"].values()}

    def _collect_garbage(self) -> None:
        """Removes checkpoint files (and leftovers of killed writes) that the manifest does not name."""
        local = not is_remote(self.workdir)
        if not self.ckpt_dir.exists() or (local and os.path.islink(os.fspath(self.ckpt_dir))):
            return  # never through a link out of the workdir (a run refuses such a workdir before it starts)
        keep = self._referenced()
        for p in self.ckpt_dir.iterdir():
            # only the files this code writes (its checkpoint names and their temporaries); a folder or a file of
            # any other name is not ours to remove, and a link is removed itself, never followed
            if p.name in keep or not (CHECKPOINT_NAME.fullmatch(p.name) or CHECKPOINT_TEMPORARY.fullmatch(p.name)):
                continue
            if local and os.path.isdir(os.fspath(p)) and not os.path.islink(os.fspath(p)):
                continue
            p.unlink()
        if local:
            remove_temporaries(os.fspath(self.workdir), (RESULTS_FILE, MANIFEST_FILE, RUN_FILE, SCORES_FILE))

    # ---------------------------------------------------------------- queries

    def committed_epochs(self, chunk_key: str) -> int:
        """The epochs of ``chunk_key`` whose rows are committed (0 when none)."""
        return int(self.manifest["chunks"].get(chunk_key, {}).get("epochs", 0))

    def start_point(self, chunk_key: str, like: Mapping[str, Any], real: int) -> StartPoint:
        """The latest intact checkpoint of ``chunk_key`` from which training can continue without a gap in its
        committed rows (the chunk's start when there is none). ``like``: the chunk's fresh state arrays (names,
        dtypes, shapes); ``real``: its members without ghosts."""
        m = self.manifest
        done = self.committed_epochs(chunk_key)
        entries = [e for e in m["checkpoints"] if e["chunk"] == chunk_key]
        if chunk_key in m["finals"]:
            entries.append(m["finals"][chunk_key])
        entries = sorted({e["file"]: e for e in entries}.values(), key=lambda e: (e["epoch"], e["step"]), reverse=True)
        skipped = []
        for e in entries:
            if not 1 <= e["epoch"] <= done + 1:
                continue
            try:
                arrays = fit_population(read_checkpoint(self.ckpt_dir / e["file"], e["sha256"]), like, real)
            except CheckpointError as err:
                skipped.append(f"{e['file']} (epoch {e['epoch']}, step {e['step']}) {err}")
                continue
            if skipped:
                self.log(
                    f"warning: checkpoint {'; '.join(skipped)}: resuming chunk {chunk_key} from the previous intact "
                    f"one (epoch {e['epoch']}, step {e['step']})"
                )
            loss = e.get("loss_sum")
            if loss is not None and len(loss) != len(like["count"]):
                loss = loss[:real] + [loss[real - 1]] * (len(like["count"]) - real)
            return StartPoint(arrays, int(e["epoch"]), int(e["step"]), loss)
        if skipped or done:
            reason = f"checkpoint {'; '.join(skipped)}" if skipped else "no checkpoint recorded"
            self.log(
                f"warning: {reason}: retraining chunk {chunk_key} from its start"
                + (f" (its {done} committed epoch(s) are recomputed)" if done else "")
            )
        return StartPoint(None, 1, 0, None)

    # ---------------------------------------------------------------- commits

    def _save_checkpoint(self, arrays, chunk_key, epoch, step, loss_sum) -> dict | None:
        m = self.manifest
        name = f"ckpt-{int(m['next']):06d}.npz"
        m["next"] = int(m["next"]) + 1
        if not self.lead:
            return None
        halfway = functools.partial(self.faults.reach, "checkpoint_partial")
        write_bytes_atomic(pack_arrays(arrays), self.ckpt_dir / name, halfway=halfway)
        self.faults.reach("checkpoint_written")
        return {
            "file": name,
            "chunk": chunk_key,
            "epoch": int(epoch),
            "step": int(step),
            "loss_sum": [float(v) for v in loss_sum],
            "sha256": arrays_digest(arrays),
        }

    def _commit(self, entry: dict | None, final_key: str | None = None) -> None:
        m = self.manifest
        if self.lead:
            m["checkpoints"] = (m["checkpoints"] + [entry])[-KEEP_CHECKPOINTS:]
            if final_key is not None:
                m["finals"][final_key] = entry
            write_bytes_atomic(json_bytes(m), self.workdir / MANIFEST_FILE)
            self.faults.reach("manifest_written")
            self._collect_garbage()

    def commit_epoch(
        self, chunk_key: str, epoch: int, rows: list[dict], arrays: dict[str, np.ndarray], final: bool
    ) -> None:
        """Commits a finished epoch: its rows, the state after it (the start of ``epoch + 1``) and the manifest;
        ``final``: the chunk's last epoch (its state is kept as the chunk's final checkpoint)."""
        import pandas as pd

        from sparse_rnn_jax.engine.results import RESULT_COLUMNS

        new = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        frame = frame.drop_duplicates(["model_id", "epoch"], keep="last").sort_values(["model_id", "epoch"])
        self.frame = frame.reset_index(drop=True)
        m = self.manifest
        if self.lead:
            data = parquet_bytes(self.frame)
            write_bytes_atomic(data, self.workdir / RESULTS_FILE)
            self.faults.reach("results_written")
            written = pd.read_parquet(io.BytesIO(data))
            models = self.plan[chunk_key]
            epochs = max(epoch, self.committed_epochs(chunk_key))
            rows_of = written[written["model_id"].isin(models) & (written["epoch"] <= epochs)]
            m["results_sha256"], m["results_rows"] = sha256_hex(data), len(self.frame)
            m["chunks"][chunk_key] = {"models": models, "epochs": epochs, "rows_sha256": rows_digest(rows_of)}
        entry = self._save_checkpoint(arrays, chunk_key, epoch + 1, 0, [0.0] * len(arrays["count"]))
        self._commit(entry, chunk_key if final else None)

    def commit_stop(self, chunk_key: str, epoch: int, step: int, loss_sum, arrays: dict[str, np.ndarray]) -> None:
        """Commits a mid-epoch state (a stop request): the checkpoint and the manifest naming it."""
        self._commit(self._save_checkpoint(arrays, chunk_key, epoch, step, loss_sum))
