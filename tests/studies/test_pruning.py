"""Magnitude pruning: exact counts per scope and fraction keeping the largest magnitudes, pruned weights stay
0 through the fine-tune, the unpruned control reproduces the sweep, a GRU without W_h still works."""

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.core.cell_spec import CellSpec
from sparse_rnn_jax.core.leaky_spec import LeakySpec
from sparse_rnn_jax.core.spec import make_spec
from sparse_rnn_jax.engine.population import Chunk, Member, model_seed, stack_chunk
from sparse_rnn_jax.engine.run_plan import plan_members
from sparse_rnn_jax.engine.sweep import TrainConfig, load_final_params, run_sweep
from sparse_rnn_jax.studies.pruning.finetune import FinetuneConfig, finetune_order, prune_and_finetune
from sparse_rnn_jax.studies.pruning.masks import (
    DEFAULT_FRACTIONS,
    SCOPES,
    UNPRUNED_SCOPE,
    make_variants,
    prune_masks,
    pruned_count,
    scope_groups,
    weight_keys,
)
from sparse_rnn_jax.studies.pruning.summary import max_prunable, summary_table
from tests.toy import X, Y, toy_data, toy_members, toy_task


def _trained_like(chunk, seed=0, ties=False):
    """A chunk's masks with random weights on the trainable entries (coarsely rounded: many ties)."""
    params, masks, _ = stack_chunk(chunk)
    rng = np.random.default_rng(seed)
    for k, v in params.items():
        w = rng.normal(size=v.shape).astype(np.float32)
        if ties:
            w = np.round(w * 2) / 2
        mask = masks.get(k[2:] if k[2:] in masks else k)
        params[k] = w * mask if mask is not None and mask.dtype == bool else w
    return params, masks


def _chunk(family):
    if family in ("block", "leaky_gated"):
        specs = [
            make_spec(X, h, Y, densities={"hx": 0.5, "hh": 0.3, "hy": 1.0, "yx": 0.7, "yh": 0.4, "yy": 1.0})
            for h in (5, 9)
        ]
        if family == "leaky_gated":
            specs = [LeakySpec(s, "gated", 0.4) for s in specs]
    else:
        specs = [CellSpec(family, X, h, Y) for h in (4, 7)]
    return Chunk(
        0, 0, 9 if family != "lstm" and family != "gru" else 7, tuple(Member(i, s, i, "t") for i, s in enumerate(specs))
    )


@pytest.mark.parametrize("family", ["block", "lstm", "gru", "leaky_gated"])
@pytest.mark.parametrize("ties", [False, True])
def test_exact_counts_and_largest_magnitudes(family, ties):
    chunk = _chunk(family)
    params, masks = _trained_like(chunk, ties=ties)
    wk = weight_keys(family)
    for scope in SCOPES:
        pruned = prune_masks(params, masks, family, scope, DEFAULT_FRACTIONS)
        groups = scope_groups(family, scope)
        in_scope = {k for g in groups for k in g}
        for f, new in zip(DEFAULT_FRACTIONS, pruned):
            for k in masks:  # biases, leak vectors and out-of-scope weights untouched
                if k not in {wk[p] for p in in_scope}:
                    np.testing.assert_array_equal(new[k], masks[k])
            for group in groups:
                for i in range(len(chunk.members)):
                    old_m = np.concatenate([masks[wk[k]][i].ravel() for k in group])
                    new_m = np.concatenate([new[wk[k]][i].ravel() for k in group])
                    w = np.abs(np.concatenate([params[k][i].ravel() for k in group]))
                    n = int(old_m.sum())
                    assert not np.any(new_m & ~old_m)  # only removes
                    assert int(new_m.sum()) == n - int(pruned_count(f, n)) == n - int(np.floor(f * n + 0.5 + 1e-9))
                    removed = old_m & ~new_m
                    if new_m.any() and removed.any():
                        assert w[new_m].min() >= w[removed].max()  # the largest magnitudes stay
    if family == "block":
        g = scope_groups("block", "hidden")
        assert g == [("W_hh",)] and len(scope_groups("block", "per_block")) == 6
    if family == "leaky_gated":
        assert scope_groups(family, "hidden") == [("W_hh", "W_ah")]


def test_variants_zero_pruned_weights_and_stack_variant_major():
    chunk = _chunk("block")
    params, masks = _trained_like(chunk)
    v = make_variants(params, masks, "block", ("global", "hidden"), (0.5, 1.0))
    assert v.scope == (UNPRUNED_SCOPE, "global", "global", "hidden", "hidden") and v.fraction == (
        0.0,
        0.5,
        1.0,
        0.5,
        1.0,
    )
    p = len(chunk.members)
    assert v.params["W_hx"].shape[0] == 5 * p
    np.testing.assert_array_equal(v.params["W_hx"][:p], params["W_hx"])  # control untouched
    for k, m in weight_keys("block").items():
        assert np.all(v.params[k][~v.masks[m]] == 0)
    assert np.all(v.params["W_hh"][4 * p :] == 0) and np.array_equal(v.params["b_h"][4 * p :], params["b_h"])
    order = finetune_order(0, 50, 16, 7)
    assert order.shape == (7, 16) and len(set(order[:3].ravel())) == 48


