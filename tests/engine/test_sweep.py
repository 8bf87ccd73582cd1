"""The population engine: invariance to the population, divergence isolation, data order, resume."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from sparse_rnn_jax.engine.population import Member
from sparse_rnn_jax.engine.sweep import SweepInterrupted, TrainConfig, run_sweep
from tests.toy import toy_data, toy_members, toy_task

CFG = TrainConfig(epochs=2, batch_size=16, eval_batch_size=40, max_buckets=2, steps_per_call=4)
METRICS = ["train_loss", "val_loss", "diverged"]


def _run(members, workdir, cfg=CFG, **kw):
    data = toy_data()
    return run_sweep(
        members, toy_task(), data, toy_data(48, seed=1), cfg, workdir, progress=False, log=lambda _: None, **kw
    )


def _rows(df, model_id):
    return df[df.model_id == model_id].sort_values("epoch")[METRICS].reset_index(drop=True)


def test_results_schema_and_learning(tmp_path):
    members = toy_members(5)
    df = _run(members, tmp_path)
    assert len(df) == 5 * 2 and set(df.epoch) == {1, 2}
    for col in [
        "model_id",
        "bucket",
        "seed",
        "config",
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "diverged",
        "hidden_dim",
        "trainable_params",
        "model_density",
        "hidden_proportion",
        "learning_rate",
        "density_hx",
        "init_mean_yy",
        "init_std_hh",
        "trainable_params_exact",
    ]:
        assert col in df.columns, col
    on_disk = pd.read_parquet(tmp_path / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, df)
    first, last = df[df.epoch == 1].set_index("model_id"), df[df.epoch == 2].set_index("model_id")
    assert (last.val_loss < first.val_loss).mean() >= 0.6
    assert df.val_accuracy.isna().all()


def test_model_alone_equals_model_in_population(tmp_path):
    members = toy_members(6)
    target = members[2]
    pop = _run(members, tmp_path / "pop")
    alone = _run([dataclasses.replace(target, model_id=0)], tmp_path / "alone")
    # The population pads the target to a larger hidden size in a shared bucket.
    assert pop[pop.model_id == 2].bucket.iloc[0] >= 0
    pd.testing.assert_frame_equal(_rows(pop, 2), _rows(alone, 0), rtol=1e-4, atol=1e-6)


def test_divergent_model_is_frozen_and_isolated(tmp_path):
    members = toy_members(4)
    crazy = Member(99, members[1].spec.replace(learning_rate=1e30), members[1].seed, "crazy")
    base = _run(members, tmp_path / "base")
    with_crazy = _run(members + [crazy], tmp_path / "crazy", cfg=dataclasses.replace(CFG, max_buckets=1))
    flagged = with_crazy[with_crazy.model_id == 99]
    assert flagged.diverged.all()
    assert not with_crazy[with_crazy.model_id != 99].diverged.any()
    for m in members:
        pd.testing.assert_frame_equal(_rows(base, m.model_id), _rows(with_crazy, m.model_id), rtol=1e-4, atol=1e-6)


def test_per_model_order_is_deterministic_and_different(tmp_path):
    members = toy_members(3)
    cfg = dataclasses.replace(CFG, per_model_order=True)
    a = _run(members, tmp_path / "a", cfg)
    b = _run(members, tmp_path / "b", cfg)
    shared = _run(members, tmp_path / "s")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.train_loss, shared.train_loss)


class _StopAfter:
    def __init__(self, calls):
        self.calls = calls

    def __call__(self):
        self.calls -= 1
        return self.calls < 0


@pytest.mark.parametrize("stop_after", [1, 5])  # mid-epoch of the first chunk; a later chunk
def test_interrupt_and_resume_gives_identical_results(tmp_path, stop_after):
    members = toy_members(5)
    cfg = dataclasses.replace(CFG, epochs=3, max_buckets=2)
    clean = _run(members, tmp_path / "clean", cfg)
    with pytest.raises(SweepInterrupted):
        _run(members, tmp_path / "resumed", cfg, should_stop=_StopAfter(stop_after))
    resumed = _run(members, tmp_path / "resumed", cfg)
    pd.testing.assert_frame_equal(clean, resumed)
    again = _run(members, tmp_path / "resumed", cfg)  # a complete run: nothing to do, nothing duplicated
    pd.testing.assert_frame_equal(clean, again)


def test_four_fake_devices_match_one(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, jax
        sys.path.insert(0, {os.getcwd()!r})
        from tests.engine.test_sweep import _run
        from tests.toy import toy_members
        df = _run(toy_members(5), sys.argv[1])
        print(jax.device_count())
        """
    )
    out = {}
    for n in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        res = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"d{n}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.strip().splitlines()[-1] == str(n)
        out[n] = pd.read_parquet(tmp_path / f"d{n}" / "results.parquet")
    pd.testing.assert_frame_equal(out[1].drop(columns="bucket"), out[4].drop(columns="bucket"), rtol=1e-4, atol=1e-6)
