"""``recommend --validate`` on a registered task (``--task=NAME --task_config='{...}'``): the flag errors (one line,
exit status 2, before any work) and one tiny validation on a generated task end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from tests.conftest import REPO
from tests.experiments.test_bad_inputs import DRIVER

TASK = ["--task=recall", '--task_config={"lag": 3, "recall_steps": 4, "train_size": 64, "val_size": 16}']
DIMS = ["--input_dim=3", "--output_dim=2"]
CASES = [
    (["--budget=500", "--validate", *DIMS], "--validate needs --data=FILE.npz or --task=NAME"),
    (["--budget=500", "--validate", *DIMS, "--seq_len=5", "--loss=ce"], "--validate needs --data=FILE.npz or --task"),
    (["--budget=500", "--race", "--seq_len=5", "--loss=ce", *DIMS], "--race needs --data=FILE.npz or --task=NAME"),
    (["--budget=500", "--validate", "--data={T}/x.npz", *TASK], "give one of --data=FILE.npz and --task=NAME"),
    (["--budget=500", "--validate", "--task=nope"], "--task: unknown task 'nope'"),
    (["--budget=500", "--validate", "--task=recall", "--task_config={lag: 3"], "--task_config: not JSON"),
    (["--budget=500", "--validate", "--task=recall", '--task_config={"lagg": 1}'], "recall has no field 'lagg'"),
    (["--budget=500", "--validate", "--task=recall", '--task_config={"lag": 0}'], "--task_config: lag must be >= 1"),
    (["--budget=500", *DIMS, "--seq_len=5", "--loss=ce", '--task_config={"lag": 3}'], "--task_config needs --task"),
    (["--budget=500", "--validate", *TASK, "--predictor={T}/p"], "give them without --predictor"),
]


def _env() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("SPARSE_RNN_FAULT", None)
    return env


def test_task_flag_errors_are_one_line_exit_2_before_any_work(tmp_path):
    cases = [
        [a.replace("{T}", str(tmp_path)) for a in args] + [f"--workdir={tmp_path}/w{i}"]
        for i, (args, _) in enumerate(CASES)
    ]
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, "experiments.recommend"],
        input=json.dumps(cases),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for i, ((args, needle), outcome) in enumerate(zip(CASES, json.loads(res.stdout.strip().splitlines()[-1]))):
        lines = [line for line in outcome["stderr"].splitlines() if line.strip()]
        assert outcome["code"] == 2, (args, outcome["stderr"][-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, lines)
        assert not (tmp_path / f"w{i}").exists()


def test_validate_on_a_registered_task_trains_top_balanced_and_dense(tmp_path):
    work = tmp_path / "v"
    args = ["--budget=400", "--validate", "--top_k=1", "--seeds=1", "--epochs=1", "--num_candidates=5"]
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.recommend", *TASK, *args, f"--workdir={work}", "--json"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(proc.stdout)
    val = d["validation"]
    rows = val["rows"]
    assert rows[0]["rank"] == 1 and {r["config"].split("@lr")[0] for r in rows[1:]} == {"balanced", "dense"}
    assert all(r["seeds"] == 1 and 0 < r["actual_mean"] < 2 for r in rows)
    assert val["scored_by"] == "norm_min_loss" and val["return_baseline"] is None
    assert val["command"].startswith("python -m experiments.sweep --task=recall") and "--lag=3" in val["command"]
    assert d["training"]["task"] == "recall" and d["candidates"][0]["command"].startswith(
        "python -m experiments.sweep --task=recall"
    )
    # The run trained the registered task with the given config: one population of every chosen spec.
    config = json.loads((work / "run.json").read_text())["config"]
    assert config["task"] == "recall" and config["data"]["lag"] == 3 and config["data"]["train_size"] == 64
    results = pd.read_parquet(work / "results.parquet")
    assert sorted(results["config"].unique()) == sorted(r["config"] for r in rows)
