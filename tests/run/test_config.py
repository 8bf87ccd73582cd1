"""RunConfig round-trips through run.json's dict, and reads the run.json of older versions."""

import json

import pytest

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.tasks.registry import get_task


def _config() -> RunConfig:
    data = get_task("adding").config_type(seq_len=6, train_size=32, val_size=16)
    return RunConfig("adding", data, PopulationConfig(num_models=3, budget=500), TrainConfig(epochs=2))


def test_round_trip_and_a_retired_field():
    config = _config()
    d = json.loads(json.dumps(config.to_dict()))
    assert RunConfig.from_dict(d) == config
    d["train"]["save_final_params"] = True  # written by runs that kept a second copy of their weights
    assert RunConfig.from_dict(d) == config
    d["train"]["no_such_field"] = 1
    with pytest.raises(ValueError, match="train: unknown field.*no_such_field"):
        RunConfig.from_dict(d)
