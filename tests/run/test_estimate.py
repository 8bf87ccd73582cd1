"""The plan's calibration cache and its quick mode: a second plan reuses every measured shape, a quick plan
compiles at most two shapes and interpolates the others."""

from __future__ import annotations

import json

import pytest

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.estimate import plan_run
from sparse_rnn_jax.tasks.registry import get_task


def _config() -> RunConfig:
    data = get_task("adding").config_type(seq_len=10, train_size=64, val_size=16)
    texts = tuple(
        f"w{h}:h={h}:lr=0.001:hx=1/0/0.1:hh=1/0/0.1:hy=1/0/0.1:yx=1/0/0.1:yh=1/0/0.1:yy=1/0/0.1" for h in (12, 24)
    )
    population = PopulationConfig(num_models=0, hidden_dim=4, configs=("dense",), specs=texts)
    return RunConfig("adding", data, population, TrainConfig(epochs=1, batch_size=16, max_buckets=3))


def test_a_quick_plan_compiles_at_most_two_shapes_and_a_later_plan_reuses_the_cache(tmp_path):
    cache = tmp_path / "calibration.json"
    quick = plan_run(_config(), cache_path=cache, quick=True, calibration_steps=2)
    assert quick["calibration"]["sources"] == {"measured": 2, "cached": 0, "scaled": 1}
    shapes = {s["padded_hidden_dim"]: s for s in quick["calibration"]["shapes"]}
    narrow, middle, wide = (shapes[h] for h in sorted(shapes))
    assert middle["source"] == "scaled" and middle["compile_seconds"] == pytest.approx(
        (narrow["compile_seconds"] + wide["compile_seconds"]) / 2
    )
    assert min(narrow["step_seconds"], wide["step_seconds"]) <= middle["step_seconds"]
    assert middle["step_seconds"] <= max(narrow["step_seconds"], wide["step_seconds"])
    full = plan_run(_config(), cache_path=cache, calibration_steps=2)  # measures only the shape it lacks
    assert full["calibration"]["sources"] == {"measured": 1, "cached": 2, "scaled": 0}
    assert len(next(iter(json.loads(cache.read_text()).values()))) == 3
    again = plan_run(_config(), cache_path=cache, quick=True)
    assert again["calibration"]["sources"] == {"measured": 0, "cached": 3, "scaled": 0}
    assert again["estimated_seconds"] == pytest.approx(full["estimated_seconds"], rel=0.05)  # only data loading
