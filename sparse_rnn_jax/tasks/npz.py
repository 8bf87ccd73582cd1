"""Bring-your-own-data tasks from a ``.npz`` file (``--task=npz --data=FILE.npz``).

File contents (other keys are ignored):

* ``x``: real array [N, T, X] (cast to f32), required;
* exactly one target:
  ``labels``: integer [N] (last-step classification) or [N, T] (per-step classification), or
  ``targets``: real [N, T, Y] (per-step) or [N, Y] (last step only), cast to f32;
* ``step_mask`` (optional): bool (or 0/1 integer) [N, T]; every row needs at least one True step.

Loss: given as "ce", "mse" or "bce", or inferred: integer ``labels`` -> "ce"; ``targets`` whose values are
all 0 or 1 -> "bce" (multi-hot); other ``targets`` -> "mse". "ce" needs labels; "mse"/"bce" need targets,
and "bce" targets must lie in [0, 1].

Returned arrays follow the library conventions:

* ce, labels [N] and no step_mask: {"x": f32[N, T, X], "labels": int32[N]};
* ce otherwise: {"x", "labels": int32[N, T], "step_mask": bool[N, T]}; labels [N] with a step_mask are
  placed at each row's last True step (the only True step of the returned mask); labels [N, T] without a
  step_mask get an all-True mask; class ids are checked at valid steps only and set to 0 elsewhere;
* mse / bce: {"x", "targets": f32[N, T, Y], "step_mask": bool[N, T]}; targets [N, Y] are placed at the
  last step (or each row's last True step of a given step_mask) with zeros elsewhere.

The sequences are split disjointly into train/val/test by ``fractions`` and ``data_seed`` (``split_npz``); the
engine task follows the loss and the labels' shape (ce [N]: ``classification_task``, ce [N, T]:
``step_classification_task``, mse: ``regression_task``, bce: ``multilabel_task``), its chance loss is the best
constant predictor's on the training split (``core.chance.constant_predictor_loss``), and the file's sha256 is
recorded in ``LoadedTask.info``. Every malformed file raises ``ValueError`` with a one-line message naming the
problem.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
import zipfile
from typing import Any, Callable

import numpy as np

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.tasks.base import (
    LOSSES,
    SPLITS,
    TaskDef,
    check_fractions,
    check_int,
    descriptor_dict,
    task_field,
    train_arrays,
)

MAX_CLASSES = 4096
TASK_KEY = 0x4E_50_5A_54  # stream constant for split_npz ("NPZT")


@dataclasses.dataclass(frozen=True)
class NpzConfig:
    """The data file of a sweep and how it is split and scored."""

    data: str = task_field(
        "", "Path to FILE.npz: x [N, T, X]; labels [N] | [N, T] or targets [N, T, Y] | [N, Y]; optional step_mask."
    )
    loss: str = task_field("", "ce | mse | bce; empty: inferred (integer labels: ce, targets all 0/1: bce, else mse).")
    num_classes: int = task_field(0, "Classes of a ce task (0: the largest label + 1).")
    fractions: tuple[float, float, float] = task_field(
        (0.8, 0.1, 0.1), "(train, val, test) shares of the source examples, split disjointly."
    )
    data_seed: int = task_field(0, "Seed of the split of the file's sequences into train/val/test.")

    def __post_init__(self) -> None:
        if not isinstance(self.data, str):
            raise ValueError(f"data must be a path, got {type(self.data).__name__}")
        if self.loss not in ("", *LOSSES):
            raise ValueError(f"loss must be empty (inferred) or one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_int("num_classes", self.num_classes, 0)
        fractions = check_fractions(self.fractions)
        if fractions[0] <= 0 or fractions[1] <= 0:
            raise ValueError(f"fractions: train and val shares must be > 0, got {fractions}")
        object.__setattr__(self, "fractions", fractions)  # a hashable tuple of floats
        check_int("data_seed", self.data_seed, 0)


def task_name(path: str | os.PathLike) -> str:
    """The results tables' name of a file's task: ``npz_`` + its stem (characters other than [A-Za-z0-9_.-]
    become ``_``)."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return "npz_" + re.sub(r"[^A-Za-z0-9_.-]", "_", stem)