def test_max_prunable_prefix_rule():
    rows = []
    for f, acc in [(0.0, 0.90), (0.1, 0.905), (0.2, 0.895), (0.3, 0.85), (0.4, 0.895)]:
        rows.append(
            {
                "model_id": 0,
                "scope": "global" if f else UNPRUNED_SCOPE,
                "fraction": f,
                "family": "gru",
                "config": "gru",
                "task": "rad",
                "output_dim": 10,
                "chance_loss": float(np.log(10)),
                "val_loss_pruned": 1.0,
                "val_accuracy_pruned": acc,
                "val_loss_finetuned": 1.0,
                "val_accuracy_finetuned": 0.9,
            }
        )
    df = pd.DataFrame(rows)
    m = max_prunable(df, "pruned")
    assert m["max_fraction_pruned"].tolist() == [0.2]  # 0.4 recovers, but 0.3 already fell
    assert max_prunable(df, "finetuned")["max_fraction_finetuned"].tolist() == [0.4]
    table = summary_table(df)
    assert table.loc[0, "accuracy_pruned_median"] == 0.2 and table.loc[0, "accuracy_models"] == 1
    assert table.loc[0, "loss_pruned_median"] == 0.4  # the loss never moved
    assert summary_table(df.assign(val_accuracy_pruned=0.0)).loc[0, "accuracy_models"] == 0  # nothing to lose


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A toy sweep with saved final weights: a block RNN and a GRU."""
    work = tmp_path_factory.mktemp("sweep")
    members = toy_members(1) + [Member(10, CellSpec("gru", X, 8, Y, learning_rate=1e-2), model_seed(0, 10), "gru")]
    cfg = TrainConfig(epochs=4, batch_size=16, eval_batch_size=48, max_buckets=1, steps_per_call=6)
    df = run_sweep(members, toy_task(), toy_data(), toy_data(48, seed=1), cfg, work, progress=False, log=lambda _: None)
    return work, members, cfg, df


def test_prune_finetune_keeps_pruned_zero_and_reproduces_the_sweep(trained):
    from sparse_rnn_jax.studies.pruning.finetune import evaluate_and_finetune, finetune_program

    work, members, cfg, df = trained
    train, val = toy_data(), toy_data(48, seed=1)
    ft = FinetuneConfig(steps=12, batch_size=16, eval_batch_size=48, steps_per_call=6, max_models=4)
    frames = []
    for chunk in plan_members(members, cfg, 1).chunks:  # the chunks the sweep trained
        params, masks = load_final_params(work, chunk)
        family, act = chunk.family, chunk.activation
        v = make_variants(params, masks, family, ("global", "hidden"), (0.5, 1.0))
        lrs = np.tile([m.spec.learning_rate for m in chunk.members], len(v.scope)).astype(np.float32)
        res = evaluate_and_finetune(
            v.params, v.masks, lrs, finetune_program(toy_task(), family, act, ft), train, val, ft
        )
        for k, mk in weight_keys(family).items():  # pruned entries are exactly 0 after the fine-tune
            assert np.all(res["params"][k][~v.masks[mk]] == 0)
            assert np.any(res["params"][k] != v.params[k])  # and the rest did train
        frames.append(
            prune_and_finetune(
                chunk.members, params, masks, family, act, toy_task(), train, val, ft, ("global", "hidden"), (0.5, 1.0)
            )
        )
    out = pd.concat(frames, ignore_index=True)
    last = df[df.epoch == cfg.epochs].set_index("model_id")["val_loss"]
    control = out[out.scope == UNPRUNED_SCOPE].set_index("model_id")["val_loss_pruned"]
    np.testing.assert_allclose(control.sort_index(), last.sort_index(), rtol=1e-5)  # same weights, same loss
    assert len(out) == len(members) * 5 and out.val_accuracy_pruned.isna().all()
    full = out[(out.scope == "global") & (out.fraction == 1.0)]
    assert (full.remaining_weights == 0).all()
    # A GRU stripped of every hidden-to-hidden weight still works: its update gate keeps a memory of earlier
    # inputs (which the toy target needs), so after the short fine-tune it stays near its unpruned control
    # and far from the network without any weight.
    gru = out[out.family == "gru"].set_index(["scope", "fraction"])["val_loss_finetuned"]
    hidden_gone = out[(out.family == "gru") & (out.scope == "hidden") & (out.fraction == 1.0)]
    assert (hidden_gone.remaining_hidden_proportion == 0).all() and (hidden_gone.remaining_weights > 0).all()
    assert gru.loc[("hidden", 1.0)] < 1.3 * gru.loc[(UNPRUNED_SCOPE, 0.0)]
    assert gru.loc[("hidden", 1.0)] < 0.6 * gru.loc[("global", 1.0)]
