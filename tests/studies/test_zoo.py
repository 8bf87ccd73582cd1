"""The task zoo's entries, budgets, draws and runs (nothing is trained here)."""

from __future__ import annotations

import pytest

from sparse_rnn_jax.core.spec_text import spec_from_text
from sparse_rnn_jax.studies.zoo import (
    ZOO,
    ZooConfig,
    dense_budget,
    entry_data_config,
    sampled_specs,
    task_descriptor,
    zoo_runs,
)
from sparse_rnn_jax.tasks.registry import TASKS, get_task


def test_at_least_eight_tasks_without_adroit_and_varied_descriptors():
    entries = [e for e in ZOO if not e.environment]
    assert len(entries) >= 8 and all(e.task in TASKS for e in ZOO)
    zoo = ZooConfig(train_size=64, val_size=16)
    descs = [task_descriptor(e.task, entry_data_config(e, zoo)) for e in entries if e.task not in ("reber",)]
    assert len({(d["input_dim"], d["output_dim"]) for d in descs}) >= 6
    assert len({d["seq_len"] for d in descs}) >= 5 and {d["loss"] for d in descs} == {"ce", "mse"}
    rad = [entry_data_config(e, zoo) for e in entries if e.task == "rad"]
    assert len({c.image_size for c in rad}) >= 2 and len({c.images_per_sequence for c in rad}) >= 2


def test_runs_per_entry_and_level(tmp_path):
    notes = []
    zoo = ZooConfig(
        tasks=("adding", "copy", "ah"),
        dense_hidden=(8, 16),
        num_models=6,
        config_repeats=3,
        ah_dataset="local/nowhere/none-v0",
    )
    runs = zoo_runs(zoo, notes.append)
    assert [r.path for r in runs] == ["adding/b99", "adding/b323", "copy/b416", "copy/b816"]
    assert len(notes) == 1 and notes[0].startswith("ah: skipped") and "collect_minari" in notes[0]
    for r in runs:
        x, y = get_task(r.entry.task).dims(r.config.data)
        assert r.budget == dense_budget(x, y, r.level)
        assert r.config.population.size == 6 + 5 * 3 and r.config.train.epochs == zoo.epochs
        hidden = [spec_from_text(t, x, y).hidden_dim for t in r.config.population.specs]
        assert max(hidden) <= zoo.max_hidden_factor * r.level
        assert r.config.data.train_size == zoo.train_size and r.config.data.test_size == 1


def test_draws_keep_the_mixture_shares_and_are_deterministic():
    zoo = ZooConfig(num_models=10, sampler="normal_size:0.5,uniform_size:0.5", max_hidden_factor=4)
    a = sampled_specs(zoo, 784, 10, dense_budget(784, 10, 8), 8, 7)
    assert a == sampled_specs(zoo, 784, 10, dense_budget(784, 10, 8), 8, 7)
    names = [t.split(":")[0] for t in a]
    assert names.count("normal_size") == names.count("uniform_size") == 5
    assert all(spec_from_text(t, 784, 10).hidden_dim <= 32 for t in a)
    with pytest.raises(ValueError, match="max_hidden_factor"):
        sampled_specs(ZooConfig(num_models=4, max_hidden_factor=1), 784, 10, dense_budget(784, 10, 8), 8, 7)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"tasks": ("nope",)}, "unknown zoo entry"),
        ({"dense_hidden": ("x",)}, "dense_hidden"),
        ({"dense_hidden": ()}, "dense_hidden"),
        ({"configs": ("lstm",)}, "unknown config"),
        ({"num_models": 0, "config_repeats": 0}, "nothing to train"),
        ({"sampler": "bogus"}, "sampler"),
        ({"max_hidden_factor": 0.5}, "max_hidden_factor"),
    ],
)
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ZooConfig(**kwargs)


def test_families_are_declared_and_generated_instances_span_their_ranges():
    import math

    from sparse_rnn_jax.studies.zoo import ZooConfig, family_of, generated_families
    from sparse_rnn_jax.tasks.generated.base import sample_instances

    assert {family_of(n) for n in ("rad28_T11", "rad50_T11", "rad28_T6")} == {"rad"}
    assert family_of("smnist") == family_of("psmnist") == "smnist" and family_of("reber_cls") == "reber"
    families = generated_families()
    assert len(families) >= 10
    zoo = ZooConfig(generated=3)
    gen = zoo.generated_entries()
    assert len(gen) == 3 * len(families) and {e.family for e in gen} == set(families)
    assert [e.name for e in zoo.entries()][-1] == f"{families[-1]}_02"
    assert ZooConfig(generated=3, tasks=("recall_01",)).entries()[0].data["lag"] >= 1
    with pytest.raises(ValueError, match="unknown zoo entry 'recall_09'"):
        ZooConfig(generated=3, tasks=("recall_09",))
    for name in families:
        family = get_task(name).generator
        values = sample_instances(family, 6, 0)
        for p, (lo, hi, scale) in family.ranges.items():
            if p == "seq_len":
                continue
            f = (lambda v: math.log(v)) if scale.startswith("log") else (lambda v: v)
            got = [f(v[p]) for v in values]
            assert max(got) - min(got) >= 0.5 * (f(hi) - f(lo)), (name, p, got)
