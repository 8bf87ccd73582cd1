import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from sparse_rnn_jax.analysis import tables
from sparse_rnn_jax.analysis.convergence import UC_MAX_EXPLODED_FRACTION


def _bucketed(values_by_bucket, exploded_by_bucket=None, at_chance_by_bucket=None):
    """Models with hidden_proportion at the middle of bucket k and the given losses; the first
    ``exploded_by_bucket[k]`` of bucket k exploded, the next ``at_chance_by_bucket[k]`` are at chance."""
    rows = []
    for k, losses in enumerate(values_by_bucket):
        n_exp = exploded_by_bucket[k] if exploded_by_bucket else 0
        n_chance = at_chance_by_bucket[k] if at_chance_by_bucket else 0
        for i, loss in enumerate(losses):
            rows.append(
                {
                    "hidden_proportion": 0.1 + 0.2 * k,
                    "model_density": 0.5,
                    "capped_min_val_loss": loss,
                    "exploded": i < n_exp,
                    "at_chance": n_exp <= i < n_exp + n_chance,
                    "failed": i < n_exp + n_chance,
                }
            )
    return pd.DataFrame(rows)


def test_bucket_edges():
    idx = tables.bucket_index([0.0, 0.1999, 0.2, 0.39, 0.4, 0.6, 0.79, 0.8, 1.0])
    assert idx.tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4]


def test_bucket_means_counts_spread_and_interval():
    values = [[1.0, 2.0, 3.0, 4.0, 5.0], [2.0] * 6, [], [1.0, 1.0, 1.0, 1.0, 1.0, 7.0], [0.5, 1.5]]
    s = tables.bucket_summary(_bucketed(values), "hidden_proportion")
    assert s["n"].tolist() == [5, 6, 0, 6, 2]
    np.testing.assert_allclose(s["mean"].to_numpy()[[0, 1, 3, 4]], [3.0, 2.0, 2.0, 1.0])
    assert math.isnan(s["mean"].iloc[2])
    assert s["std"].iloc[0] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert s["iqr"].iloc[0] == pytest.approx(2.0)
    half = scipy.stats.t.ppf(0.975, 4) * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5)
    assert (s["ci95_low"].iloc[0], s["ci95_high"].iloc[0]) == pytest.approx((3.0 - half, 3.0 + half))
    assert math.isnan(s["ci95_low"].iloc[4])  # fewer than MIN_CI_MODELS models: no interval
    assert not s["uc"].any()
    cells = [tables.cell_text(r) for _, r in s.iterrows()]
    assert cells == ["3.000 (n=5)", "2.000 (n=6)", "-", "2.000 (n=6)", "1.000 (n=2)"]


def test_uc_is_the_exploded_share_not_the_share_at_chance():
    n = 20
    over = int(UC_MAX_EXPLODED_FRACTION * n) + 1
    at = int(UC_MAX_EXPLODED_FRACTION * n)
    values = [[1.0] * n, [1.0] * n, [2.3] * n, [1.0] * 2, []]
    models = _bucketed(values, exploded_by_bucket=[over, at, 0, 0, 0], at_chance_by_bucket=[0, 0, n, 0, 0])
    s = tables.bucket_summary(models, "hidden_proportion")
    assert s["uc"].tolist() == [True, False, False, False, False]  # all at chance: not uc; 2 models: not uc
    cells = [tables.cell_text(r) for _, r in s.iterrows()]
    assert cells == ["1.000 uc (n=20)", "1.000 (n=20)", "2.300 (n=20)", "1.000 (n=2)", "-"]
    assert s["exploded_fraction"].iloc[0] == pytest.approx(over / n)
    assert s["at_chance_fraction"].iloc[2] == 1.0 and s["n_failed"].iloc[2] == n


def test_markdown_table_with_paper_rows_and_share_rows():
    models = _bucketed([[1.0] * 6] * 5, at_chance_by_bucket=[3, 0, 0, 0, 0])
    summaries = {m: tables.bucket_summary(models, m) for m in ("hidden_proportion", "model_density")}
    md = tables.markdown_table(summaries, paper="IV")
    assert "paper, Table IV | 1.791 | 1.351 | 1.352 | 1.373 | 1.431 |" in md
    assert "paper, Table IV | 1.381 | 1.511 | 1.810 | 2.026 | 2.091 |" in md
    assert "| **Hidden proportion** — mean min val loss | 1.000 (n=6) |" in md
    assert "|   at chance | 50% | 0% | 0% | 0% | 0% |" in md
    assert "exploded, non-finite or diverged | 0% |" in md
    assert "Model density (paper: model sparsity)" in md
    md3 = tables.markdown_table(summaries, paper="III")
    assert "paper, Table III | 0.068 | uc | uc | uc | uc |" in md3
    assert "paper, Table" not in tables.markdown_table(summaries)


def _experiment(task, dims, sampler, trainable, environment=None, n=4):
    return pd.DataFrame(
        {
            "task": task,
            "input_dim": dims[0],
            "output_dim": dims[1],
            "config": [sampler] * n + ["balanced"],
            "trainable_params": trainable,
            "environment": environment,
        }
    )


def test_paper_table_only_for_the_papers_experiment():
    rad = _experiment("rad", (2500, 10), "normal_size", 50_050)
    assert tables.paper_table_id(rad) == "IV"
    assert tables.paper_table_id(_experiment("rad", (2500, 10), "uniform_size", 49_000)) == "IV"
    mixed = rad.assign(config=["normal_size", "uniform_size", "normal_size", "uniform_size", "dense"])
    assert tables.paper_table_id(mixed) == "IV"
    assert tables.paper_mismatch(rad.assign(trainable_params=100_000))["IV"].startswith("median 100,000")
    assert tables.paper_mismatch(_experiment("rad", (784, 10), "normal_size", 50_000))["IV"] == (
        "dims 784 -> 10, not 2500 -> 10"
    )
    assert tables.paper_table_id(_experiment("rad", (2500, 10), "normal", 50_000)) is None
    ah = _experiment("ah", (46, 26), "normal", 2e5, "AdroitHandHammer-v1")
    assert tables.paper_table_id(ah) == "III"
    assert tables.paper_mismatch(ah.assign(environment="AdroitHandDoor-v1"))["III"].startswith(
        "environment AdroitHandDoor-v1"
    )
    assert tables.paper_table_id(ah.assign(environment=None)) is None  # unknown environment: not claimed
    assert tables.paper_table_id(ah.assign(config="uniform")) is None
    assert tables.paper_table_id(_experiment("ah", (39, 28), "normal", 2e5, "AdroitHandDoor-v1")) is None
