"""Plug-ins are one module and one registry line: a task and a model family written here (this module is both
modules) and registered at test time train in a sweep, resume, and go through the summary, the run's reload and
the meta-dataset's descriptor with no other change to the library.

The task ``echo``: recall the first input's sign pattern at the last step (mse). The family ``elman``: a dense Elman
RNN h' = tanh(W_x x + W_h h + b), y = W_y h + b_y, with its own spec and one named configuration, ``elman``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.models.family import Family, empty_spec_columns
from sparse_rnn_jax.models.masks import ModelArrays, masked_params
from sparse_rnn_jax.tasks.base import TINY_SIZES, TaskDef, descriptor_dict, split_rng, task_field

# ---- the task module -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EchoConfig:
    seq_len: int = task_field(5, "Steps per sequence.")
    width: int = task_field(3, "Inputs per step (and outputs).")
    train_size: int = task_field(64, "Training sequences.")
    val_size: int = task_field(16, "Validation sequences.")
    test_size: int = task_field(16, "Test sequences.")
    data_seed: int = task_field(0, "Seed of the generated sequences.")


def echo_arrays(config: EchoConfig, split: str) -> dict[str, np.ndarray]:
    rng = split_rng(config.data_seed, 0xEC40, split)
    n = getattr(config, f"{split}_size")
    x = rng.normal(size=(n, config.seq_len, config.width)).astype(np.float32)
    targets = np.zeros_like(x)
    targets[:, -1] = np.sign(x[:, 0])
    mask = np.zeros((n, config.seq_len), bool)
    mask[:, -1] = True
    return {"x": x, "targets": targets, "step_mask": mask}


def echo_descriptor(config: EchoConfig, data=None) -> dict:
    return descriptor_dict("echo", config.width, config.width, config.seq_len, "mse", 1.0, config.train_size)


def echo_load(config: EchoConfig, log=print):
    from sparse_rnn_jax.engine.task import TaskData, regression_task

    train, val = echo_arrays(config, "train"), echo_arrays(config, "val")
    task = regression_task("echo", config.width, config.width, chance_loss=1.0)
    return TaskData(task, train, val, {"echo": dataclasses.asdict(config)})


TASK = TaskDef(
    name="echo",
    config_type=EchoConfig,
    dims=lambda c: (c.width, c.width),
    load=echo_load,
    descriptor=echo_descriptor,
    tiny={"": {"seq_len": 4, **TINY_SIZES}},
)

# ---- the family module -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ElmanSpec:
    input_dim: int
    hidden_dim: int
    output_dim: int
    learning_rate: float = 1e-3
    name: str = "elman"
    family = "elman"
    activation = "tanh"

    def replace(self, **changes) -> ElmanSpec:
        return dataclasses.replace(self, **changes)


def elman_weights(x: int, h: int, y: int) -> int:
    return h * x + h * h + y * h


def elman_init(spec: ElmanSpec, seed: int, padded_hidden_dim: int | None = None, mask_mode: str = "exact"):
    h, x, y = spec.hidden_dim, spec.input_dim, spec.output_dim
    hp = padded_hidden_dim or h
    rng = np.random.default_rng(seed)
    shapes = {"W_x": ((h, x), (hp, x)), "W_h": ((h, h), (hp, hp)), "b": ((h,), (hp,)), "W_y": ((y, h), (y, hp))}
    shapes["b_y"] = ((y,), (y,))
    params, masks = {}, {}
    for key, (true, padded) in shapes.items():
        region = tuple(slice(0, s) for s in true)
        params[key], masks[key] = np.zeros(padded, np.float32), np.zeros(padded, bool)
        params[key][region] = rng.uniform(-1, 1, true) / math.sqrt(h)
        masks[key][region] = True
    return ModelArrays(params, masks)


def elman_step(p, state, x_t, hidden_dim=None, activation=None):
    state = jnp.tanh(x_t @ p["W_x"].T + state @ p["W_h"].T + p["b"])
    return state, state @ p["W_y"].T + p["b_y"]


def elman_forward(params, masks, x, activation=None, unroll=1):
    p = masked_params(params, masks, {})

    def step(state, x_t):
        state, y = elman_step(p, state, x_t)
        return state, y

    _, ys = jax.lax.scan(step, jnp.zeros((x.shape[0], p["W_h"].shape[0])), jnp.swapaxes(x, 0, 1), unroll=unroll)
    return jnp.swapaxes(ys, 0, 1)


def elman_columns(spec: ElmanSpec, seed=None) -> dict:
    x, h, y = spec.input_dim, spec.hidden_dim, spec.output_dim
    row = empty_spec_columns()
    row.update(
        hidden_dim=h,
        input_dim=x,
        output_dim=y,
        trainable_params=float(elman_weights(x, h, y)),
        model_density=1.0,
        hidden_proportion=h * h / (h * x + h * h),
        learning_rate=spec.learning_rate,
        activation="tanh",
    )
    return row


def elman_named_spec(config, input_dim, output_dim, *, budget, hidden_dim, learning_rate, **unused):
    if budget is not None:  # the largest hidden size within the budget
        side = input_dim + output_dim
        hidden_dim = max(1, int((math.sqrt(side**2 + 4 * budget) - side) / 2))
    return ElmanSpec(input_dim, hidden_dim, output_dim, learning_rate)


FAMILY = Family(
    name="elman",
    init=elman_init,
    forward=elman_forward,
    prepare=lambda params, masks: masked_params(params, masks, {}),
    step=elman_step,
    dims=lambda params: (params["W_x"].shape[-1], params["W_h"].shape[-1], params["W_y"].shape[-2]),
    state_size=lambda hidden_dim, output_dim: hidden_dim,
    real_units=lambda masks: masks["b"],
    matmul_flops=lambda x, h, y: 2.0 * elman_weights(x, h, y),
    weight_keys={"W_x": "W_x", "W_h": "W_h", "W_y": "W_y"},
    hidden_keys=("W_h",),
    top_row_keys=("W_x", "W_h"),
    result_columns=elman_columns,
    config_names=("elman",),
    named_spec=elman_named_spec,
)

# ---- the registry lines and the tests --------------------------------------------------------------------------


@pytest.fixture
def plugins(monkeypatch):
    """The two registry lines, for this test only."""
    from sparse_rnn_jax.models.registry import FAMILIES
    from sparse_rnn_jax.tasks.registry import TASKS

    monkeypatch.setitem(TASKS, "echo", __name__)
    monkeypatch.setitem(FAMILIES, "elman", FAMILY)


def test_a_plugin_task_and_family_train_resume_and_summarise(plugins, tmp_path):
    from sparse_rnn_jax.analysis.summary import sweep_summary
    from sparse_rnn_jax.engine.config import PopulationConfig, SweepConfig
    from sparse_rnn_jax.engine.results import final_per_model
    from sparse_rnn_jax.studies.zoo import task_descriptor
    from sparse_rnn_jax.tasks.run import load_run, train_and_evaluate
    from sparse_rnn_jax.tasks.run_config import RunConfig

    data = dataclasses.replace(EchoConfig(), **TASK.tiny[""])
    population = PopulationConfig(num_models=0, budget=300.0, configs=("elman", "dense"), config_lr=1e-2)
    config = RunConfig("echo", data, population, SweepConfig(epochs=2, batch_size=8, max_buckets=1))
    quiet = dict(log=lambda m: None, progress=False, tensorboard=False)
    result = train_and_evaluate(config, tmp_path / "run", **quiet)
    per_model = final_per_model(result.frame).set_index("config")
    assert len(per_model) == 2 and np.isfinite(per_model["final_val_loss"]).all()
    elman = per_model.loc["elman"]
    assert elman["trainable_params"] == elman_weights(3, int(elman["hidden_dim"]), 3) <= 300

    text = sweep_summary(result.frame, result.record)
    named = text.split("named configurations")[1]
    assert all(f"\n{c} " in named for c in ("dense", "elman"))

    run = load_run(tmp_path / "run")
    assert run.config == config
    assert task_descriptor("echo", run.config.data)["seq_len"] == 4
    again = train_and_evaluate(config, tmp_path / "run", **quiet)  # complete: nothing to do
    assert again.data is None


def test_plugin_family_step_equals_forward_and_configs_validate(plugins):
    from sparse_rnn_jax.engine.config import PopulationConfig
    from tests.toy import family_spec

    spec = family_spec("elman", 3, 5, 2)
    assert isinstance(spec, ElmanSpec) and spec.hidden_dim == 5
    arrays = FAMILY.init(spec, 0, 8)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 3)), jnp.float32)
    y = FAMILY.forward(arrays.params, arrays.masks, x)
    prepared, state, steps = FAMILY.prepare(arrays.params, arrays.masks), jnp.zeros((2, 8)), []
    for t in range(4):
        state, y_t = FAMILY.step(prepared, state, x[:, t])
        steps.append(y_t)
    np.testing.assert_allclose(np.stack(steps, 1), y, atol=1e-6)
    assert PopulationConfig(budget=100.0, configs=("elman",), num_models=0).configs == ("elman",)
    with pytest.raises(ValueError, match="unknown config 'elmann'"):
        PopulationConfig(budget=100.0, configs=("elmann",), num_models=0)
