"""The live metrics writer: TensorBoard event files read back, steps monotone per (run, tag), W&B optional."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from sparse_rnn_jax.engine.metrics import HPARAM_COLUMNS, MetricsWriter, epoch_scalars, read_hparams, read_scalars
from tests.conftest import REPO


def _rows(epoch: int, n: int = 10, offset: float = 0.0) -> list[dict]:
    """n models: 8 sampled (normal_size) and 2 named (dense, balanced); model 0 diverged."""
    configs = ["normal_size"] * (n - 2) + ["dense", "balanced"]
    return [
        {
            "model_id": i,
            "config": configs[i],
            "epoch": epoch,
            "train_loss": offset + i / epoch,
            "val_loss": offset + i / epoch + 0.5,
            "val_accuracy": 0.05 * i,
            "diverged": i == 0,
            "hidden_proportion": 0.1 * i,
        }
        for i in range(n)
    ]


def test_scalars_of_one_epoch():
    s = epoch_scalars(_rows(1), seconds=2.0, sequences=10 * 400)
    np.testing.assert_allclose(
        [s["val_loss/p10"], s["val_loss/p50"], s["val_loss/p90"]], np.percentile(np.arange(10) + 0.5, [10, 50, 90])
    )
    assert s["config/dense/val_loss"] == pytest.approx(8.5)
    assert s["config/balanced/val_accuracy"] == pytest.approx(0.45)
    assert not any("normal_size" in t for t in s)  # samplers are not named configurations
    assert s["diverged/share"] == pytest.approx(0.1)
    assert s["throughput/model_sequences_per_s"] == pytest.approx(2000.0)
    regression = epoch_scalars([dict(r, val_accuracy=float("nan")) for r in _rows(1)], 1.0, 1)
    assert not any(t.startswith("val_accuracy") for t in regression)  # no finite accuracy: not written


def _two_chunks(writer, epochs=(1, 2, 3)):
    for k, (chunk, offset) in enumerate((("b0_c0", 0.0), ("b1_c0", 100.0))):  # chunks train one after another
        for epoch in epochs:
            rows = [dict(r, model_id=r["model_id"] + 10 * k) for r in _rows(epoch, offset=offset)]
            writer.epoch(chunk, epoch, rows, seconds=0.5, sequences=1000)


def test_one_sweep_run_at_a_global_step_and_named_model_curves(tmp_path):
    logdir = tmp_path / "tensorboard"
    with MetricsWriter(logdir, chunk_keys=["b0_c0", "b1_c0"], epochs=3) as w:
        _two_chunks(w)
    scalars = read_scalars(logdir)
    # one run for the sweep; curves for the named models only (dense, balanced; sampled draws have none)
    curves = {run for run, tags in scalars.items() if "val_loss" in tags and run != "sweep"}
    assert curves == {
        f"models/{i:05d}_{c}" for i, c in ((8, "dense"), (9, "balanced"), (18, "dense"), (19, "balanced"))
    }
    assert len(scalars) == 1 + 20  # and every model's hparams session
    sweep = scalars["sweep"]
    assert {"val_loss/p50", "train_loss/p90", "val_accuracy/p10", "config/dense/val_loss", "diverged/share"} <= set(
        sweep
    )
    for tag, points in sweep.items():
        assert [s for s, _ in points] == [1, 2, 3, 4, 5, 6], tag  # chunk index x epochs + epoch: only grows
    assert [v for _, v in sweep["progress/chunk"]] == [0, 0, 0, 1, 1, 1]
    assert dict(sweep["val_loss/p50"])[5] == pytest.approx(100.0 + np.median(np.arange(10) / 2) + 0.5)
    assert [s for s, _ in scalars["models/00019_balanced"]["val_loss"]] == [1, 2, 3]  # a model's curve: step = epoch


def test_every_model_gets_its_hparams_session_with_final_metrics(tmp_path):
    with MetricsWriter(tmp_path, chunk_keys=["c"], epochs=2, log_models="none") as w:
        for epoch in (1, 2):
            w.epoch("c", epoch, _rows(epoch), 1.0, 10)
    sessions = read_hparams(tmp_path)
    assert len(sessions) == 10 and set(read_scalars(tmp_path)) == {"sweep", *sessions}
    hp = sessions["models/00009_balanced"]
    assert hp["config"] == "balanced" and hp["hidden_proportion"] == pytest.approx(0.9)
    assert set(HPARAM_COLUMNS) == set(hp) and sessions["models/00000_normal_size"]["activation"] == "none"
    final = read_scalars(tmp_path)["models/00009_balanced"]
    assert final["hparams/min_val_loss"] == [(2, pytest.approx(9 / 2 + 0.5))]  # min over epochs 1, 2
    assert final["hparams/diverged"] == [(2, 0.0)] and read_scalars(tmp_path)["models/00000_normal_size"][
        "hparams/diverged"
    ] == [(2, 1.0)]
    assert len(w.models_table()) == 10


@pytest.mark.parametrize("mode,runs", [("all", 10), ("named", 2), ("none", 0)])
def test_log_models_picks_the_curves(tmp_path, mode, runs):
    with MetricsWriter(tmp_path, chunk_keys=["c"], epochs=3, log_models=mode) as w:
        w.epoch("c", 1, _rows(1), 1.0, 10)  # no model at its last epoch: no hparams yet
    assert len(set(read_scalars(tmp_path)) - {"sweep"}) == runs and not read_hparams(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_an_extended_run_is_rewritten_at_the_new_global_steps(tmp_path):
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsWriter(tmp_path, chunk_keys=["b0_c0", "b1_c0"], epochs=2) as w:
        _two_chunks(w, epochs=(1, 2))  # steps 1-4
    history = pd.DataFrame(
        [
            dict(r, model_id=r["model_id"] + 10 * k)
            for k, off in ((0, 0.0), (1, 100.0))
            for e in (1, 2)
            for r in _rows(e, offset=off)
        ]
    )
    chunk_of = {i: "b0_c0" for i in range(10)} | {i: "b1_c0" for i in range(10, 20)}
    with MetricsWriter(tmp_path, chunk_keys=["b0_c0", "b1_c0"], epochs=3, history=history, chunk_of=chunk_of) as w:
        w.epoch("b0_c0", 3, _rows(3), 0.5, 1000)  # the extension: each chunk's third epoch
        w.epoch("b1_c0", 3, [dict(r, model_id=r["model_id"] + 10) for r in _rows(3, offset=100.0)], 0.5, 1000)
    events = EventAccumulator(str(tmp_path / "sweep")).Reload().Scalars("progress/chunk")
    assert [(e.step, e.value) for e in events] == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1)]


def test_without_wandb_one_line_and_no_traceback(tmp_path):
    code = (
        "import sys; sys.modules['wandb'] = None\n"  # as if wandb were not installed
        "from sparse_rnn_jax.engine.metrics import MetricsWriter\n"
        f"w = MetricsWriter({str(tmp_path)!r}, wandb_project='p', run_name='r')\n"
        "w.epoch('c', 1, [{'config': 'dense', 'val_loss': 1.0, 'diverged': False}], 1.0, 5)\n"
        "assert not w.wandb_active\n"
        "w.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "metrics: wandb is not installed (pip install wandb); W&B logging is off"
    assert "Traceback" not in proc.stderr
    assert read_scalars(tmp_path)["sweep"]["val_loss/p50"] == [(1, 1.0)]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_one_run_in_wandb_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    notes: list[str] = []
    logdir = tmp_path / "tensorboard"
    w = MetricsWriter(
        logdir, wandb_project="sparse_rnn_jax_test", run_name="t", config={"a": 1}, log=notes.append, epochs=1
    )
    assert w.wandb_active, notes
    w.epoch("c", 1, _rows(1), 1.0, 10)
    w.epoch("d", 1, _rows(1), 1.0, 10)  # a second chunk: the global step still grows
    w.close()
    runs = list((tmp_path / "wb").rglob("*.wandb"))
    assert len(runs) == 1, "one offline W&B run, in WANDB_DIR"
    assert not list(logdir.rglob("*.wandb"))
