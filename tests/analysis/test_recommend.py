import json
import subprocess
import sys

import pytest

from sparse_rnn_jax.analysis.candidates import candidate_specs
from sparse_rnn_jax.core.configs import NAMED_CONFIGS
from sparse_rnn_jax.core.spec_text import spec_from_text
from tests.conftest import REPO  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.recommend", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_balanced_spec_text_without_predictor():
    proc = _run("--input_dim=2500", "--output_dim=10", "--budget=100000")
    assert proc.returncode == 0, proc.stderr
    assert "config=balanced  |x|=2500  |h|=185  |y|=10" in proc.stdout  # paper Eqn 13
    assert "0.08" in proc.stdout and "--predictor" in proc.stdout


def test_ranking_text_with_predictor(analysed):
    out, _, _ = analysed
    proc = _run(
        "--input_dim=2500",
        "--output_dim=10",
        "--budget=50000",
        f"--predictor={out / 'predictor'}",
        "--num_candidates=10",
        "--top=5",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Candidates ranked by predicted minimum validation loss" in proc.stdout
    assert "(5 of 26 candidates shown" in proc.stdout
    assert "/chance" in proc.stdout and "cross-validated mean absolute error" in proc.stdout


def test_json_with_predictor(analysed):
    out, _, _ = analysed
    proc = _run(
        "--input_dim=2500",
        "--output_dim=10",
        "--budget=50000",
        f"--predictor={out / 'predictor'}",
        "--num_candidates=10",
        "--json",
        "--ranker=mean",
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    b = d["balanced"]
    assert {"hidden_dim", "densities", "hidden_proportion", "trainable_params"} <= set(b)
    assert b["trainable_params"] == pytest.approx(50_000, rel=0.01)
    assert d["predictor"]["task"] == "rad"
    cands = d["candidates"]
    assert len(cands) == 2 * (len(NAMED_CONFIGS) + 3) + 10
    assert [c["rank"] for c in cands] == list(range(1, len(cands) + 1))
    preds = [c["predicted_min_val_loss"] for c in cands]
    assert preds == sorted(preds)
    for c in cands:
        assert {"config", "hidden_dim", "densities", "learning_rate", "hidden_proportion"} <= set(c)
        assert c["predicted_min_val_loss"] == pytest.approx(
            (c["predicted_min_val_loss_forest"] + c["predicted_min_val_loss_mlp"]) / 2
        )
    assert {"balanced", "balanced@0.30", "eqn8", "normal_size#0"} <= {c["config"] for c in cands}
    for c in cands:  # every candidate can be trained from its one-line spec, and carries its forest interval
        spec = spec_from_text(c["spec"], 2500, 10)
        assert spec.name == c["config"] and spec.hidden_dim == c["hidden_dim"]
        assert spec.learning_rate == pytest.approx(c["learning_rate"])
        lo, hi = c["predicted_interval"]
        assert 0 < lo <= hi  # the 10th-90th percentile over trees (their mean may lie outside with few trees)
    chance = d["predictor"]["chance_loss"]
    assert chance and cands[0]["predicted_min_loss_per_chance"] == pytest.approx(preds[0] / chance)
    u = d["uncertainty"]
    assert u["error"] == pytest.approx(d["predictor"]["cv_mae_forest"]) and 1 <= u["within_of_best"] <= u["compared"]
    assert cands[0]["command"] is None  # the synthetic run records no run config to train it like


@pytest.mark.parametrize(
    "args,message",
    [
        (("--input_dim=2500", "--output_dim=10", "--budget=1000"), "too small"),
        (("--input_dim=2500", "--output_dim=10"), "--budget is required"),
        (
            ("--input_dim=2500", "--output_dim=10", "--budget=50000", "--predictor=/nonexistent/predictor"),
            "does not exist",
        ),
        (("--input_dim=100", "--output_dim=5", "--budget=50000", "--predictor=PREDICTOR"), "no predictor"),
    ],
)
def test_bad_input_is_one_line_exit_2(analysed, args, message):
    out, _, _ = analysed
    args = [a.replace("PREDICTOR", str(out / "predictor")) for a in args]
    proc = _run(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    assert message in proc.stderr


def test_candidates_skip_unmeetable_budgets():
    specs = candidate_specs(46, 26, 30_000, num_sampled=5, seed=1, learning_rates=[1e-3])
    assert all(abs(s.learning_rate - 1e-3) < 1e-12 for s in specs if not s.name.startswith("normal_size"))
    assert sum(s.name.startswith("normal_size") for s in specs) == 5
