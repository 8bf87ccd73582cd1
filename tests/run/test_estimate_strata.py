"""A stratified run end to end: its --plan shows the strata, the run trains the subsample, and the analysis
rebuilds the drawn population's counts from run.json to weight it."""

from __future__ import annotations

import dataclasses

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.engine.members import stratified_members
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.estimate import plan_run, plan_text
from sparse_rnn_jax.run.train import train_and_evaluate
from sparse_rnn_jax.tasks.rad import RadTaskConfig

CONFIG = RunConfig(
    "rad",
    RadTaskConfig(mnist_source="embedded", train_size=32, val_size=16, test_size=16, image_size=8, cache_dir=""),
    PopulationConfig(
        num_models=120,
        budget=2000,
        sampler="normal_size:0.5,uniform_size:0.5",
        stratify="table_iv",
        per_stratum=2,
        config_repeats=0,
    ),
    TrainConfig(epochs=1, steps_per_call=2, max_buckets=1),
)


def test_plan_shows_the_strata_and_counts_the_subsample():
    plan = plan_run(CONFIG, calibrate=False)
    strata = plan["strata"]
    assert strata["population"] == 120 and strata["sampled"] == plan["models"] < 120
    assert all(c["sampled"] == min(2, c["population"]) or c["sampled"] == 2 for c in strata["strata"].values())
    text = plan_text(plan)
    assert "stratified:" in text and "population -> trained" in text
    unstratified = dataclasses.replace(CONFIG, population=dataclasses.replace(CONFIG.population, stratify="none"))
    assert plan_run(unstratified, calibrate=False)["strata"] is None


def test_a_stratified_run_is_weighted_back_to_its_population(tmp_path):
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.replication import table_beside_paper_frame
    from sparse_rnn_jax.analysis.stratified import run_population_counts
    from sparse_rnn_jax.engine.results import final_per_model, read_results

    work = tmp_path / "w"
    result = train_and_evaluate(CONFIG, work, progress=False, log=lambda _m: None)
    assert result.record["status"] == "complete"
    expected = stratified_members(CONFIG.population, CONFIG.train.seed, 64, 10)
    assert result.frame["model_id"].nunique() == len(expected.specs)
    counts = run_population_counts(work)
    assert counts == expected.population_counts and sum(counts.values()) == 120
    models, _ = classify(final_per_model(read_results([work])))
    beside, _, _ = table_beside_paper_frame(models, "IV", counts, n_boot=50)
    assert abs(beside.loc[beside["metric"] == "hidden_proportion", "population"].sum() - 120) < 1e-6
