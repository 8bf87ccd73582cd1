"""From a recommendation to a trained network: ``recommend --data --train_top`` trains the best candidate, and the
printed command (``run.command.sweep_command``) gives back the same run config and the same results."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd

from tests.conftest import REPO

PARSE = """
import sys
from absl import flags
from experiments import common, sweep_flags
from sparse_rnn_jax.tasks.registry import TASKS
flags.DEFINE_enum("task", "rad", list(TASKS), "")
sweep_flags.define_task_flags(list(TASKS))
flags.FLAGS(["x", *sys.argv[1:]])
import json
print(json.dumps(sweep_flags.run_config(flags.FLAGS.task).to_dict()))
"""


def _python(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_command_parses_back_to_its_run_config(tmp_path):
    from sparse_rnn_jax.engine.config import TrainConfig
    from sparse_rnn_jax.run.command import specs_config, sweep_args
    from sparse_rnn_jax.tasks.registry import get_task

    text = "b#1:h=7:lr=0.001:act=tanh:hx=0.5/0.0/0.1:hh=1.0/0.0/0.05:hy=1.0/0.0/0.05:yx=1.0/0.0/0.05:yh=1.0/0.0/0.05"
    text += ":yy=0.3/0.0/0.05"
    config = specs_config(
        "rad",
        get_task("rad").config_type(train_size=100, mnist_source="embedded", image_size=20),
        [text],
        seeds=3,
        train=TrainConfig(epochs=2, per_model_order=True, max_buckets=2),
    )
    proc = _python("-c", PARSE, *sweep_args(config, str(tmp_path / "w")))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(config.to_dict()))


def test_train_top_trains_the_best_candidate_and_its_command_reproduces_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "sign.npz", x=x, labels=(x[:, :, 0].sum(axis=1) > 0).astype(np.int64))
    work = tmp_path / "top"
    proc = _python(
        "-m",
        "experiments.recommend",
        f"--data={tmp_path / 'sign.npz'}",
        "--budget=400",
        "--train_top=1",
        "--seeds=2",
        "--epochs=1",
        "--num_candidates=5",
        f"--workdir={work}",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(proc.stdout)
    best = d["candidates"][0]
    assert all(
        "spec" in c and c["command"].startswith("python -m experiments.sweep --task=npz") for c in d["candidates"]
    )
    assert best["predicted_interval"][0] <= best["predicted_interval"][1]
    assert best["predicted_min_val_loss"] == best["predicted_min_loss"] * d["task"]["chance_loss"]
    trained = d["trained"]
    assert [r["config"] for r in trained["rows"]] == [best["config"]] and trained["rows"][0]["seeds"] == 2
    results = pd.read_parquet(work / "results.parquet")
    assert sorted(results["config"].unique()) == [best["config"]] and results["model_id"].nunique() == 2
    # The printed command of the trained population, run by hand into another folder, trains the same run.
    again = tmp_path / "again"
    args = shlex.split(trained["command"].replace(f"--workdir={work}", f"--workdir={again}"))
    assert args[:3] == ["python", "-m", "experiments.sweep"]
    rerun = _python(*args[1:], "--noprogress")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    first, second = (json.loads((w / "run.json").read_text())["config"] for w in (work, again))
    assert first == second
    pd.testing.assert_frame_equal(results, pd.read_parquet(again / "results.parquet"))
