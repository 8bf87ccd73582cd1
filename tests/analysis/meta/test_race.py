"""The race's plan, its entrants, a small race end to end on an npz file, and the graded extrapolation distance."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_rnn_jax.analysis.meta import newtask, race, recommend


def test_rung_plan_halves_and_fits_the_budget():
    plan = race.rung_plan(12, 20)  # default budget 0.2 x 12 x 20 = 48 model-epochs
    assert [r["models"] for r in plan] == [12, 4, 1] and plan[-1]["epochs"] == 20
    assert sum(r["models"] * r["epochs"] for r in plan) <= 48
    big = race.rung_plan(12, 20, budget=120)
    assert big[0]["epochs"] > plan[0]["epochs"] and sum(r["models"] * r["epochs"] for r in big) <= 120
    assert race.rung_plan(1, 5, budget=5) == [{"models": 1, "epochs": 5}]
    with pytest.raises(ValueError, match="race_budget: 10 model-epochs is too small"):
        race.rung_plan(12, 20, budget=10)


def test_a_tight_budget_raises_eta_instead_of_failing():
    # 10 entrants x 12 epochs, default budget 24: eta 3 needs 10 x 1 + 3 x 3 + 1 x 12 = 31 model-epochs
    assert race.fit_eta(10, 12) == 6  # 10 // 6 = 1 survivor: 10 x 1 + 1 x 12 = 22
    plan = race.rung_plan(10, 12)
    assert plan == [{"models": 10, "epochs": 1}, {"models": 1, "epochs": 12}]
    assert race.fit_eta(12, 20) == 3  # the default eta where it fits


def _rec(**kwargs):
    desc = {"input_dim": 3, "output_dim": 3, "seq_len": 6, "loss": "ce", "train_size": 1000}
    return recommend.recommend_for_task(desc, 200, num_sampled=20, learning_rates=[1e-3], **kwargs)


def test_entrants_are_top_diverse_balanced_and_dense():
    rec = _rec()
    entrants = race.race_entrants(rec, top=2, diverse=3)
    kinds = [e["entered_as"] for e in entrants]
    assert kinds[:2] == ["top", "top"] and kinds.count("diverse") == 3
    configs = [e["config"] for e in entrants]
    assert len(set(configs)) == len(configs)
    assert any(c.startswith("balanced") for c in configs) and any(c.startswith("dense") for c in configs)


def test_race_end_to_end_on_an_npz_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 150)
    x = rng.normal(size=(150, 6, 3)).astype(np.float32)
    x[:, :, 0] += labels[:, None]
    np.savez(tmp_path / "t.npz", x=x, labels=labels)
    rec = _rec()
    make = newtask.rung_config_factory("npz", data=str(tmp_path / "t.npz"))
    out = race.run_race(rec, make, tmp_path / "race", epochs=4, budget=7, top=1, diverse=0, log=lambda s: None)
    n = len(out["entrants"])
    configs = [e["config"].split("@")[0] for e in out["entrants"]]
    assert n >= 2 and "balanced" in configs and "dense" in configs
    used = sum(r["models"] * r["epochs"] for r in out["rungs"])
    assert out["scored_by"] == "norm_min_loss" and out["compute_model_epochs"] == used <= 7
    assert out["compute_fraction"] == pytest.approx(used / (n * 4))
    assert out["rungs"][0]["models"] == n and out["rungs"][-1]["epochs"] == 4 and out["rungs"][-1]["models"] == 1
    w = out["winner"]
    assert w["config"] == out["rungs"][-2]["survivors"][0] == out["rungs"][-1]["results"][0]["config"]
    assert len(w["curve"]) == 4
    assert w["norm_min_loss"] == pytest.approx(min(c for c in w["curve"]))
    assert (tmp_path / "race" / "rung_1" / "results.parquet").is_file()


def test_extrapolation_is_graded():
    inside = newtask.add_extrapolation(_rec())
    assert inside["extrapolation"]["task_distance"] == 0.0
    far = {"input_dim": 20000, "output_dim": 3, "seq_len": 6, "loss": "ce", "train_size": 120}
    farther = {**far, "input_dim": 200000}
    d = [
        newtask.add_extrapolation(recommend.recommend_for_task(t, 5e6, num_sampled=5, learning_rates=[1e-3]))
        for t in (far, farther)
    ]
    assert 0 < d[0]["extrapolation"]["task"]["log_input_dim"] < d[1]["extrapolation"]["task"]["log_input_dim"]
    for c in d[0]["candidates"]:
        assert c["extrapolation_distance"] >= d[0]["extrapolation"]["task_distance"] > 0
        assert "log_input_dim" in c["extrapolation_features"]


def test_registered_task_config_errors_are_one_line():
    assert newtask.registered_task_config("recall", '{"lag": 7}').lag == 7
    for args, message in (
        (("nope", "{}"), "task: unknown task"),
        (("recall", "[1]"), "task_config: must be a JSON object"),
        (("recall", '{"lagg": 1}'), "task_config: recall has no field 'lagg'"),
        (("recall", '{"lag": 0}'), "task_config: lag must be >= 1"),
    ):
        with pytest.raises(ValueError, match=message):
            newtask.registered_task_config(*args)
