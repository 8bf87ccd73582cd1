"""Every registered task: its config constructs with defaults, ``dims`` matches what ``load`` returns (tiny sizes),
the task's jitted ``make_batch`` and ``score`` give finite losses, the chance loss is finite (or deliberately NaN),
``descriptor`` agrees with the loaded data, and importing the task module does not import JAX."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax.core.chance import constant_predictor_loss
from sparse_rnn_jax.tasks import base
from sparse_rnn_jax.tasks import npz as npz_task
from sparse_rnn_jax.tasks.registry import TASKS, get_task
from tests.conftest import REPO, SHARED

NAN_CHANCE = {"ah"}  # behaviour cloning: judged by environment scores, no chance loss
MNIST_IDX = SHARED / "data" / "mnist"
MNIST = f"idx:{MNIST_IDX}" if MNIST_IDX.is_dir() else "embedded"
DESCRIPTOR_KEYS = {"name", "input_dim", "output_dim", "seq_len", "loss", "chance_loss", "train_size"}


def _npz_file(folder, kind: str) -> str:
    """A small task file of each loss kind: ce [N], ce [N, T] with a ragged step_mask, mse [N, T, Y], bce."""
    rng = np.random.default_rng(0)
    n, t, x = 30, 6, 3
    arrays = {"x": rng.normal(size=(n, t, x)).astype(np.float32)}
    if kind == "ce":
        arrays["labels"] = rng.integers(0, 4, n)
    elif kind == "ce_steps":
        arrays["labels"] = rng.integers(0, 3, (n, t))
        arrays["step_mask"] = np.arange(t)[None, :] < rng.integers(1, t + 1, n)[:, None]
    elif kind == "mse":
        arrays["targets"] = rng.normal(size=(n, t, 2))
    else:
        arrays["targets"] = (rng.random((n, t, 5)) < 0.3).astype(np.float32)
    path = folder / f"{kind}.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture(scope="module")
def adroit_dataset(tmp_path_factory):
    """A 4-episode, 8-step Hammer dataset collected offline with a random policy (MuJoCo needed)."""
    pytest.importorskip("gymnasium_robotics")
    from sparse_rnn_jax.tasks.adroit.collect import collect_dataset
    from sparse_rnn_jax.tasks.adroit.policies import load_npz_policy
    from tests.tasks.adroit.test_policies import write_random_policy

    home = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(home))
        policy = load_npz_policy(write_random_policy(home / "policy.npz", 46, 26))
        collect_dataset(
            "AdroitHandHammer-v1", policy, 4, "local/hammer/registry-v0", max_episode_steps=8, progress=False
        )
        yield "local/hammer/registry-v0"


def _tiny(case: str, request, tmp_path):
    """(task name, a tiny config) of a test case: the task's ``TaskDef.tiny`` variant, with the data this machine
    holds where the task reads local data (MNIST digits, a collected Adroit dataset, an npz file per loss kind)."""
    name, _, variant = case.partition("-")
    task = get_task(name)
    fields = {f.name for f in dataclasses.fields(task.config_type)}
    values = dict(task.tiny[variant])
    if "mnist_source" in fields:
        values["mnist_source"] = MNIST
    if name == "ah":
        values["dataset_id"] = request.getfixturevalue("adroit_dataset")
    if name == "npz":
        values["data"] = _npz_file(tmp_path, variant)
    return name, dataclasses.replace(task.config_type(), **values)


CASES = [f"{name}-{variant}" if variant else name for name in TASKS for variant in get_task(name).tiny]
ENGINE_TASK = {  # npz variant -> the engine task its loss and label shape pick
    "ce": "last_step_classification_score",
    "ce_steps": "masked_classification_score",
    "mse": "masked_mse_score",
    "bce": "multilabel_next_symbol_score",
}


def test_every_registered_task_has_a_case_and_a_descriptor():
    assert {c.partition("-")[0] for c in CASES} == set(TASKS)
    assert all(get_task(name).descriptor is not None and get_task(name).tiny for name in TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_config_constructs_with_defaults(name):
    task = get_task(name)
    config = task.config_type()
    assert task.name == name and dataclasses.is_dataclass(config)
    for f in dataclasses.fields(config):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help text"


@pytest.mark.parametrize("case", CASES)
def test_dims_load_batch_score_chance_descriptor(case, request, tmp_path):
    name, config = _tiny(case, request, tmp_path)
    task_def = get_task(name)
    task_def.check(config)
    dims = task_def.dims(config)
    data = task_def.load(config, lambda message: None)
    task = data.objective
    assert (task.input_dim, task.output_dim) == dims

    n = len(next(iter(data.train.values())))
    idx = jnp.arange(min(4, n), dtype=jnp.int32)
    batch = jax.jit(task.make_batch)(data.train, idx)
    assert batch.x.ndim == 3 and batch.x.shape[0] == idx.shape[0] and batch.x.shape[2] == dims[0]
    y = jax.random.normal(jax.random.PRNGKey(0), (*batch.x.shape[:2], dims[1]))
    loss_sum, loss_count, correct = jax.jit(task.score)(y, batch)
    loss = float(jnp.sum(batch.weight * loss_sum) / jnp.sum(batch.weight * loss_count))
    assert math.isfinite(loss) and loss > 0 and np.all(np.isfinite(np.asarray(correct)))

    assert (
        math.isfinite(task.chance_loss) and task.chance_loss > 0 or (name in NAN_CHANCE and np.isnan(task.chance_loss))
    )

    desc = task_def.descriptor(config, data)
    assert set(desc) == DESCRIPTOR_KEYS and desc["name"] == task.name
    assert (desc["input_dim"], desc["output_dim"], desc["seq_len"]) == (*dims, batch.x.shape[1])
    assert desc["train_size"] == n and desc["loss"] in base.LOSSES and math.isfinite(desc["chance_loss"])
    if name not in NAN_CHANCE:
        assert desc["chance_loss"] == pytest.approx(task.chance_loss, rel=1e-5)
        assert task_def.descriptor(config)["chance_loss"] == pytest.approx(task.chance_loss, rel=1e-5)
    if name == "npz":
        assert task.score.__name__ == ENGINE_TASK[case.partition("-")[2]]
        assert data.info["npz"]["sha256"] == npz_task.file_sha256(config.data)


def test_names_identify_the_variant(tmp_path):
    smnist = get_task("smnist").config_type
    assert smnist().name == "smnist" and smnist(permuted=True).name == "psmnist"
    path = _npz_file(tmp_path, "mse")
    assert get_task("npz").load(npz_task.NpzConfig(data=path), lambda m: None).objective.name == "npz_mse"


def test_generated_chance_is_the_engine_definition():
    """npz's chance equals ``core.chance.constant_predictor_loss`` (the one definition, which the regression
    generators' descriptors and the engine use), and that is the variance of the valid targets for mse."""
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(20, 7, 3))
    mask = rng.random((20, 7)) < 0.6
    valid = targets[mask]
    assert constant_predictor_loss(targets, mask, "mse") == pytest.approx(valid.var(axis=0).mean())
    labels = rng.integers(0, 5, (20, 7))
    bits = (rng.random((20, 7, 3)) < 0.2).astype(np.float32)
    for arrays, kind, target in (
        ({"labels": labels, "step_mask": mask}, "ce", labels),
        ({"targets": bits, "step_mask": mask}, "bce", bits),
        ({"targets": targets, "step_mask": mask}, "mse", targets),
    ):
        assert npz_task.chance_loss(arrays, kind) == pytest.approx(constant_predictor_loss(target, mask, kind))


def test_bad_npz_config_and_file_one_line(tmp_path):
    task = get_task("npz")
    with pytest.raises(ValueError, match="^data: no file given"):
        task.check(npz_task.NpzConfig())
    with pytest.raises(ValueError, match="^data: no such file"):
        task.check(npz_task.NpzConfig(data=str(tmp_path / "missing.npz")))
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="^data: bad.npz: missing target") as info:
        task.dims(npz_task.NpzConfig(data=str(bad)))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="^loss must be"):
        npz_task.NpzConfig(loss="hinge")
    with pytest.raises(ValueError, match="^fractions"):
        npz_task.NpzConfig(fractions=(1.0, 0.0, 0.0))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_importing_the_task_module_does_not_import_jax(name):
    code = f"import sys, {TASKS[name]}; assert 'jax' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
