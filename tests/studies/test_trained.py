"""load_member on a tiny real sweep (two padded block RNNs and a GRU on the adding problem): each trained model as
its module at its own hidden size, scoring the sweep's final validation loss; docs/flax.md's snippet; refusals."""

from __future__ import annotations

import json
import re
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from sparse_rnn_jax import GRU, BlockRNN, load_member
from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.train import RunError, load_run, train_and_evaluate
from sparse_rnn_jax.tasks.adding import AddingConfig
from tests.conftest import REPO

CONFIG = RunConfig(
    "adding",
    AddingConfig(seq_len=6, train_size=64, val_size=32, test_size=8),
    PopulationConfig(num_models=2, sampler="normal", hidden_mean=12, hidden_std=4, budget=200, configs=("gru",)),
    TrainConfig(epochs=2, batch_size=16, steps_per_call=4, max_buckets=1),
)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep") / "w"
    result = train_and_evaluate(CONFIG, work, progress=False, log=lambda _m: None)
    return work, result.frame


def test_load_member_returns_the_trained_model(sweep):
    work, frame = sweep
    run = load_run(work)
    data = run.task_data(lambda _m: None)
    batch = data.objective.make_batch(data.val, np.arange(CONFIG.data.val_size))
    final = frame[frame.epoch == CONFIG.train.epochs].set_index("model_id")["val_loss"]
    padded = {m.model_id: c.padded_hidden_dim for c in run.chunks for m in c.members}
    assert any(padded[m.model_id] > m.spec.hidden_dim for m in run.members)  # a member trained padded
    for m in run.members:
        model = load_member(work, m.model_id)
        assert type(model) is {"block": BlockRNN, "gru": GRU}[m.spec.family] and model.spec == m.spec
        assert model.hidden_dim == m.spec.hidden_dim
        loss_sum, count, _ = data.objective.score(model(batch.x), batch)
        loss = float(jnp.sum(batch.weight * loss_sum) / jnp.sum(batch.weight * count))
        np.testing.assert_allclose(loss, final[m.model_id], rtol=1e-5)
    snippet = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "flax.md").read_text(), flags=re.S)[2]
    ns: dict = {}
    exec(compile(snippet.replace("runs/rad_smoke", str(work)), "docs/flax.md", "exec"), ns)
    assert ns["rnn"].spec == next(m.spec for m in run.members if m.model_id == final.idxmin())


def test_load_member_refusals(sweep, tmp_path):
    work, _ = sweep
    with pytest.raises(RunError, match="no model 99"):
        load_member(work, 99)
    bare = tmp_path / "bare"
    shutil.copytree(work, bare)
    final = json.loads((bare / "manifest.json").read_text())["finals"]
    ckpt = bare / "checkpoints" / next(iter(final.values()))["file"]
    ckpt.write_bytes(ckpt.read_bytes()[:-64])  # a damaged final checkpoint: refused, never loaded
    with pytest.raises(RunError, match="final checkpoint of chunk"):
        load_member(bare, 0)
    with pytest.raises(RunError, match="run.json"):
        load_member(tmp_path / "nothing", 0)
