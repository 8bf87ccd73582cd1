"""Fixtures of the analysis tests: synthetic workdirs and one analysed output shared by the CLI tests."""

from __future__ import annotations

import pytest

from sparse_rnn_jax.analysis.report import AnalysisOptions, analyze
from tests.analysis.synthetic import EPOCHS, SMALL_MLP, synthetic_results, synthetic_scores, write_workdir


@pytest.fixture(scope="session")
def workdirs(tmp_path_factory):
    """A RAD sweep at ~50k with named configs (and an 'lstm' config), and an AH sweep with scores."""
    root = tmp_path_factory.mktemp("runs")
    rad = synthetic_results(
        "rad",
        60,
        EPOCHS,
        seed=1,
        failed_fraction=0.05,
        diverged_fraction=0.05,
        named=("dense", "uniform", "eqn7", "eqn8", "balanced"),
        named_seeds=2,
        extra_configs=("lstm",),
    )
    ah = synthetic_results("ah", 40, EPOCHS, seed=2, failed_fraction=0.1)
    return {
        "rad": write_workdir(root / "rad", rad),
        "ah": write_workdir(root / "ah", ah, synthetic_scores(ah)),
    }


@pytest.fixture(scope="session")
def analysed(workdirs, tmp_path_factory):
    """analyze() of both workdirs with a small forest and MLP; returns (out_dir, AnalysisResult, log lines)."""
    out = tmp_path_factory.mktemp("analysis")
    (out / "keep.txt").write_text("not the report's")
    log: list[str] = []
    options = AnalysisOptions(trees=20, folds=3, mlp_config=SMALL_MLP)
    result = analyze([workdirs["rad"], workdirs["ah"]], out, options, log=log.append)
    return out, result, log
