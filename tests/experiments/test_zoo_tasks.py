"""experiments.sweep on the task zoo end to end: a generated task (adding) and a user's npz file train and write
results.parquet; a malformed npz file exits 2 with one line before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from tests.conftest import REPO

SMALL = [
    "--budget=300",
    "--num_models=2",
    "--configs=dense,balanced",
    "--epochs=2",
    "--progress=false",
    "--max_buckets=1",
]


def _sweep(args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "experiments.sweep", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_adding_trains_and_writes_results(tmp_path):
    work = tmp_path / "w"
    args = ["--task=adding", f"--workdir={work}", *SMALL, "--train_size=64", "--val_size=16", "--seq_len=10"]
    res = _sweep(args)
    assert res.returncode == 0, res.stderr[-3000:]
    df = pd.read_parquet(work / "results.parquet")
    assert set(df.task) == {"adding"} and len(df) == 4 * 2 and np.isfinite(df.val_loss).all()
    run = json.loads((work / "run.json").read_text())
    assert run["status"] == "complete" and run["chance_loss"] == 1 / 6
    assert run["config"]["data"]["seq_len"] == 10 and run["data"]["adding"]["train_size"] == 64


def test_npz_file_trains_and_records_its_hash(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "sign.npz", x=x, labels=(x[:, :, 0].sum(axis=1) > 0).astype(np.int64))
    work = tmp_path / "w"
    res = _sweep(["--task=npz", f"--workdir={work}", *SMALL, f"--data={tmp_path / 'sign.npz'}", "--batch_size=8"])
    assert res.returncode == 0, res.stderr[-3000:]
    df = pd.read_parquet(work / "results.parquet")
    assert set(df.task) == {"npz_sign"} and (df.output_dim == 2).all() and df.val_accuracy.between(0, 1).all()
    run = json.loads((work / "run.json").read_text())
    assert len(run["data"]["npz"]["sha256"]) == 64
    assert run["data"]["npz"]["splits"] == {"train": 80, "val": 10, "test": 10}


def test_bad_npz_file_exits_2_with_one_line(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 4, 2)), labels=np.zeros(9, dtype=np.int64))
    work = tmp_path / "w"
    res = _sweep(["--task=npz", f"--workdir={work}", *SMALL, f"--data={tmp_path / 'bad.npz'}"])
    assert res.returncode == 2, res.stderr[-3000:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --data: bad.npz: N mismatch"), res.stderr
    assert not (work / "results.parquet").exists()
