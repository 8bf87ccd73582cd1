"""Environment returns normalised against a random policy, D4RL's convention: 100 x (R - random) / (expert - random)
(0: a uniformly random policy, 100: the expert).

``normalise_returns`` is the one function that normalises (used by ``experiments.recommend --validate`` and
``--race`` for every task scored in an environment). The reference returns (``return_baseline``) are, in order:

- ``d4rl``: D4RL's constants (``rollout.D4RL_REF_SCORES``: the Adroit door, hammer, pen and relocate environments);
- ``measured``: for any other environment, the random return is measured in the same environment, over the same
  episodes as the models were scored on (episode k reset with seed + k, the same step limit), by a policy whose
  actions are uniform over the action space, drawn from ``numpy.random.default_rng(seed)``; the expert return is
  the caller's (for a Minari task, the mean return of the dataset's demonstrations, ``normalised_task_returns``).

A measured random return is computed once per (environment, episodes, seed, step limit) in a process.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sparse_rnn_jax.engine.population import even_pieces
from sparse_rnn_jax.tasks.adroit import AdroitTaskConfig
from sparse_rnn_jax.tasks.adroit.rollout import (
    D4RL_REF_SCORES,
    DEFAULT_MAX_ENVS,
    episode_step_limit,
    make_vector_env,
    run_vector_episodes,
)


def random_policy_returns(
    env_id: str, episodes: int, seed: int, max_steps: int | None, *, max_envs: int = DEFAULT_MAX_ENVS
) -> np.ndarray:
    """f64[episodes]: the returns of a uniformly random policy, episode k reset with seed ``seed + k`` (as the
    models' episodes are) and its actions drawn from ``numpy.random.default_rng(seed)``; at most ``max_steps``
    steps per episode (and the env's own TimeLimit)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    step_limit = episode_step_limit(env_id, max_steps)
    rng = np.random.default_rng(seed)
    chunks = [(a, b) for a, b, _ in even_pieces(episodes, max(1, max_envs))]
    vec_env = make_vector_env(env_id, chunks[0][1] - chunks[0][0], step_limit)
    low = np.asarray(vec_env.single_action_space.low, np.float64)
    high = np.asarray(vec_env.single_action_space.high, np.float64)

    def act(carry, obs):
        return carry, rng.uniform(low, high, size=(obs.shape[0], low.size)).astype(np.float32)

    out = []
    try:
        for e0, _ in chunks:
            res = run_vector_episodes(vec_env, seed + np.arange(e0, e0 + vec_env.num_envs), act, None, step_limit)
            out.append(res.returns)
    finally:
        vec_env.close()
    return np.concatenate(out)[:episodes]


@functools.lru_cache(maxsize=16)
def _measured_random_return(env_id: str, episodes: int, seed: int, max_steps: int | None) -> float:
    return float(random_policy_returns(env_id, episodes, seed, max_steps).mean())


def return_baseline(
    env_id: str, *, episodes: int, seed: int, max_steps: int | None, expert_return: float | None = None
) -> dict:
    """The reference returns of ``env_id`` (module docstring): {"env_id", "source" ("d4rl" or "measured"),
    "random_return", "expert_return", and for a measured one "episodes", "seed", "max_steps"}. ``expert_return``
    is used only where the environment has no constants (NaN scores when it is None there)."""
    if env_id in D4RL_REF_SCORES:
        low, high = D4RL_REF_SCORES[env_id]
        return {"env_id": env_id, "source": "d4rl", "random_return": float(low), "expert_return": float(high)}
    random = _measured_random_return(env_id, int(episodes), int(seed), None if max_steps is None else int(max_steps))
    return {
        "env_id": env_id,
        "source": "measured",
        "random_return": random,
        "expert_return": math.nan if expert_return is None else float(expert_return),
        "episodes": int(episodes),
        "seed": int(seed),
        "max_steps": episode_step_limit(env_id, max_steps),
    }


def normalise_returns(
    returns,
    env_id: str,
    *,
    episodes: int,
    seed: int,
    max_steps: int | None,
    expert_return: float | None = None,
) -> tuple[np.ndarray, dict]:
    """(f64 normalised scores of ``returns``, the baseline dict of ``return_baseline``): 100 x (R - random) /
    (expert - random); NaN where the baseline has no expert return or expert == random. ``episodes``, ``seed``
    and ``max_steps``: how the returns were measured (the random policy plays the same episodes)."""
    base = return_baseline(env_id, episodes=episodes, seed=seed, max_steps=max_steps, expert_return=expert_return)
    r = np.asarray(returns, np.float64)
    span = base["expert_return"] - base["random_return"]
    if not math.isfinite(span) or span == 0:
        return np.full(r.shape, np.nan), base
    return 100.0 * (r - base["random_return"]) / span, base


def normalised_task_returns(
    config: AdroitTaskConfig, returns, *, env_id: str | None = None, max_steps: int | None = None
) -> tuple[np.ndarray, dict]:
    """``normalise_returns`` for models of the ``ah`` task with ``config``, scored in ``env_id`` (default: the
    config's ``eval_env_id``, else the dataset's environment) for ``max_steps`` steps (default: ``task.eval_steps``)
    over the config's ``eval_episodes`` from its ``eval_seed``. The expert return where D4RL has none: the mean
    return of the dataset's episodes. The baseline dict also holds ``dataset_return`` (that mean) and
    ``dataset_score`` (its normalised score)."""
    from sparse_rnn_jax.tasks.adroit.task import dataset, eval_steps

    ds = dataset(config.dataset_id, config.download, config.max_len)
    env_id = env_id or config.eval_env_id or ds.env_id
    if not env_id:
        raise ValueError(f"dataset_id {config.dataset_id} names no environment; give eval_env_id")
    if max_steps is None:
        info = {"max_episode_steps": ds.max_episode_steps, "longest_episode": ds.longest_episode}
        max_steps = eval_steps(config, info)
    demo = float(ds.episode_returns().mean())
    episodes = max(1, config.eval_episodes)
    scores, base = normalise_returns(
        returns, env_id, episodes=episodes, seed=config.eval_seed, max_steps=max_steps, expert_return=demo
    )
    dataset_score, _ = normalise_returns(
        [demo], env_id, episodes=episodes, seed=config.eval_seed, max_steps=max_steps, expert_return=demo
    )
    return scores, {**base, "dataset_return": demo, "dataset_score": float(dataset_score[0])}
