"""Two processes joined by jax.distributed on 127.0.0.1 (2 fake CPU devices each) give the same results as
one process with 4 devices, and write results and run.json once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO  # noqa: E402

ARGS = [
    "--mnist_source=embedded",
    "--sampler=normal_size",
    "--budget=20000",
    "--num_models=5",
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "experiments.rad_sweep", f"--cache_dir={cache}", *ARGS]
    one = subprocess.run(
        [*cmd, f"--workdir={tmp_path / 'one'}"], cwd=REPO, env=_env(4), capture_output=True, text=True, timeout=600
    )
    assert one.returncode == 0, one.stderr[-2000:]
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                *cmd,
                f"--workdir={tmp_path / 'two'}",
                f"--coordinator_address=127.0.0.1:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            cwd=REPO,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert "results:" in outs[0][0] and "results:" not in outs[1][0]  # only process 0 reports
    a = pd.read_parquet(tmp_path / "one" / "results.parquet")
    b = pd.read_parquet(tmp_path / "two" / "results.parquet")
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["processes"] == 2 and len(run["devices"]) == 4 and run["status"] == "complete"


def test_distributed_flags_go_together(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.rad_sweep",
            f"--workdir={tmp_path / 'w'}",
            *ARGS,
            "--coordinator_address=127.0.0.1:1",
        ],
        cwd=REPO,
        env=_env(1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "go together" in res.stderr
