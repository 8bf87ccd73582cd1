"""Real kills of ``experiments.rad_sweep`` (tiny config, embedded MNIST): the entry point run with an
``engine.workdir.Faults`` injected into its ``train_and_evaluate`` exits (``os._exit``) at a write boundary; a double
Ctrl-C; two runs started at once. Each workdir then resumes to results bit for bit equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from sparse_rnn_jax.engine.workdir import FAULT_EXIT_STATUS
from tests.conftest import REPO

ARGS = [
    "--mnist_source=embedded",
    "--train_size=64",
    "--val_size=16",
    "--test_size=16",
    "--image_size=8",
    "--budget=2000",
    "--num_models=2",
    "--configs=dense",
    "--epochs=3",
    "--max_buckets=2",
    "--steps_per_call=1",
    "--progress=false",
]


FAULTY = """
import functools, runpy, sys
from sparse_rnn_jax.engine.workdir import Faults
from sparse_rnn_jax.run import train as run
run.train_and_evaluate = functools.partial(run.train_and_evaluate, faults=Faults({boundary!r}, {count}))
sys.argv = ["experiments.rad_sweep"] + sys.argv[1:]
runpy.run_module("experiments.rad_sweep", run_name="__main__", alter_sys=True)
"""
"""The entry point with a kill at the ``count``-th time the run reaches ``boundary``."""


def _cmd(work, cache, fault=None):
    args = [f"--workdir={work}", f"--cache_dir={cache}", *ARGS]
    if fault is None:
        return [sys.executable, "-m", "experiments.rad_sweep", *args]
    boundary, _, count = fault.partition(":")
    return [sys.executable, "-c", FAULTY.format(boundary=boundary, count=int(count or 1)), *args]


def _env():
    return dict(os.environ, JAX_PLATFORMS="cpu")


def _run(work, cache, *extra, fault=None):
    return subprocess.run(
        [*_cmd(work, cache, fault), *extra], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    res = _run(root / "clean", root / "cache")
    assert res.returncode == 0, res.stderr[-2000:]
    return root, pd.read_parquet(root / "clean" / "results.parquet")


def _same(work, clean_df):
    pd.testing.assert_frame_equal(pd.read_parquet(work / "results.parquet"), clean_df, check_exact=True)
    assert json.loads((work / "run.json").read_text())["status"] == "complete"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["results_written:1", "run_json:1", "checkpoint_partial:3"])
def test_killed_at_a_write_boundary_resumes_identically(clean, tmp_path, fault):
    root, clean_df = clean
    killed = _run(tmp_path / "w", root / "cache", fault=fault)
    assert killed.returncode == FAULT_EXIT_STATUS, killed.stderr[-2000:]
    resumed = _run(tmp_path / "w", root / "cache")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _same(tmp_path / "w", clean_df)


@pytest.mark.slow
def test_killed_while_overwrite_clears_then_overwrite_again(clean, tmp_path):
    root, clean_df = clean
    import shutil

    shutil.copytree(root / "clean", tmp_path / "w")
    killed = _run(tmp_path / "w", root / "cache", "--overwrite", fault="clear:1")
    assert killed.returncode == FAULT_EXIT_STATUS, killed.stderr[-2000:]
    again = _run(tmp_path / "w", root / "cache", "--overwrite")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "--overwrite: removed" in again.stderr  # progress is logged to stderr
    _same(tmp_path / "w", clean_df)


@pytest.mark.slow
def test_second_ctrl_c_exits_130_cleanly_and_the_run_resumes(clean, tmp_path):
    root, clean_df = clean
    work = tmp_path / "w"
    proc = subprocess.Popen(
        _cmd(work, root / "cache"), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stderr:  # the plan is logged, then the programs compile (seconds) before the first step
        if "hidden-size buckets" in line:
            break
    proc.send_signal(signal.SIGINT)  # the stop is only seen after the first call: a second Ctrl-C comes before
    first = proc.stderr.readline()
    assert "received signal 2" in first or "received signal 2" in proc.stderr.readline()
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert time.time() - t0 < 10  # at once, not after the compilation it interrupts
    assert "Traceback" not in err and "second signal: exiting now" in err
    resumed = _run(work, root / "cache")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _same(work, clean_df)


@pytest.mark.slow
def test_two_runs_started_together_one_is_refused(clean, tmp_path):
    root, clean_df = clean
    procs = [
        subprocess.Popen(
            _cmd(tmp_path / "w", root / "cache"),
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [e[-1500:] for _, e in outs]
    refused = next(e for p, (_, e) in zip(procs, outs) if p.returncode == 2)
    lines = [line for line in refused.splitlines() if line.strip()]
    assert len(lines) == 1 and "is in use by another run (host" in lines[0] and "pid" in lines[0], refused
    _same(tmp_path / "w", clean_df)
