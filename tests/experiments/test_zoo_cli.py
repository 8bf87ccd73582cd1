"""experiments.zoo end to end on a tiny zoo (plan, training, resume, meta-dataset, parent) and experiments.recommend
for a new task with the shipped cross-task parent (ranking, --data, --validate, bad files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis.meta.dataset import COLUMNS, read_meta_dataset
from tests.conftest import REPO

TINY = [
    "--tasks=adding,reber_cls",
    "--dense_hidden=8",
    "--num_models=2",
    "--configs=dense,balanced",
    "--config_repeats=1",
    "--epochs=1",
    "--train_size=64",
    "--val_size=16",
    "--batch_size=16",
    "--max_buckets=1",
]
HEAVY = ("jax", "pandas", "sklearn", "flax")


def _run(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{module}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_and_bad_flags_answer_before_heavy_imports():
    probe = (
        "import runpy, sys\nsys.argv = ['experiments.zoo'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('experiments.zoo', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as e:\n    code = e.code\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), code, file=sys.stderr)\n"
    )
    for args, code in ((["--help"], 0), (["--workdir=/tmp/x", "--tasks=nope"], 2), (["--num_models=-1"], 2)):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True)
        *errors, last = proc.stderr.strip().splitlines()
        assert last == f"HEAVY [] {code}", proc.stderr
        if code == 2:
            assert len(errors) == 1 and errors[0].startswith("error: ")
        else:
            assert "the zoo: tasks, budgets, populations, training:" in proc.stdout and "--plan" in proc.stdout


def test_plan_prints_each_run_and_the_total(tmp_path):
    proc = _run("zoo", f"--workdir={tmp_path / 'z'}", *TINY, "--tasks=adding", "--plan")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "adding/b99" in proc.stdout and "total:" in proc.stdout
    assert not (tmp_path / "z" / "adding").exists()


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    work = tmp_path_factory.mktemp("zoo") / "z"
    args = [f"--workdir={work}", *TINY, "--nomlp", "--trees=10", "--loto_trees=10", "--bootstrap=20"]
    proc = _run("zoo", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, args, proc


def test_tiny_zoo_writes_the_meta_dataset_and_parent(tiny_zoo):
    work, _, proc = tiny_zoo
    frame = read_meta_dataset(work / "meta" / "meta_dataset.parquet")
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert sorted(frame["task"].unique()) == ["adding", "reber_cls"] and len(frame) == 2 * 4
    assert set(frame["run"]) == {"adding/b99", "reber_cls/b170"}
    assert (frame.loc[frame.task == "adding", "chance_loss"] == 1 / 6).all()
    assert frame["norm_min_loss"].between(0, 1.96).all() and "norm_loss_epoch_1" in frame
    lofo = json.loads((work / "meta" / "lofo.json").read_text())  # two families: adding and reber
    assert lofo["tasks"] == ["adding", "reber_cls"] and lofo["summary"] and lofo["settings"]["holdout"] == "family"
    assert lofo["units"] == {"adding": "adding", "reber_cls": "reber"} and not (work / "meta" / "loto.json").exists()
    parent = json.loads((work / "meta" / "parent" / "parent.json").read_text())
    assert parent["n_models"] == 8 and parent["lofo"]["summary"] and parent["leave_one_task_out"] is None
    assert "Leave-one-family-out" in proc.stdout and json.loads((work / "zoo.json").read_text())["runs"]
    assert set(read_meta_dataset(work / "meta" / "meta_dataset.parquet")["family"]) == {"adding", "reber"}


def test_rerun_skips_complete_runs(tiny_zoo):
    work, args, _ = tiny_zoo
    before = (work / "adding" / "b99" / "results.parquet").stat().st_mtime_ns
    proc = _run("zoo", *args, "--bootstrap=5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("nothing to do") == 2
    assert (work / "adding" / "b99" / "results.parquet").stat().st_mtime_ns == before


def test_recommend_for_a_new_task_with_the_shipped_parent():
    proc = _run(
        "recommend",
        "--input_dim=40",
        "--output_dim=5",
        "--seq_len=30",
        "--loss=ce",
        "--budget=5000",
        "--num_candidates=10",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert {"balanced", "candidates", "predictor"} <= set(d)
    assert d["balanced"]["hidden_dim"] > 0 and "predicted_min_loss" in d["balanced"]
    keys = {
        "rank",
        "config",
        "hidden_dim",
        "densities",
        "learning_rate",
        "hidden_proportion",
        "predicted_min_loss",
        "predicted_curve",
        "extrapolating",
    }
    for c in d["candidates"]:
        assert keys <= set(c) and isinstance(c["extrapolating"], bool) and len(c["predicted_curve"]) == 10
    assert [c["rank"] for c in d["candidates"]] == list(range(1, len(d["candidates"]) + 1))
    assert any(c["config"].startswith("balanced@lr") for c in d["candidates"])
    assert len(d["predictor"]["tasks"]) >= 8 and d["predictor"]["leave_one_task_out"]
    far = _run(
        "recommend",
        "--input_dim=100000",
        "--output_dim=5",
        "--seq_len=3000",
        "--loss=bce",
        "--budget=1e7",
        "--num_candidates=2",
        "--json",
    )
    assert far.returncode == 0, far.stderr
    d = json.loads(far.stdout)
    assert "log_input_dim" in d["task_outside_zoo"] and all(c["extrapolating"] for c in d["candidates"])


@pytest.mark.parametrize(
    "arrays,message",
    [
        ({"x": np.full((10, 5, 2), np.nan), "labels": np.zeros(10, int)}, "NaN"),
        ({"x": np.zeros((10, 5, 2)), "labels": np.zeros(9, int)}, ""),
        ({"x": np.array([object()] * 3, dtype=object), "labels": np.zeros(3, int)}, "object"),
    ],
)
def test_recommend_on_a_bad_npz_is_one_line_exit_2(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    proc = _run("recommend", f"--data={tmp_path / 'bad.npz'}", "--budget=500", "--validate")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: --data: bad.npz: ")
    assert message in proc.stderr


def test_recommend_validate_trains_the_top_candidates_balanced_and_dense(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "sign.npz", x=x, labels=(x[:, :, 0].sum(axis=1) > 0).astype(np.int64))
    work = tmp_path / "v"
    proc = _run(
        "recommend",
        f"--data={tmp_path / 'sign.npz'}",
        "--budget=400",
        "--validate",
        "--top_k=1",
        "--seeds=2",
        "--epochs=1",
        "--num_candidates=5",
        f"--workdir={work}",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(proc.stdout)
    assert d["task"]["input_dim"] == 3 and d["task"]["loss"] == "ce" and d["task"]["train_size_source"] == "given"
    rows = d["validation"]["rows"]
    configs = [r["config"].split("@lr")[0] for r in rows]  # the top pick, then balanced and dense unless it is one
    assert rows[0]["rank"] == 1 and {"balanced", "dense"} <= set(configs) and len(set(configs)) == len(rows) <= 3
    assert all(r["seeds"] == 2 and np.isfinite(r["actual_mean"]) for r in rows)
    results = pd.read_parquet(work / "results.parquet")
    assert results["model_id"].nunique() == 2 * len(rows)