def _fail(path: str, message: str) -> ValueError:
    return ValueError(f"{os.path.basename(str(path))}: {message}")


def _read_array(npz: np.lib.npyio.NpzFile, key: str, path: str) -> np.ndarray:
    try:
        arr = npz[key]
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise _fail(path, f"array {key!r} is an object array (pickled data is not supported)") from None
        raise _fail(path, f"array {key!r} could not be read: {err}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _fail(path, f"array {key!r} could not be read ({type(err).__name__}: {err})") from None
    if arr.dtype.hasobject:
        raise _fail(path, f"array {key!r} is an object array (pickled data is not supported)")
    return arr


def _is_real(arr: np.ndarray) -> bool:
    return arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)


def _to_f32(arr: np.ndarray, key: str, path: str) -> np.ndarray:
    if not _is_real(arr):
        raise _fail(path, f"array {key!r} must be real numeric, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise _fail(path, f"array {key!r} contains {bad} NaN/inf values (after casting to float32)")
    return out


def _last_true(step_mask: np.ndarray) -> np.ndarray:
    t = step_mask.shape[1]
    return t - 1 - np.argmax(step_mask[:, ::-1], axis=1)


def infer_loss(arrays: dict[str, np.ndarray]) -> str:
    """Loss kind implied by the arrays: "ce" for integer labels, "bce" for targets in {0, 1}, else "mse"."""
    if "labels" in arrays:
        return "ce"
    targets = np.asarray(arrays["targets"])
    return "bce" if np.all((targets == 0) | (targets == 1)) else "mse"


def load_npz_task(
    path: str | os.PathLike, loss: str | None = None, num_classes: int | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Load and validate a task file; returns (arrays, ``describe_arrays`` of all of them).

    ``num_classes`` (ce only) fixes the output size; class ids must be below it. Without it the output size
    is ``max(label) + 1``, which must not exceed ``MAX_CLASSES``. Raises ValueError for any malformed file.
    """
    path = os.fspath(path)
    if loss is not None and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)} or None")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise _fail(path, "not an .npz archive (not a zip file)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise _fail(path, f"not a readable .npz archive ({type(err).__name__}: {err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _fail(path, "not an .npz archive")
    with npz:
        keys = set(npz.files)
        if "x" not in keys:
            raise _fail(path, f"missing array 'x' (found: {sorted(keys) or 'nothing'})")
        has_labels, has_targets = "labels" in keys, "targets" in keys
        if has_labels and has_targets:
            raise _fail(path, "has both 'labels' and 'targets'; keep exactly one")
        if not (has_labels or has_targets):
            raise _fail(path, "missing target: need 'labels' (classification) or 'targets' (regression/bce)")
        raw = {k: _read_array(npz, k, path) for k in ("x", "labels", "targets", "step_mask") if k in keys}

    x = raw["x"]
    if x.ndim != 3:
        raise _fail(path, f"'x' must have ndim 3 [N, T, X], got ndim {x.ndim} shape {list(x.shape)}")
    n, t, xdim = x.shape
    if n == 0 or t == 0 or xdim == 0:
        raise _fail(path, f"'x' must be non-empty in every dimension, got shape {list(x.shape)}")
    x = _to_f32(x, "x", path)

    step_mask = raw.get("step_mask")
    if step_mask is not None:
        if step_mask.ndim != 2:
            raise _fail(path, f"'step_mask' must have ndim 2 [N, T], got ndim {step_mask.ndim}")
        if step_mask.shape[0] != n:
            raise _fail(path, f"N mismatch: 'step_mask' has {step_mask.shape[0]} rows but 'x' has {n}")
        if step_mask.shape[1] != t:
            raise _fail(path, f"T mismatch: 'step_mask' has {step_mask.shape[1]} steps but 'x' has {t}")
        if step_mask.dtype != np.bool_:
            if not np.issubdtype(step_mask.dtype, np.integer) or not np.all((step_mask == 0) | (step_mask == 1)):
                raise _fail(path, f"'step_mask' must be bool (or 0/1 integers), got dtype {step_mask.dtype}")
            step_mask = step_mask.astype(bool)
        empty = np.flatnonzero(~step_mask.any(axis=1))
        if empty.size:
            raise _fail(path, f"'step_mask' row {int(empty[0])} has no True step ({empty.size} such rows)")

    if has_labels:
        arrays = _load_labels(raw["labels"], x, step_mask, loss, num_classes, path)
        kind = "ce"
    else:
        arrays, kind = _load_targets(raw["targets"], x, step_mask, loss, path)
    return arrays, describe_arrays(arrays, kind, name=task_name(path), num_classes=num_classes)


def _load_labels(
    labels: np.ndarray,
    x: np.ndarray,
    step_mask: np.ndarray | None,
    loss: str | None,
    num_classes: int | None,
    path: str,
) -> dict[str, np.ndarray]:
    n, t, _ = x.shape
    if loss is not None and loss != "ce":
        raise _fail(path, f"loss {loss!r} needs float 'targets', but the file has integer 'labels' (use 'ce')")
    if not np.issubdtype(labels.dtype, np.integer):
        raise _fail(path, f"'labels' must be an integer array, got dtype {labels.dtype}")
    if labels.ndim not in (1, 2):
        raise _fail(path, f"'labels' must have ndim 1 [N] or 2 [N, T], got ndim {labels.ndim}")
    if labels.shape[0] != n:
        raise _fail(path, f"N mismatch: 'labels' has {labels.shape[0]} rows but 'x' has {n}")
    if labels.ndim == 2 and labels.shape[1] != t:
        raise _fail(path, f"T mismatch: 'labels' has {labels.shape[1]} steps but 'x' has {t}")
    if labels.ndim == 1 and step_mask is None:
        valid_ids = labels
    elif labels.ndim == 1:
        last = _last_true(step_mask)
        per_step = np.zeros((n, t), dtype=labels.dtype)
        per_step[np.arange(n), last] = labels
        step_mask = np.zeros((n, t), dtype=bool)
        step_mask[np.arange(n), last] = True
        labels = per_step
        valid_ids = labels[step_mask]
    else:
        step_mask = np.ones((n, t), dtype=bool) if step_mask is None else step_mask
        valid_ids = labels[step_mask]
    lo, hi = int(valid_ids.min()), int(valid_ids.max())
    if lo < 0:
        raise _fail(path, f"'labels' has negative class id {lo} at a valid step")
    limit = MAX_CLASSES if num_classes is None else num_classes
    if hi >= limit:
        what = f"num_classes={num_classes}" if num_classes is not None else f"MAX_CLASSES={MAX_CLASSES}"
        raise _fail(path, f"'labels' has class id {hi}, too large for {what}")
    if labels.ndim == 1:
        return {"x": x, "labels": labels.astype(np.int32)}
    return {"x": x, "labels": np.where(step_mask, labels, 0).astype(np.int32), "step_mask": step_mask}


def _load_targets(
    targets: np.ndarray, x: np.ndarray, step_mask: np.ndarray | None, loss: str | None, path: str
) -> tuple[dict[str, np.ndarray], str]:
    n, t, _ = x.shape
    if loss == "ce":
        raise _fail(path, f"loss 'ce' needs integer 'labels', but the file has 'targets' (dtype {targets.dtype})")
    if targets.ndim not in (2, 3):
        raise _fail(path, f"'targets' must have ndim 3 [N, T, Y] or 2 [N, Y], got ndim {targets.ndim}")
    if targets.shape[0] != n:
        raise _fail(path, f"N mismatch: 'targets' has {targets.shape[0]} rows but 'x' has {n}")
    if targets.ndim == 3 and targets.shape[1] != t:
        raise _fail(path, f"T mismatch: 'targets' has {targets.shape[1]} steps but 'x' has {t}")
    if targets.shape[-1] == 0:
        raise _fail(path, f"'targets' has no outputs (shape {list(targets.shape)})")
    targets = _to_f32(targets, "targets", path)
    if targets.ndim == 2:
        last = np.full(n, t - 1) if step_mask is None else _last_true(step_mask)
        full = np.zeros((n, t, targets.shape[1]), dtype=np.float32)
        full[np.arange(n), last] = targets
        step_mask = np.zeros((n, t), dtype=bool)
        step_mask[np.arange(n), last] = True
        targets = full
    elif step_mask is None:
        step_mask = np.ones((n, t), dtype=bool)
    valid = targets[step_mask]
    kind = loss if loss is not None else infer_loss({"targets": valid})
    if kind == "bce" and (valid.min() < 0 or valid.max() > 1):
        raise _fail(path, f"loss 'bce' needs targets in [0, 1], got range [{valid.min()}, {valid.max()}]")
    return {"x": x, "targets": targets, "step_mask": step_mask}, kind


def chance_loss(arrays: dict[str, np.ndarray], loss: str) -> float:
    """Loss of the best constant predictor on ``arrays`` (empirical, pooled over valid steps).

    ce: entropy (nats) of the empirical class distribution. mse: per-output target variance, averaged over
    outputs. bce: per-output binary entropy of the mean rate p, ``-(p ln p + (1 - p) ln(1 - p))``, averaged.
    """
    if loss == "ce":
        labels = arrays["labels"]
        ids = labels[arrays["step_mask"]] if labels.ndim == 2 else labels
        p = np.bincount(ids.astype(np.int64)) / ids.size
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    valid = np.asarray(arrays["targets"], dtype=np.float64)[arrays["step_mask"]]  # [M, Y]
    if loss == "mse":
        return float(valid.var(axis=0).mean())
    if loss == "bce":
        p = valid.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
        return float(h.mean())
    raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")


def describe_arrays(
    arrays: dict[str, np.ndarray], loss: str, name: str = "npz", num_classes: int | None = None
) -> dict:
    """Task summary of already-validated arrays (e.g. one split of ``split_npz``).

    output_dim: ``num_classes`` or max label + 1 for ce, Y for mse/bce. chance_loss: see ``chance_loss``
    (empirical). train_size: number of sequences in ``arrays``.
    """
    n, t, xdim = arrays["x"].shape
    if loss == "ce":
        out = int(num_classes) if num_classes is not None else int(arrays["labels"].max()) + 1
    else:
        out = int(arrays["targets"].shape[-1])
    return descriptor_dict(name, xdim, out, t, loss, chance_loss(arrays, loss), n)


def split_npz(
    arrays: dict[str, np.ndarray], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Deterministic disjoint split by sequence: {"train", "val", "test"} -> arrays with the same keys.

    Rows are shuffled by ``seed`` and cut at ``floor(cumsum(fractions) * N)``; each split keeps its rows in
    file order. A split with a positive fraction must receive at least one row.
    """
    fr = check_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    n = int(arrays["x"].shape[0])
    if any(np.asarray(v).shape[0] != n for v in arrays.values()):
        raise ValueError("N mismatch: all arrays must share the first dimension")
    rng = core_rng(seed, TASK_KEY)
    order = rng.permutation(n)
    cuts = [0, *(int(math.floor(c * n + 1e-9)) for c in np.cumsum(fr)[:2]), n]
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, split in enumerate(SPLITS):
        idx = np.sort(order[cuts[k] : cuts[k + 1]])
        if idx.size == 0 and fr[k] > 0:
            raise ValueError(f"split {split!r} would be empty: {n} sequences with fractions {fr}")
        out[split] = {key: value[idx] for key, value in arrays.items()}
    return out


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _path(config: NpzConfig) -> str:
    if not config.data:
        raise ValueError("data: no file given (the path to FILE.npz)")
    path = os.path.abspath(os.path.expanduser(config.data))
    if not os.path.isfile(path):
        raise ValueError(f"data: no such file {config.data!r}")
    return path


@functools.lru_cache(maxsize=2)
def _load_file(path: str, stamp: tuple[int, int], loss: str, num_classes: int) -> tuple[dict, dict, str]:
    arrays, desc = load_npz_task(path, loss or None, num_classes or None)
    return arrays, desc, file_sha256(path)


def read_file(config: NpzConfig) -> tuple[dict[str, np.ndarray], dict, str]:
    """The file's validated arrays, their ``describe_arrays`` summary and the file's sha256 (read once per file
    version); a one-line ValueError starting with ``data:`` for a missing or malformed file."""
    path = _path(config)
    st = os.stat(path)
    try:
        return _load_file(path, (st.st_mtime_ns, st.st_size), config.loss, config.num_classes)
    except ValueError as e:
        raise ValueError(f"data: {e}") from None


def check(config: NpzConfig) -> None:
    """The file exists, is a valid task file and splits as configured (every split non-empty): all before a run
    touches its workdir."""
    arrays, _, _ = read_file(config)
    try:
        split_npz(arrays, config.fractions, config.data_seed)
    except ValueError as e:
        raise ValueError(f"data: {e}") from None


def dims(config: NpzConfig) -> tuple[int, int]:
    """(X, number of classes or Y) of the file."""
    _, desc, _ = read_file(config)
    return desc["input_dim"], desc["output_dim"]


def descriptor(config: NpzConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``) of the training split: of ``data`` (the loaded ``LoadedTask``,
    whose chance loss it reports, or the train arrays), or split from the file when None."""
    arrays, desc, _ = read_file(config)
    train = split_npz(arrays, config.fractions, config.data_seed)["train"] if data is None else train_arrays(data)
    chance = data.objective.chance_loss if hasattr(data, "objective") else chance_loss(train, desc["loss"])
    n, t, _ = train["x"].shape
    return descriptor_dict(desc["name"], desc["input_dim"], desc["output_dim"], t, desc["loss"], chance, n)


def load(config: NpzConfig, log: Callable[[str], None] = print):
    """The file's train and validation splits and the engine task of its loss (module docstring)."""
    from sparse_rnn_jax.core.chance import constant_predictor_loss
    from sparse_rnn_jax.engine import task as engine_task

    arrays, desc, sha256 = read_file(config)
    try:
        splits = split_npz(arrays, config.fractions, config.data_seed)
    except ValueError as e:
        raise ValueError(f"data: {e}") from None
    train, kind = splits["train"], desc["loss"]
    target = train["labels"] if kind == "ce" else train["targets"]
    chance = constant_predictor_loss(target, train.get("step_mask"), kind)
    if kind == "ce":
        make = engine_task.classification_task if target.ndim == 1 else engine_task.step_classification_task
    else:
        make = engine_task.regression_task if kind == "mse" else engine_task.multilabel_task
    task = make(desc["name"], desc["input_dim"], desc["output_dim"], chance)
    sizes = {s: int(v["x"].shape[0]) for s, v in splits.items()}
    log(
        f"npz: {config.data}: {arrays['x'].shape[0]} sequences of {desc['seq_len']} steps, x {desc['input_dim']} -> "
        f"{desc['output_dim']} ({kind}, task {desc['name']}); split {sizes}; chance {chance:.4g}"
    )
    info = {"npz": {**dataclasses.asdict(config), "path": _path(config), "sha256": sha256, "loss_kind": kind}}
    info["npz"]["splits"] = sizes
    return engine_task.LoadedTask(task, splits["train"], splits["val"], info)


TINY = {kind: {} for kind in ("ce", "ce_steps", "mse", "bce")}  # the tests write a small file per loss kind
"""Field overrides of a tiny instance (``TaskDef.tiny``)."""
TASK = TaskDef(name="npz", config_type=NpzConfig, dims=dims, load=load, check=check, descriptor=descriptor, tiny=TINY)
