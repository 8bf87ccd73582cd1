"""reber_sweep end to end: bad input exits 2 before any work; the smoke flagfile scaled down, both variants,
hh graphs, and the analysis report on its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO  # noqa: E402

FLAGFILE = REPO / "experiments" / "flags" / "reber_smoke.flags"
SMALL = [
    "--num_models=3",
    "--train_size=64",
    "--val_size=32",
    "--test_size=16",
    "--max_len=14",
    "--epochs=2",
    "--steps_per_call=2",
    "--max_buckets=1",
    "--progress=false",
]


def _run(module, args, timeout=600):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--variant=bogus"], "variant"),
        (["--max_len=5"], "--max_len"),
        (["--train_size=8"], "--train_size"),
        (["--val_size=0"], "--val_size"),
        (["--hh_graph=lattice"], "hh_graph"),
        (["--hh_graph_beta=2"], "hh_graph_beta"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, needle):
    res = _run(
        "experiments.reber_sweep", [f"--flagfile={FLAGFILE}", f"--workdir={tmp_path / 'w'}", *SMALL, *args], timeout=120
    )
    assert res.returncode == 2, res.stderr[-1500:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "w" / "results.parquet").exists()


@pytest.mark.slow
def test_smoke_flagfile_scaled_down_next_symbol_then_analysis(tmp_path):
    work = tmp_path / "w"
    res = _run(
        "experiments.reber_sweep", [f"--flagfile={FLAGFILE}", f"--workdir={work}", *SMALL, "--configs=balanced,gru"]
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "reber (next_symbol)" in res.stderr and "best val accuracy" in res.stdout  # progress is logged to stderr
    df = pd.read_parquet(work / "results.parquet")
    assert (
        len(df) == 5 * 2
        and set(df.task) == {"reber_next_symbol"}
        and set(df.config) == {"normal_size", "balanced", "gru"}
    )
    assert df.val_accuracy.between(0, 1).all() and (df.val_loss < 0.75).all()  # BCE starts near ln 2
    assert df.hh_graph.isna().all() and df.graph_edges.isna().all()
    run = json.loads((work / "run.json").read_text())
    assert run["status"] == "complete" and run["task"] == "reber_next_symbol" and run["data"]["reber"]["max_len"] == 14
    out = tmp_path / "report"
    res = _run("experiments.analyze", [f"--results={work}", f"--out={out}", "--trees=20", "--nomlp", "--folds=2"])
    assert res.returncode == 0, res.stderr[-3000:]
    text = (out / "report.md").read_text()
    assert "Task `reber_next_symbol`" in text and "hh graph properties" not in text


@pytest.mark.slow
def test_classification_with_ws_graphs_and_graph_report(tmp_path):
    work = tmp_path / "w"
    res = _run(
        "experiments.reber_sweep",
        [
            f"--flagfile={FLAGFILE}",
            f"--workdir={work}",
            *SMALL,
            "--num_models=10",
            "--variant=classification",
            "--configs=",
            "--hh_graph=ws",
            "--hh_graph_beta=0.3",
        ],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "below chance (0.693)" in res.stdout
    df = pd.read_parquet(work / "results.parquet")
    assert set(df.task) == {"reber_classification"} and (df.output_dim == 2).all()
    assert (df.hh_graph == "ws").all() and (df.hh_graph_beta == 0.3).all()
    assert np.isfinite(
        df[
            [
                "graph_nodes",
                "graph_edges",
                "graph_density",
                "graph_mean_betweenness",
                "graph_clustering",
                "graph_avg_path_length",
            ]
        ].to_numpy(dtype=float)
    ).all()
    assert (df.graph_nodes == df.hidden_dim).all()
    out = tmp_path / "report"
    res = _run("experiments.analyze", [f"--results={work}", f"--out={out}", "--trees=20", "--nomlp", "--folds=2"])
    assert res.returncode == 0, res.stderr[-3000:]
    text = (out / "report.md").read_text()
    assert "### hh graph properties" in text and "graph properties + the parent network" in text
    assert (out / "figures" / "reber_classification_graph_predicted_vs_actual.png").is_file()
    assert (out / "figures" / "reber_classification_graph_feature_importance.png").is_file()
