"""Baseline cells: counts against hand formulas, forward against an independent numpy loop, budgets,
padding invariance, carried-state steps, and training inside the population engine."""

import dataclasses

import numpy as np
import pytest

from sparse_rnn_jax.core.cell_spec import CELLS, GATES, CellSpec, cell_counts, cell_hidden_for_budget
from sparse_rnn_jax.engine.population import Member, model_seed
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.engine.sweep import TrainConfig, run_sweep
from sparse_rnn_jax.models.cells import cell_forward, cell_step, init_cell, state_size
from sparse_rnn_jax.models.registry import get_family
from tests.toy import X, Y, toy_data, toy_members, toy_task


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_cell(cell, p, x):
    """Plain loops over batch items and steps, float64, PyTorch's equations."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    B, T, _ = x.shape
    H = p["W_h"].shape[1]
    out = np.zeros((B, T, p["W_yh"].shape[0]))
    for b in range(B):
        h, c = np.zeros(H), np.zeros(H)
        for t in range(T):
            xt = x[b, t].astype(np.float64)
            gx = [p["W_i"][g] @ xt + p["b"][g] for g in range(GATES[cell])]
            gh = [p["W_h"][g] @ h for g in range(GATES[cell])]
            if cell == "lstm":
                i, f, g, o = (gx[j] + gh[j] for j in range(4))
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
            elif cell == "gru":
                r = sigmoid(gx[0] + gh[0])
                z = sigmoid(gx[1] + gh[1])
                n = np.tanh(gx[2] + r * (gh[2] + p["b_hn"]))
                h = (1 - z) * n + z * h
            else:
                pre = gx[0] + gh[0]
                h = np.tanh(pre) if cell == "rnn_tanh" else np.maximum(pre, 0)
            out[b, t] = p["W_yh"] @ h + p["b_y"]
    return out


def test_counts_match_hand_formulas():
    x, h, y = 2500, 11, 10
    assert cell_counts("lstm", x, h, y).weights == 4 * 11 * 2500 + 4 * 11 * 11 + 10 * 11 == 110_594
    assert cell_counts("lstm", x, h, y).biases == 4 * 11 + 10
    assert cell_counts("gru", x, h, y).biases == 3 * 11 + 11 + 10
    assert cell_counts("rnn_tanh", x, h, y).total == 11 * 2500 + 11 * 11 + 10 * 11 + 11 + 10
    assert cell_counts("lstm", x, h, y).hidden_proportion == pytest.approx(484 / (110_000 + 484))
    for cell in CELLS:  # the arrays hold exactly the counted entries
        arrays = init_cell(CellSpec(cell, 7, 5, 3), seed=0)
        n_weights = sum(arrays.masks[k].sum() for k in ("W_i", "W_h", "W_yh"))
        n_bias = sum(arrays.masks[k].sum() for k in arrays.masks if k.startswith("b"))
        assert (n_weights, n_bias) == (cell_counts(cell, 7, 5, 3).weights, cell_counts(cell, 7, 5, 3).biases)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_matches_numpy_loop(cell):
    spec = CellSpec(cell, 9, 6, 4)
    arrays = init_cell(spec, seed=1)
    x = np.random.default_rng(0).normal(size=(3, 5, 9)).astype(np.float32)
    y = np.asarray(cell_forward(cell, arrays.params, arrays.masks, x))
    ref = numpy_cell(cell, arrays.params, x)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-5


@pytest.mark.parametrize("cell", CELLS)
def test_padding_and_carried_steps(cell):
    spec = CellSpec(cell, 8, 5, 3)
    x = np.random.default_rng(1).normal(size=(2, 6, 8)).astype(np.float32)
    alone = init_cell(spec, seed=4)
    padded = init_cell(spec, seed=4, padded_hidden_dim=9)
    y0 = np.asarray(cell_forward(cell, alone.params, alone.masks, x))
    y1 = np.asarray(cell_forward(cell, padded.params, padded.masks, x))
    np.testing.assert_allclose(y0, y1, rtol=1e-6, atol=1e-6)
    state = np.zeros((2, state_size(cell, 9)), np.float32)
    for t in range(6):
        state, y = cell_step(cell, get_family(cell).prepare(padded.params, padded.masks), state, x[:, t])
        np.testing.assert_allclose(y, y0[:, t], rtol=1e-5, atol=1e-6)


def test_budget_solving_within_one_percent():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cell = CELLS[int(rng.integers(len(CELLS)))]
        x, y = int(rng.integers(1, 3000)), int(rng.integers(1, 50))
        budget = float(cell_counts(cell, x, 1, y).weights * rng.uniform(20, 400))
        h = cell_hidden_for_budget(cell, x, y, budget)
        count = cell_counts(cell, x, h, y).weights
        step = cell_counts(cell, x, h + 1, y).weights - count
        # within 1 %, or within half a hidden unit's worth of weights where one unit is more than 2 %
        assert abs(count - budget) <= max(0.01 * budget, step / 2), (cell, x, y, budget, h)
        if h >= 100:
            assert count == pytest.approx(budget, rel=0.01)
    assert cell_hidden_for_budget("lstm", 2500, 10, 110_000) == 11
    with pytest.raises(ValueError, match="too small"):
        cell_hidden_for_budget("gru", 2500, 10, 1000)


def test_cells_train_in_the_population_engine(tmp_path):
    block = toy_members(2)
    cells = [
        Member(10 + i, CellSpec(c, X, 5 + 3 * i, Y, learning_rate=1e-2), model_seed(0, 10 + i), c)
        for i, c in enumerate(CELLS)
    ]
    cfg = TrainConfig(epochs=3, batch_size=16, eval_batch_size=40, max_buckets=1, steps_per_call=6)
    df = run_sweep(
        block + cells, toy_task(), toy_data(), toy_data(48, seed=1), cfg, tmp_path, progress=False, log=lambda _: None
    )
    assert df.bucket.nunique() == 1 + len(CELLS)  # each family in its own bucket
    for i, c in enumerate(CELLS):
        rows = df[df.model_id == 10 + i].sort_values("epoch")
        assert (rows.config == c).all() and rows.density_hx.isna().all()
        assert rows.val_loss.iloc[-1] < rows.val_loss.iloc[0]
        assert rows.trainable_params_exact.iloc[0] == cell_counts(c, X, 5 + 3 * i, Y).weights
    alone = run_sweep(
        [dataclasses.replace(cells[1], model_id=0)],
        toy_task(),
        toy_data(),
        toy_data(48, seed=1),
        cfg,
        tmp_path / "alone",
        progress=False,
        log=lambda _: None,
    )
    np.testing.assert_allclose(alone.val_loss, df[df.model_id == 11].sort_values("epoch").val_loss, rtol=1e-4)
    assert spec_columns(cells[0].spec)["hidden_proportion"] == cell_counts("lstm", X, 5, Y).hidden_proportion
