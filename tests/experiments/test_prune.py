"""prune and diagnose end to end on a tiny RAD sweep of gated leaky block RNNs and a GRU (saved final weights):
the run re-created from run.json, every model pruned, fine-tuned and summarised, the report section, the
gradient-scale diagnostic, and one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO  # noqa: E402

SWEEP = [
    "--mnist_source=embedded",
    "--sampler=normal_size",
    "--budget=3000",
    "--num_models=2",
    "--configs=dense,gru",
    "--train_size=64",
    "--val_size=32",
    "--test_size=16",
    "--batch_size=16",
    "--image_size=8",
    "--epochs=2",
    "--max_buckets=1",
    "--steps_per_call=2",
    "--progress=false",
    "--leak=gated",
    "--leak_alpha=0.6",
]


def _run(module, args, timeout=600):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune")
    work, cache = root / "w", root / "cache"
    res = _run("experiments.rad_sweep", [f"--workdir={work}", f"--cache_dir={cache}", *SWEEP])
    assert res.returncode == 0, res.stderr[-3000:]
    return root, work, cache


@pytest.mark.slow
def test_prune_report_and_diagnose_end_to_end(sweep):
    root, work, cache = sweep
    results = pd.read_parquet(work / "results.parquet")
    assert set(results.leak_mode) == {"gated", "none"} and (results[results.config == "gru"].leak_mode == "none").all()
    res = _run(
        "experiments.prune",
        [
            f"--workdir={work}",
            f"--cache_dir={cache}",
            "--fractions=0.5,1.0",
            "--scopes=global,per_block,hidden",
            "--finetune_steps=4",
        ],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Largest pruned fraction" in res.stdout
    df = pd.read_parquet(work / "pruning.parquet")
    assert len(df) == 4 * (1 + 3 * 2) and set(df.family) == {"leaky_gated", "gru"}
    for col in (
        "model_id",
        "config",
        "family",
        "scope",
        "fraction",
        "val_loss_pruned",
        "val_accuracy_pruned",
        "val_loss_finetuned",
        "val_accuracy_finetuned",
        "remaining_weights",
    ):
        assert col in df.columns
    # The unpruned control is the sweep's final model: the same validation loss.
    last = results[results.epoch == 2].set_index("model_id")["val_loss"].sort_index()
    control = df[df.scope == "none"].set_index("model_id")["val_loss_pruned"].sort_index()
    np.testing.assert_allclose(control, last, rtol=1e-5)
    full = df[(df.scope == "global") & (df.fraction == 1.0)]
    assert (full.remaining_weights == 0).all()
    half = df[(df.scope == "global") & (df.fraction == 0.5)].set_index("model_id")
    assert (abs(half.remaining_weights - half.trainable_weights / 2) <= 0.5).all()
    for name in ("pruning_summary.csv", "pruning.md", "figures/pruning_rad.png", "pruning.json"):
        assert (work / name).is_file(), name
    # A rerun with the same settings has nothing left to do and changes nothing.
    res = _run(
        "experiments.prune",
        [
            f"--workdir={work}",
            f"--cache_dir={cache}",
            "--fractions=0.5,1.0",
            "--scopes=global,per_block,hidden",
            "--finetune_steps=4",
        ],
    )
    assert res.returncode == 0 and "already pruned" in res.stderr, res.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_parquet(work / "pruning.parquet"), df)
    # The analysis report picks the pruning section up from the results folder.
    res = _run(
        "experiments.analyze", [f"--results={work}", f"--out={root / 'report'}", "--trees=5", "--folds=2", "--nomlp"]
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = (root / "report" / "report.md").read_text()
    assert "## Magnitude pruning" in report and (root / "report" / "figures" / "pruning_rad.png").is_file()
    # The gradient-scale diagnostic, initial and trained weights.
    res = _run(
        "experiments.diagnose", [f"--workdir={work}", f"--cache_dir={cache}", f"--out={root / 'diag'}", "--sequences=8"]
    )
    assert res.returncode == 0, res.stderr[-3000:]
    scales = pd.read_parquet(root / "diag" / "gradient_scales.parquet")
    assert set(scales.weights) == {"initial", "trained"} and scales.lag.max() == 11  # RAD: 10 images + the blank step
    assert len(scales) == 4 * 2 * 11 and (scales.scale >= 0).all()
    summary = pd.read_csv(root / "diag" / "gradient_summary.csv")
    assert {"decay_rate", "tau_1e", "family", "leak_mode"} <= set(summary.columns) and len(summary) == 8
    assert (root / "diag" / "gradient_scales.png").is_file()


def test_refusals_are_one_line(sweep, tmp_path):
    root, work, cache = sweep

    def refused(module, args, needle):
        res = _run(module, args, timeout=120)
        assert res.returncode == 2, res.stderr[-2000:]
        lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith(str(work))]
        assert len(lines) == 1 and needle in lines[0], res.stderr

    refused("experiments.prune", [f"--workdir={work}", "--epochs=3"], "epochs")  # the run fixes it: not a prune flag
    refused("experiments.prune", [f"--workdir={work}", "--fractions=0,1.5"], "--fractions")
    refused("experiments.prune", [f"--workdir={tmp_path}"], "run.json")
    refused("experiments.prune", [f"--workdir={work}", "--no_such_flag=1"], "no_such_flag")
    nosave = tmp_path / "nosave"  # the same run without its checkpoints: prune refuses, diagnose --init_only works
    nosave.mkdir()
    (nosave / "run.json").write_text((work / "run.json").read_text())
    refused("experiments.prune", [f"--workdir={nosave}", f"--cache_dir={cache}"], "no final checkpoint")
    res = _run(
        "experiments.diagnose",
        [
            f"--workdir={nosave}",
            f"--cache_dir={cache}",
            f"--out={tmp_path / 'd'}",
            "--init_only",
            "--sequences=4",
            "--max_lag=3",
        ],
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert set(pd.read_parquet(tmp_path / "d" / "gradient_scales.parquet").weights) == {"initial"}
