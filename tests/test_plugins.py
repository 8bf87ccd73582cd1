"""Plug-ins are one module and one registry line: the worked examples of docs/architecture.md (the task ``echo``
and the model family ``elman``), written out as modules and registered at test time, train in a sweep, resume, and
go through the summary, the run's reload and the meta-dataset's descriptor with no other change to the library."""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO

DOC = REPO / "docs" / "architecture.md"


def doc_module(path: str) -> str:
    """The code block of docs/architecture.md whose first line names ``path``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    found = [b for b in blocks if b.startswith(f"# {path}:")]
    assert len(found) == 1, f"docs/architecture.md has no worked example {path}"
    return found[0]


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    """The two worked examples as modules ``echo`` and ``elman``, and their registry lines, for this test only."""
    from sparse_rnn_jax.models.registry import FAMILIES, module_families
    from sparse_rnn_jax.tasks.registry import TASKS

    for name, path in (("echo", "sparse_rnn_jax/tasks/echo.py"), ("elman", "sparse_rnn_jax/models/elman.py")):
        (tmp_path / f"{name}.py").write_text(doc_module(path))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("echo", "elman"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(TASKS, "echo", "echo")
    (family,) = module_families("elman")
    monkeypatch.setitem(FAMILIES, "elman", family)
    yield importlib.import_module("echo"), importlib.import_module("elman")
    for name in ("echo", "elman"):
        sys.modules.pop(name, None)


def test_a_plugin_task_and_family_train_resume_and_summarise(plugins, tmp_path):
    echo, elman_module = plugins
    from sparse_rnn_jax.analysis.summary import sweep_summary
    from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
    from sparse_rnn_jax.engine.results import final_per_model
    from sparse_rnn_jax.run.config import RunConfig
    from sparse_rnn_jax.run.train import load_run, train_and_evaluate
    from sparse_rnn_jax.studies.zoo import task_descriptor

    data = dataclasses.replace(echo.EchoConfig(), **echo.TASK.tiny[""])
    population = PopulationConfig(num_models=0, budget=300.0, configs=("elman",), config_repeats=2, config_lr=1e-2)
    config = RunConfig("echo", data, population, TrainConfig(epochs=2, batch_size=8, max_buckets=1))
    quiet = dict(log=lambda m: None, progress=False, tensorboard=False)
    precision = jax.config.jax_default_matmul_precision
    result = train_and_evaluate(config, tmp_path / "run", **quiet)
    assert jax.config.jax_default_matmul_precision == precision  # the run's precision was scoped to the call
    per_model = final_per_model(result.frame).set_index("config")
    assert len(per_model) == 2 and np.isfinite(per_model["final_val_loss"]).all()
    elman = per_model.loc["elman"].iloc[0]
    assert elman["trainable_params"] == elman_module.elman_weights(3, int(elman["hidden_dim"]), 3) <= 300

    text = sweep_summary(result.frame, result.record)
    named = text.split("named configurations")[1]
    assert "\nelman " in named and "2 " in named.split("\nelman ")[1][:20]  # its row, the mean of its 2 seeds

    from sparse_rnn_jax.analysis.report import analyze

    analyze([tmp_path / "run"], tmp_path / "report")  # the analysis report: the family has no block columns
    report = "\n".join(p.read_text() for p in (tmp_path / "report").glob("*.md"))
    assert "2 models (elman) have no block hyperparameters and are left out" in report

    run = load_run(tmp_path / "run")
    assert run.config == config
    assert task_descriptor("echo", run.config.data)["seq_len"] == 4
    again = train_and_evaluate(config, tmp_path / "run", **quiet)  # complete: nothing to do
    assert again.data is None


def test_plugin_family_step_equals_forward_and_configs_validate(plugins):
    from sparse_rnn_jax.engine.config import PopulationConfig

    FAMILY = plugins[1].FAMILY
    from tests.toy import family_spec

    spec = family_spec("elman", 3, 5, 2)
    assert isinstance(spec, plugins[1].ElmanSpec) and spec.hidden_dim == 5
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
