"""The live metrics writer: TensorBoard event files read back, steps monotone per (run, tag), W&B optional."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from sparse_rnn_jax.engine.metrics import MetricsWriter, epoch_scalars, read_scalars
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


def test_event_files_read_back_per_chunk_with_monotone_steps(tmp_path):
    logdir = tmp_path / "tensorboard"
    with MetricsWriter(logdir) as w:
        for chunk, offset in (("b0_c0", 0.0), ("b1_c0", 100.0)):  # chunks train one after another
            for epoch in (1, 2, 3):
                w.epoch(chunk, epoch, _rows(epoch, offset=offset), seconds=0.5, sequences=1000)
    scalars = read_scalars(logdir)
    assert set(scalars) == {"chunk_b0_c0", "chunk_b1_c0"}
    for run, tags in scalars.items():
        assert {"val_loss/p50", "train_loss/p90", "val_accuracy/p10", "config/dense/val_loss", "diverged/share"} <= set(
            tags
        )
        assert tags["throughput/model_sequences_per_s"] == [(1, 2000.0), (2, 2000.0), (3, 2000.0)]
        for tag, points in tags.items():
            steps = [s for s, _ in points]
            assert steps == sorted(steps) == [1, 2, 3], (run, tag)
    p50 = dict(scalars["chunk_b1_c0"]["val_loss/p50"])
    assert p50[2] == pytest.approx(100.0 + np.median(np.arange(10) / 2) + 0.5)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_event_accumulator_reads_the_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsWriter(tmp_path) as w:
        w.epoch("c", 1, _rows(1), 1.0, 10)
        w.epoch("c", 2, _rows(2), 1.0, 10)
    acc = EventAccumulator(str(tmp_path / "chunk_c")).Reload()
    events = acc.Scalars("val_loss/p50")
    assert [e.step for e in events] == [1, 2]
    assert events[0].value == pytest.approx(np.median(np.arange(10)) + 0.5)


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
    assert read_scalars(tmp_path)["chunk_c"]["val_loss/p50"] == [(1, 1.0)]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    notes: list[str] = []
    w = MetricsWriter(tmp_path, wandb_project="sparse_rnn_jax_test", run_name="t", config={"a": 1}, log=notes.append)
    assert w.wandb_active, notes
    w.epoch("c", 1, _rows(1), 1.0, 10)
    w.epoch("d", 1, _rows(1), 1.0, 10)  # a second chunk: W&B's own step still grows
    w.close()
    assert list(tmp_path.rglob("*.wandb")), "no offline W&B run written"
