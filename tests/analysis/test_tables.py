import math

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.analysis import tables
from sparse_rnn_jax.analysis.convergence import UC_MAX_FAILED_FRACTION, UC_MIN_MODELS


def _bucketed(values_by_bucket, failed_by_bucket=None):
    """Models with hidden_proportion at the middle of bucket k and the given losses."""
    rows = []
    for k, losses in enumerate(values_by_bucket):
        for i, loss in enumerate(losses):
            failed = failed_by_bucket is not None and i < failed_by_bucket[k]
            rows.append(
                {
                    "hidden_proportion": 0.1 + 0.2 * k,
                    "model_density": 0.5,
                    "capped_min_val_loss": loss,
                    "failed": failed,
                }
            )
    return pd.DataFrame(rows)


def test_bucket_edges():
    idx = tables.bucket_index([0.0, 0.1999, 0.2, 0.39, 0.4, 0.6, 0.79, 0.8, 1.0])
    assert idx.tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4]


def test_bucket_means_counts_and_spread():
    values = [[1.0, 2.0, 3.0, 4.0, 5.0], [2.0] * 6, [], [1.0, 1.0, 1.0, 1.0, 1.0, 7.0], [0.5] * 10]
    s = tables.bucket_summary(_bucketed(values), "hidden_proportion")
    assert s["n"].tolist() == [5, 6, 0, 6, 10]
    np.testing.assert_allclose(s["mean"].to_numpy()[[0, 1, 3, 4]], [3.0, 2.0, 2.0, 0.5])
    assert math.isnan(s["mean"].iloc[2])
    assert s["std"].iloc[0] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert s["iqr"].iloc[0] == pytest.approx(2.0)
    assert not s["uc"].any()
    cells = [tables.cell_text(r) for _, r in s.iterrows()]
    assert cells == ["3.000", "2.000", "-", "2.000", "0.500"]


def test_uc_triggers_on_failed_share_and_small_cells():
    n = 20
    over = int(UC_MAX_FAILED_FRACTION * n) + 1
    at = int(UC_MAX_FAILED_FRACTION * n)
    values = [[1.0] * n, [1.0] * n, [1.0] * (UC_MIN_MODELS - 1), [1.0] * UC_MIN_MODELS, []]
    s = tables.bucket_summary(_bucketed(values, failed_by_bucket=[over, at, 0, 0, 0]), "hidden_proportion")
    assert s["uc"].tolist() == [True, False, True, False, False]
    assert [tables.cell_text(r) for _, r in s.iterrows()] == ["uc", "1.000", "uc", "1.000", "-"]
    assert s["failed_fraction"].iloc[0] == pytest.approx(over / n)


def test_markdown_table_with_paper_rows():
    models = _bucketed([[1.0] * 6] * 5)
    summaries = {m: tables.bucket_summary(models, m) for m in ("hidden_proportion", "model_density")}
    md = tables.markdown_table(summaries, paper="IV")
    assert "paper, Table IV | 1.791 | 1.351 | 1.352 | 1.373 | 1.431 |" in md
    assert "paper, Table IV | 1.381 | 1.511 | 1.810 | 2.026 | 2.091 |" in md
    assert "Model density (paper: model sparsity)" in md
    md3 = tables.markdown_table(summaries, paper="III")
    assert "paper, Table III | 0.068 | uc | uc | uc | uc |" in md3
    assert "paper, Table" not in tables.markdown_table(summaries)


def test_paper_table_detection():
    rad = pd.DataFrame({"task": "rad", "trainable_params": [49_900, 50_100, 50_050], "config": "normal_size"})
    assert tables.paper_table_id(rad) == "IV"
    assert tables.paper_table_id(rad.assign(trainable_params=100_000)) is None
    ah = pd.DataFrame({"task": "ah", "trainable_params": [1e5, 2e5], "config": "normal"})
    assert tables.paper_table_id(ah) == "III"
    assert tables.paper_table_id(ah.assign(config="uniform")) is None
