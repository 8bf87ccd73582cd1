"""A sweep's workdir: the names of what it holds, and whole-or-nothing writes (local paths or gs:// URLs).

run.json          the run config, package versions, devices, data provenance, wall time, status
results.parquet   one row per (model, epoch) (``engine.results``)
scores.parquet    per-model environment scores (tasks that score in an environment)
checkpoints/      orbax checkpoints of the chunk in training (``engine.checkpoint``)
final_params/     each chunk's trained weights when the run keeps them
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from etils import epath

RUN_FILE = "run.json"
RESULTS_FILE = "results.parquet"
SCORES_FILE = "scores.parquet"
CHECKPOINTS_DIR = "checkpoints"
FINAL_PARAMS_DIR = "final_params"
RUN_OUTPUTS: tuple[str, ...] = (RESULTS_FILE, SCORES_FILE, RUN_FILE, CHECKPOINTS_DIR, FINAL_PARAMS_DIR)
"""Everything a run writes into its workdir (what starting afresh removes; anything else stays)."""


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a cloud URL (gs://, s3://, ...) rather than a local path."""
    return "://" in os.fspath(path)


def absolute(path: str | os.PathLike) -> epath.Path:
    """``path`` as an absolute ``epath.Path`` (cloud URLs unchanged; orbax needs absolute paths)."""
    return epath.Path(path) if is_remote(path) else epath.Path(os.path.abspath(os.fspath(path)))


def final_params_dir(workdir: str | os.PathLike, chunk_key: str) -> epath.Path:
    """Where a chunk's trained weights are kept."""
    return epath.Path(workdir) / FINAL_PARAMS_DIR / chunk_key


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Writes ``data`` to ``path`` whole or not at all: locally via a temporary file in the same folder and an
    atomic rename; on a cloud store (gs://) as one object upload, which is atomic there."""
    if is_remote(path):
        target = epath.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Writes ``df`` to ``path`` (local or gs://) atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_bytes_atomic(buf.getvalue(), path)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Writes ``obj`` as JSON to a local path or gs:// URL, whole or not at all."""
    write_bytes_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), path)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a parquet file from a local path or a cloud URL."""
    return pd.read_parquet(io.BytesIO(epath.Path(path).read_bytes()))
