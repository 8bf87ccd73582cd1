"""The replication comparisons: Welch differences and verdicts, Table IV beside the paper (weighted cells,
neighbouring steps, row Spearman), the Fig. 1 questions over seed sets, the report end to end."""

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis import replication as rep
from sparse_rnn_jax.analysis.convergence import classify
from sparse_rnn_jax.engine.results import final_per_model
from tests.analysis.synthetic import synthetic_results


def test_difference_matches_scipy_welch_and_verdicts():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 8), rng.normal(0.8, 0.2, 6)
    d = rep.difference(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    assert d["p"] == pytest.approx(res.pvalue) and d["low"] < d["diff"] < d["high"]
    ci = res.confidence_interval(0.95)
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high))
    assert rep.verdict(d) == "reproduces" and rep.verdict(rep.difference(b, a)) == "reversed"
    assert rep.verdict(rep.difference(a, a + rng.normal(0, 0.01, 8))) == "within noise"
    assert rep.verdict(d, higher_is_better=False) == "reversed"  # for a loss, a larger mean is worse
    assert rep.verdict(rep.difference(a[:1], b)) == "too few values"


def _fig1_rows(means: dict, seeds: int = 5, epochs: int = 6, seed: int = 1) -> pd.DataFrame:
    """Per-epoch rows of named configurations whose accuracy rises to ``means[config]``."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, (c, m) in enumerate(means.items()):
        for s in range(seeds):
            for e in range(1, epochs + 1):
                acc = m * min(1.0, e / 3) + rng.normal(0, 0.01)
                rows.append(
                    {
                        "config": c,
                        "model_id": k * seeds + s,
                        "epoch": e,
                        "val_accuracy": acc,
                        "val_loss": 2.3 - acc + (0.05 * (e - 4) if c == "balanced" and e > 4 else 0.0),
                    }
                )
    return pd.DataFrame(rows)


def test_fig1_tests_ask_the_papers_questions_with_holm():
    means = {"balanced": 0.8, "eqn8": 0.6, "dense": 0.4, "uniform": 0.4, "lstm": 0.2, "eqn7": 0.1}
    stats_frame = rep.per_model_curve_stats(_fig1_rows(means))
    assert set(stats_frame.columns) >= {"early_accuracy", "final_accuracy", "best_accuracy", "late_rise"}
    tests = rep.fig1_tests(stats_frame).set_index("question")
    assert tests.loc["balanced converges faster than eqn8", "verdict"] == "holds"
    assert tests.loc["balanced overfits late (last val loss above its minimum)", "verdict"] == "holds"
    assert tests.loc["dense catches up with uniform (final accuracy)", "verdict"] == "tie within noise"
    directional = tests["p_holm"].dropna()
    assert len(directional) == 7 and (directional >= tests.loc[directional.index, "p"]).all()
    swapped = rep.fig1_tests(rep.per_model_curve_stats(_fig1_rows({**means, "balanced": 0.5})))
    assert swapped.set_index("question").loc["balanced ends ahead of eqn8", "verdict"] == "reversed"
    assert rep.combined_verdict(["holds", "holds"]) == "reproduces"
    assert rep.combined_verdict(["holds", "within noise"]).startswith("not confirmed")
    assert rep.combined_verdict(["tie within noise"] * 2) == "reproduces (within noise)"
    # a comparison of two configurations that never left chance carries no information and leaves the Holm family
    chance = stats_frame.assign(at_chance=stats_frame["config"].isin(["lstm", "eqn7"]))
    t = rep.fig1_tests(chance).set_index("question")
    assert t.loc["lstm > eqn7 (best accuracy)", "verdict"].startswith("every seed at chance")
    assert np.isnan(t.loc["lstm > eqn7 (best accuracy)", "p_holm"]) and t["p_holm"].notna().sum() == 6
    summary = rep.config_summary(stats_frame, "best_accuracy", rep.PAPER_FIG1_ORDER)
    assert list(summary["n"]) == [5] * 6 and (summary["ci95_low"] < summary["mean"]).all()


def test_table_beside_paper_frame_weights_and_steps():
    models, _ = classify(
        final_per_model(synthetic_results("rad", 400, 3, seed=2, sampler="normal_size", failed_fraction=0.3))
    )
    beside, steps, rho = rep.table_beside_paper_frame(models, n_boot=200)
    assert len(beside) == 10 and set(beside["metric"]) == {"hidden_proportion", "model_density"}
    assert beside.loc[beside["metric"] == "hidden_proportion", "paper"].tolist() == [1.791, 1.351, 1.352, 1.373, 1.431]
    assert beside["n"].sum() == 2 * len(models)
    filled = beside[beside["n"] > 1]
    assert (filled["ci95_low"] <= filled["mean"]).all() and (filled["mean"] <= filled["ci95_high"]).all()
    assert filled["at_chance"].between(0, 1).all() and (filled["learners_n"] <= filled["n"]).all()
    assert (steps["p_holm"] >= steps["p"]).all() and steps["verdict"].notna().all()
    assert (
        set(rho["metric"]) == {"hidden_proportion", "model_density"} and rho["spearman"].dropna().between(-1, 1).all()
    )
    # post-stratification: doubling one stratum's population count moves the estimate toward that stratum
    from sparse_rnn_jax.analysis.stratified import strata_of

    counts: dict = {}
    for s in strata_of(models):
        counts[s] = counts.get(s, 0) + 1
    same, _, _ = rep.table_beside_paper_frame(models, population_counts=counts, n_boot=50)
    assert np.allclose(same["mean"].to_numpy(), beside["mean"].to_numpy(), equal_nan=True)


def test_write_report_end_to_end(tmp_path):
    from tests.analysis.synthetic import write_workdir

    table = write_workdir(
        tmp_path / "tiv", synthetic_results("rad", 200, 3, seed=3, sampler="normal_size", failed_fraction=0.3)
    )
    fig1 = []
    for k in range(2):
        rows = synthetic_results(
            "rad",
            0,
            4,
            seed=k,
            named=("balanced", "eqn8", "dense", "uniform", "eqn7"),
            extra_configs=("lstm",),
            named_seeds=3,
        )
        fig1.append(write_workdir(tmp_path / f"fig1_{k}", rows))
    path = rep.write_report(tmp_path / "out", table_iv=[table], fig1=fig1, folds=2, trees=5, log=lambda s: None)
    text = path.read_text()
    assert "## Table IV: " in text and "Neighbouring cells" in text and "Fig. 9b" in text
    assert "over 2 seed set(s)" in text and "verdict over every seed set" in text
    figures = {p.name for p in (tmp_path / "out" / "figures").iterdir()}
    assert {"table_IV_tiv.png", "dominant_block_tiv.png", "fig1_fig1_0.png", "fig1_fig1_1.png"} <= figures


def test_table_beside_paper_figure_draws_every_row_and_empty_cells(tmp_path):
    from sparse_rnn_jax.analysis.figures import table_beside_paper

    models, _ = classify(final_per_model(synthetic_results("rad", 400, 3, seed=2, sampler="normal_size")))
    beside, _, _ = rep.table_beside_paper_frame(models, n_boot=50)
    beside.loc[beside.index[4], ["n", "mean", "ci95_low", "ci95_high"]] = [0, np.nan, np.nan, np.nan]  # an empty cell
    path = table_beside_paper(beside, 2.303, tmp_path / "t.png", "Table IV")
    assert path.exists() and path.stat().st_size > 10_000
    from PIL import Image

    width, height = Image.open(path).size
    assert width > 1.8 * height  # two panels side by side


def test_table_iii_seed_sets_give_each_step_a_verdict_over_the_sets(tmp_path):
    from tests.analysis.synthetic import write_workdir

    runs = [
        write_workdir(
            tmp_path / f"t3_{k}",
            synthetic_results("ah", 150, 3, seed=10 + k, failed_fraction=0.2, diverged_fraction=0.1),
        )
        for k in range(2)
    ]
    path = rep.write_report(tmp_path / "out", table_iii=runs, folds=2, trees=5, log=lambda s: None)
    text = path.read_text()
    assert text.count("\n## Table III: ") == 2 and "### Table III: the steps over 2 seed sets" in text
    assert "1,750 steps of 64" in text  # the paper's Table III length, not Fig. 1's
    cells = pd.read_csv(tmp_path / "out" / "table_III_t3_0.csv")
    assert "exploded [95 % CI]" in text and cells["exploded"].max() > 0  # diverged networks have a share of their own
    assert (cells["learners_n"] <= cells["n"]).all()
    both = pd.read_csv(tmp_path / "out" / "table_III_steps_over_seed_sets.csv", keep_default_na=False)
    assert list(both.columns) == ["metric", "pair", "t3_0", "t3_1", "over every seed set"]
    for _, r in both.iterrows():
        same = r["t3_0"] == r["t3_1"]
        assert r["over every seed set"] == (r["t3_0"] if same else f"not confirmed ({r['t3_0']} / {r['t3_1']})")


def test_combined_step_verdict():
    assert rep.combined_step_verdict(["agrees", "agrees"]) == "agrees"
    assert rep.combined_step_verdict(["agrees", "flat in both"]) == "not confirmed (agrees / flat in both)"
