"""ah_sweep end to end on a tiny collected expert set: training, scoring in the environment, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import tests.needs_adroit  # noqa: F401  (skips this module without the Adroit stack)
from tests.conftest import REPO  # noqa: E402


def _run(module, args, env, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory, shared_dir):
    home = tmp_path_factory.mktemp("minari")
    env = dict(os.environ, MINARI_DATASETS_PATH=str(home), JAX_PLATFORMS="cpu")
    npz = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    res = _run(
        "experiments.collect_minari",
        [
            "--env_id=AdroitHandHammer-v1",
            f"--policy_npz={npz}",
            "--episodes=12",
            "--stochastic",
            "--dataset_id=local/hammer/tiny-v0",
            "--noprogress",
        ],
        env,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return env


ARGS = [
    "--dataset_id=local/hammer/tiny-v0",
    "--train_size=8",
    "--val_size=2",
    "--test_size=2",
    "--sampler=normal",
    "--hidden_mean=12",
    "--hidden_std=4",
    "--num_models=2",
    "--configs=balanced",
    "--budget=8000",
    "--epochs=2",
    "--batch_size=4",
    "--max_len=40",
    "--eval_episodes=1",
    "--eval_max_steps=20",
    "--progress=false",
    "--max_buckets=1",
]


@pytest.mark.slow
def test_ah_sweep_trains_scores_and_resumes(collected, tmp_path):
    work = tmp_path / "w"
    res = _run("experiments.ah_sweep", [f"--workdir={work}", *ARGS], collected)
    assert res.returncode == 0, res.stderr[-3000:]
    df = pd.read_parquet(work / "results.parquet")
    assert len(df) == 3 * 2 and df.val_accuracy.isna().all() and (df.val_loss > 0).all()
    scores = pd.read_parquet(work / "scores.parquet")
    assert sorted(scores.model_id) == [0, 1, 2]
    for col in ("eval_return_mean", "eval_return_std", "eval_success_rate", "d4rl_score"):
        assert col in scores.columns
    assert "environment scores" in res.stdout
    assert json.loads((work / "run.json").read_text())["data"]["env_id"] == "AdroitHandHammer-v1"
    # A rerun of a finished sweep changes nothing; removing the scores re-scores from the saved weights.
    (work / "scores.parquet").unlink()
    res = _run("experiments.ah_sweep", [f"--workdir={work}", *ARGS], collected)
    assert res.returncode == 0, res.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(work / "scores.parquet"), scores)


def test_ah_sweep_unknown_dataset_fails_fast(tmp_path):
    env = dict(
        os.environ, MINARI_DATASETS_PATH=str(tmp_path / "empty"), HF_ENDPOINT="http://127.0.0.1:9", JAX_PLATFORMS="cpu"
    )
    res = _run(
        "experiments.ah_sweep",
        [f"--workdir={tmp_path / 'w'}", "--dataset_id=local/nothing/here-v0", "--num_models=1", "--sampler=normal"],
        env,
        timeout=120,
    )
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--dataset_id" in lines[0], res.stderr
    assert not (tmp_path / "w").exists()
