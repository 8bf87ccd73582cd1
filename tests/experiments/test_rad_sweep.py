"""rad_sweep end to end: bad input exits 2 before any work, a scaled-down smoke run, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import REPO  # noqa: E402

SMALL = [
    "--mnist_source=embedded",
    "--sampler=normal_size",
    "--budget=20000",
    "--num_models=3",
    "--configs=dense,balanced",
    "--train_size=64",
    "--val_size=32",
    "--test_size=16",
    "--batch_size=16",
    "--image_size=20",
    "--epochs=2",
    "--max_buckets=2",
    "--steps_per_call=2",
    "--progress=false",
]


def _run(args, cache, timeout=600, **kw):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "experiments.rad_sweep", f"--cache_dir={cache}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--configs=bogus"], "--configs"),
        (["--sampler=bogus"], "--sampler"),
        (["--budget=100"], "--budget"),
        (["--uniform_density=1.5", "--configs=uniform"], "--uniform_density"),
        (["--epochs=-1"], "--epochs"),
        (["--train_size=-5"], "--train_size"),
        (["--flagfile=/nonexistent/x.flags"], "flagfile"),
        (["--no_such_flag=1"], "no_such_flag"),
        (["--mnist_source=idx:/nonexistent"], "--mnist_source"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, needle):
    res = _run([f"--workdir={tmp_path / 'w'}", *SMALL, *args], tmp_path / "cache", timeout=120)
    assert res.returncode == 2, res.stderr[-1500:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "w" / "results.parquet").exists()
    assert not (tmp_path / "cache").exists()  # refused before any work


@pytest.mark.slow
def test_smoke_end_to_end_and_workdir_protection(tmp_path):
    work = tmp_path / "w"
    relative = os.path.relpath(work, REPO)  # as a user types it: a workdir relative to the current folder
    res = _run([f"--workdir={relative}", *SMALL], tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Hidden Proportion" in res.stdout and "results:" in res.stdout
    df = pd.read_parquet(work / "results.parquet")
    assert len(df) == 5 * 2 and set(df.config) == {"normal_size", "dense", "balanced"}
    run = json.loads((work / "run.json").read_text())
    assert run["status"] == "complete" and run["devices"] and "jax" in run["versions"]
    assert run["data"]["mnist_source"].startswith("embedded")
    # Same flags again: the run is complete, nothing changes.
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file() and p.name != "sweep.log"}
    res = _run([f"--workdir={work}", *SMALL], tmp_path / "cache")
    assert res.returncode == 0 and "the run is complete" in res.stderr
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file() and p.name != "sweep.log"} == before
    assert "the run is complete" in (work / "sweep.log").read_text()  # the log is appended, results untouched
    # Different flags, or fewer epochs: refused, nothing touched; --overwrite replaces.
    for other in ("--seed=1", "--epochs=1"):
        res = _run([f"--workdir={work}", *SMALL, other], tmp_path / "cache")
        assert res.returncode == 2 and "--overwrite" in res.stderr, res.stderr
        assert (work / "results.parquet").read_bytes() == before["results.parquet"]
    res = _run([f"--workdir={work}", *SMALL, "--epochs=1", "--overwrite"], tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-2000:]
    assert pd.read_parquet(work / "results.parquet").epoch.max() == 1


@pytest.mark.slow
def test_sigterm_after_first_checkpoint_then_resume_matches(tmp_path):
    args = [*SMALL, "--epochs=4", "--num_models=4", "--train_size=96"]
    clean = _run([f"--workdir={tmp_path / 'clean'}", *args], tmp_path / "cache")
    assert clean.returncode == 0, clean.stderr[-2000:]
    work = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.rad_sweep",
            f"--cache_dir={tmp_path / 'cache'}",
            f"--workdir={work}",
            *args,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (work / "results.parquet").exists():  # written with the first checkpoint
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err[-2000:]
    assert json.loads((work / "run.json").read_text())["status"] == "interrupted"
    partial = pd.read_parquet(work / "results.parquet")
    assert len(partial) < 6 * 4
    resumed = _run([f"--workdir={work}", *args], tmp_path / "cache")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    pd.testing.assert_frame_equal(
        pd.read_parquet(work / "results.parquet"), pd.read_parquet(tmp_path / "clean" / "results.parquet")
    )
