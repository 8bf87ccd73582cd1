"""Returns normalised against a random policy (``tasks.adroit.baseline``): D4RL's constants where the environment has
them, otherwise a seeded random policy measured in the same environment, and the ``ah`` task's expert return (the
dataset's mean return) for a Minari dataset of an environment D4RL never had."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import tests.needs_adroit  # noqa: F401  (skips this module without the Adroit stack)
from sparse_rnn_jax.tasks.adroit import AdroitTaskConfig, baseline
from sparse_rnn_jax.tasks.adroit.rollout import D4RL_REF_SCORES, d4rl_normalised_score, make_env

PENDULUM = "Pendulum-v1"


@pytest.mark.parametrize("env_id", sorted(D4RL_REF_SCORES))
def test_known_constants_give_d4rl_scores(env_id):
    random, expert = D4RL_REF_SCORES[env_id]
    returns = [random, expert, (random + expert) / 2, 1234.5]
    scores, base = baseline.normalise_returns(returns, env_id, episodes=3, seed=0, max_steps=5)
    assert base == {"env_id": env_id, "source": "d4rl", "random_return": random, "expert_return": expert}
    np.testing.assert_allclose(scores[:3], [0.0, 100.0, 50.0], atol=1e-9)
    np.testing.assert_allclose(scores, d4rl_normalised_score(env_id, returns))


def _hand_random_return(env_id: str, seed: int, steps: int) -> float:
    """One episode of a uniformly random policy played by hand (one environment, reset with ``seed``)."""
    env = make_env(env_id, steps)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    total = 0.0
    for _ in range(steps):
        action = rng.uniform(low, high, size=(1, low.size)).astype(np.float32)[0]
        _, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    env.close()
    return total


def test_measured_random_policy_is_seeded_and_matches_a_hand_rollout():
    one = baseline.random_policy_returns(PENDULUM, 1, 7, 20)
    assert one.shape == (1,) and one[0] == pytest.approx(_hand_random_return(PENDULUM, 7, 20), rel=1e-6)
    three = baseline.random_policy_returns(PENDULUM, 3, 7, 20)
    np.testing.assert_array_equal(three, baseline.random_policy_returns(PENDULUM, 3, 7, 20))
    assert not np.array_equal(three, baseline.random_policy_returns(PENDULUM, 3, 8, 20))
    random = float(three.mean())
    scores, base = baseline.normalise_returns(
        [random, -10.0, random - 50], PENDULUM, episodes=3, seed=7, max_steps=20, expert_return=-10.0
    )
    assert base["source"] == "measured" and base["random_return"] == pytest.approx(random)
    assert (base["episodes"], base["seed"], base["max_steps"], base["expert_return"]) == (3, 7, 20, -10.0)
    np.testing.assert_allclose(scores, [0.0, 100.0, -50 / (-10.0 - random) * 100], rtol=1e-9, atol=1e-9)
    nan, no_expert = baseline.normalise_returns([1.0], PENDULUM, episodes=3, seed=7, max_steps=20)
    assert math.isnan(no_expert["expert_return"]) and np.isnan(nan).all()
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        baseline.random_policy_returns(PENDULUM, 0, 7, 20)


@pytest.fixture
def pendulum_dataset(tmp_path, monkeypatch):
    """A Minari dataset of 3 random Pendulum episodes of 10 steps (an environment D4RL never had); its id and its
    episodes' mean return read back from Minari."""
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    dataset_id = f"local/pendulum/t{tmp_path.name[-6:].replace('-', '_')}-v0"
    env = minari.DataCollector(make_env(PENDULUM, 10))
    rng = np.random.default_rng(0)
    for i in range(3):
        env.reset(seed=i)
        for _ in range(10):
            env.step(rng.uniform(-2, 2, 1).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        env.create_dataset(dataset_id=dataset_id, algorithm_name="uniform random", author="tests")
    env.close()
    returns = [float(np.sum(ep.rewards)) for ep in minari.load_dataset(dataset_id).iterate_episodes()]
    return dataset_id, float(np.mean(returns))


def test_task_returns_on_a_dataset_without_constants(pendulum_dataset):
    from sparse_rnn_jax.analysis.meta.newtask import baseline_text, environment_scores

    dataset_id, demo = pendulum_dataset
    config = AdroitTaskConfig(dataset_id=dataset_id, download=False, eval_episodes=2, eval_seed=5)
    scores, base = baseline.normalised_task_returns(config, [demo])
    random = float(baseline.random_policy_returns(PENDULUM, 2, 5, 10).mean())
    assert base["source"] == "measured" and base["env_id"] == PENDULUM and base["max_steps"] == 10
    assert base["random_return"] == pytest.approx(random) and base["expert_return"] == pytest.approx(demo, rel=1e-6)
    assert scores[0] == pytest.approx(100.0) and base["dataset_score"] == pytest.approx(100.0)
    # The analysis side reads the models' returns, environment and step limit from a run's scores.
    models = pd.DataFrame({"eval_return_mean": [random, demo], "eval_env_id": PENDULUM, "eval_max_steps": 10})
    norm, same = environment_scores(models, "ah", config)
    np.testing.assert_allclose(norm, [0.0, 100.0], atol=1e-6)
    assert same["random_return"] == base["random_return"]
    assert "random policy measured over 2 episodes (seed 5, 10 steps)" in baseline_text(same)
    assert environment_scores(models.drop(columns="eval_return_mean"), "ah", config) == (None, None)
    assert environment_scores(models, "recall", None) == (None, None)  # a task not scored in an environment
