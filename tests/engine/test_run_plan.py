"""The run plan made once (``engine.run_plan``) and the one population program (``engine.programs``):
a plan round-trips through run.json's JSON, the sweep, ``--plan`` and ``load_run`` see one plan, a run.json
without one still loads, and ``PopulationProgram`` trains a chunk exactly as the engine's functions do."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.engine.population import stack_chunk
from sparse_rnn_jax.engine.programs import PopulationProgram, eval_indices, init_train_state, jitted_programs, run_steps
from sparse_rnn_jax.engine.run_plan import RunPlan, plan_members
from sparse_rnn_jax.engine.sweep import epoch_indices
from tests.toy import toy_data, toy_members, toy_task


def test_a_plan_round_trips_through_json_and_refuses_other_members():
    members = toy_members(9)
    plan = plan_members(members, TrainConfig(max_buckets=2, max_models_per_chunk=3), device_count=2)
    assert len(plan.chunks) >= 3 and plan.buckets == (0, 1) and all(c.size % 2 == 0 for c in plan.chunks)
    again = RunPlan.from_dict(json.loads(json.dumps(plan.as_dict())), members)
    assert again == plan
    one = plan.for_devices(1)
    assert [c.key for c in one.chunks] == [c.key for c in plan.chunks] and all(c.ghosts == 0 for c in one.chunks)
    assert one.for_devices(2) == plan
    with pytest.raises(ValueError, match="config rebuilds 8"):
        RunPlan.from_dict(plan.as_dict(), members[:8])
    damaged = plan.as_dict()
    damaged["chunks"][0]["model_ids"] = damaged["chunks"][0]["model_ids"][1:]
    with pytest.raises(ValueError, match="exactly once"):
        RunPlan.from_dict(damaged, members)
    with pytest.raises(ValueError, match="version"):
        RunPlan.from_dict({"chunks": []}, members)


def _run_config():
    from sparse_rnn_jax.run.config import RunConfig
    from sparse_rnn_jax.tasks.registry import get_task

    data = get_task("adding").config_type(seq_len=6, train_size=32, val_size=16)
    population = PopulationConfig(num_models=0, hidden_dim=4, configs=("dense", "uniform"), config_repeats=2)
    train = TrainConfig(epochs=1, batch_size=16, max_buckets=2, max_models_per_chunk=2, steps_per_call=2)
    return RunConfig("adding", data, population, train)


def test_the_sweep_the_plan_and_load_run_see_one_plan_and_an_older_run_json_still_loads(tmp_path):
    from sparse_rnn_jax.run.estimate import plan_run
    from sparse_rnn_jax.run.train import RunError, load_run, train_and_evaluate

    config = _run_config()
    work = tmp_path / "run"
    res = train_and_evaluate(config, work, log=lambda _: None, progress=False, tensorboard=False)
    recorded = json.loads((work / "run.json").read_text())
    assert recorded["plan"] == res.record["plan"] and recorded["plan"]["models"] == 4
    run = load_run(work)
    assert run.plan.as_dict() == recorded["plan"]  # one device here: the same ghosts
    assert run.plan.as_dict() == plan_run(config, calibrate=False)["plan"]
    assert run.chunk_models == 2 and [c.key for c in run.chunks] == [c["key"] for c in recorded["plan"]["chunks"]]

    older = dict(recorded)  # a run.json written before plans were recorded
    del older["plan"]
    (work / "run.json").write_text(json.dumps(older))
    assert load_run(work).plan == run.plan
    again = train_and_evaluate(config, work, log=lambda _: None, progress=False, tensorboard=False)
    assert again.data is None  # complete: nothing to do, nothing rewritten
    assert "plan" not in json.loads((work / "run.json").read_text())

    older["plan"] = dict(recorded["plan"], models=5)
    (work / "run.json").write_text(json.dumps(older))
    with pytest.raises(RunError, match=r"run.json is damaged: plan: .*5 models") as e:
        load_run(work)
    assert "\n" not in str(e.value)


def test_the_population_program_trains_a_chunk_exactly_as_the_engine_functions_do():
    task, train, val = toy_task(), toy_data(), toy_data(40, seed=1)
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=16, steps_per_call=4, max_buckets=1)
    chunk = plan_members(toy_members(4), cfg).chunks[0]
    idx = epoch_indices(cfg, 1, 96, [m.model_id for m in chunk.members])

    params, masks, lrs = stack_chunk(chunk)  # the loop every caller wrote before
    train_steps, evaluate = jitted_programs(task, chunk.family, chunk.activation, 1, False)
    state = jax.jit(init_train_state)(jax.device_put(params))
    state, _ = run_steps(train_steps, state, jax.device_put(masks), jax.device_put(lrs), train, idx, 4)
    loss, acc = evaluate(state.params, masks, val, *eval_indices(40, 16))

    program = PopulationProgram.for_chunk(chunk, task, cfg)
    population, steps = program.train(program.stack(chunk), train, idx)
    got_loss, got_acc = program.evaluate(population.state.params, population.masks, val)
    assert steps == len(idx)
    np.testing.assert_array_equal(got_loss, np.asarray(loss))
    np.testing.assert_array_equal(got_acc, np.asarray(acc))
    for k in params:
        np.testing.assert_array_equal(np.asarray(population.state.params[k]), np.asarray(state.params[k]))

    ends = []  # the epoch loop: two epochs in one call equal one epoch, then the next from its state
    program.epochs(
        program.stack(chunk), train, val, lambda e: epoch_indices(cfg, e, 96, [0]), 1, 2, on_epoch=ends.append
    )
    first, _ = program.epochs(program.stack(chunk), train, val, lambda e: epoch_indices(cfg, e, 96, [0]), 1, 1)
    rest = []
    program.epochs(first, train, val, lambda e: epoch_indices(cfg, e, 96, [0]), 2, 2, on_epoch=rest.append)
    assert [e.epoch for e in ends] == [1, 2] and rest[0].epoch == 2
    np.testing.assert_array_equal(ends[0].val_loss, got_loss)
    np.testing.assert_array_equal(ends[1].val_loss, rest[0].val_loss)
    np.testing.assert_array_equal(ends[1].train_loss, rest[0].train_loss)
    stops = []
    order = lambda e: epoch_indices(cfg, e, 96, [0])  # noqa: E731
    _, stopped = program.epochs(
        program.stack(chunk), train, val, order, 1, 2, should_stop=lambda: True, on_stop=stops.append
    )
    assert stopped == 1 and stops[0].step == 4 and stops[0].loss_sum.shape == (chunk.size,)
