"""Scoring in the real environment: trained populations of any family (all models at once) and npz policies.

A population's recurrent state is carried from one environment step to the next: one recurrent step (the
family's ``step``, on weights the family ``prepare``s once per population) per environment
step, vmapped over the models and jitted, so an episode of T steps costs T model steps
(the paper's reference code re-ran the network over the whole history at every step, T(T+1)/2 steps,
one network at a time). Every model plays the same K episodes: episode k of every model is reset with
seed ``seed + k``. All models and episodes of a chunk step together in one ``gymnasium.vector`` env of
``models_in_chunk x episodes_in_chunk`` sub-environments and one batched model call per step; a chunk
holds whole models (all K episodes) while K <= max_envs.

Per model: the mean and std (ddof 0) of the episode returns, the success rate (the env's
``info["success"]`` at the episode's last step; Adroit reports ``success``, D4RL's Adroit used
``goal_achieved``), and the D4RL-normalised score of the mean return:
100 * (R - ref_min) / (ref_max - ref_min) with the reference returns of ``D4RL_REF_SCORES`` (NaN for an
env not in the table).

An episode ends at termination, at the env's own truncation, or after ``max_steps`` steps, whichever
comes first. Actions are the model's output y_t clipped to the action space; a non-finite output (a
diverged model) acts as 0.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.engine.population import even_pieces
from sparse_rnn_jax.models.block import ACTIVATION_FNS
from sparse_rnn_jax.models.registry import get_family
from sparse_rnn_jax.tasks.adroit import missing_packages, stack_message
from sparse_rnn_jax.tasks.adroit.policies import TanhMlpPolicy, load_npz_policy

try:
    import gymnasium as gym
except ImportError:  # the adroit extra is not installed: one line naming it
    raise ImportError(stack_message(missing_packages())) from None

D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    # (random-policy return, expert return) of D4RL's Adroit tasks: the *_RANDOM_SCORE / *_EXPERT_SCORE constants of
    # d4rl/hand_manipulation_suite/__init__.py (Farama-Foundation/D4RL; the REF_MIN_SCORE / REF_MAX_SCORE of
    # d4rl/infos.py for the Adroit datasets), keyed by the Gymnasium-Robotics env of the same task.
    "AdroitHandDoor-v1": (-56.512833, 2880.5693087298737),
    "AdroitHandHammer-v1": (-274.856578, 12794.134825156867),
    "AdroitHandPen-v1": (96.262799, 3076.8331017826877),
    "AdroitHandRelocate-v1": (-6.425911, 4233.877797728884),
}
"""Reference returns (min, max) of the D4RL-normalised score, keyed by Gymnasium env id."""

SUCCESS_INFO_KEYS: tuple[str, ...] = ("success", "is_success", "goal_achieved")
"""Info keys read, in this order, as an episode's success flag."""

DEFAULT_MAX_ENVS = 256
"""Most sub-environments stepped together; larger populations run in chunks of models and episodes."""

ObsNormaliser = Optional[Callable[[np.ndarray], np.ndarray] | tuple[np.ndarray, np.ndarray]]

_log = logging.getLogger(__name__)


class EnvError(ValueError):
    """An environment id that cannot be made (one-line message)."""


def register_robotics_envs() -> None:
    """Registers gymnasium-robotics' environments (Adroit, Fetch, ...) with Gymnasium, once.

    gymnasium-robotics prints a notice on import (Adroit dense-reward functions changed in 1.2.1 without a
    version bump); it goes to this module's debug log, and the installed version is recorded with every
    collected dataset instead.
    """
    try:
        notice = io.StringIO()
        with contextlib.redirect_stderr(notice):
            import gymnasium_robotics
        if notice.getvalue().strip():
            _log.debug("gymnasium_robotics: %s", notice.getvalue().strip())
        gym.register_envs(gymnasium_robotics)
    except ImportError:
        pass


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered EnvSpec of ``env_id`` (registering gymnasium-robotics first); EnvError if unknown."""
    if env_id not in gym.registry:
        register_robotics_envs()
    try:
        return gym.spec(env_id)
    except gym.error.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EnvError(f"unknown environment id {env_id!r}: {first}") from None


def make_env(env_id: str, max_episode_steps: Optional[int] = None, **kwargs) -> gym.Env:
    """``gym.make(env_id)`` after registering gymnasium-robotics; ``max_episode_steps`` overrides the TimeLimit."""
    check_env_id(env_id)
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    return gym.make(env_id, **kwargs)


def episode_step_limit(env_id: str, max_steps: Optional[int]) -> int:
    """min(max_steps, the env's own TimeLimit); an error if neither bounds an episode."""
    spec = check_env_id(env_id)
    limits = [int(v) for v in (max_steps, spec.max_episode_steps) if v is not None]
    if not limits:
        raise EnvError(f"{env_id} has no TimeLimit; give max_steps")
    if min(limits) < 1:
        raise ValueError(f"max_steps must be >= 1, got {min(limits)}")
    return min(limits)


def d4rl_normalised_score(env_id: str, returns) -> np.ndarray:
    """100 * (R - ref_min) / (ref_max - ref_min) with ``D4RL_REF_SCORES[env_id]``; NaN for other envs."""
    r = np.asarray(returns, dtype=np.float64)
    if env_id not in D4RL_REF_SCORES:
        return np.full(r.shape, np.nan)
    lo, hi = D4RL_REF_SCORES[env_id]
    return 100.0 * (r - lo) / (hi - lo)


def make_vector_env(env_id: str, num_envs: int, step_limit: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` truncated at ``step_limit`` steps, stepped in this process.

    (A process per sub-environment, ``AsyncVectorEnv``, was slower on a 2-core machine: forked workers
    are unsafe under JAX's threads, and forkserver workers each re-import JAX.)
    """
    return gym.vector.SyncVectorEnv([functools.partial(make_env, env_id, step_limit) for _ in range(num_envs)])


class EpisodeResults(NamedTuple):
    """Per-episode outcomes: returns f64[...], success f64[...] (1/0, NaN where the env reports none),
    lengths int32[...]."""

    returns: np.ndarray
    success: np.ndarray
    lengths: np.ndarray


def _success_flags(infos: Mapping[str, Any], num_envs: int) -> Optional[np.ndarray]:
    for key in SUCCESS_INFO_KEYS:
        if key in infos:
            flags = np.asarray(infos[key], dtype=np.float64).reshape(num_envs)
            present = np.asarray(infos.get(f"_{key}", np.ones(num_envs, bool)), dtype=bool).reshape(num_envs)
            return np.where(present, flags, np.nan)
    return None


def run_vector_episodes(
    vec_env: gym.vector.VectorEnv,
    reset_seeds: Sequence[int],
    act: Callable[[Any, np.ndarray], tuple[Any, np.ndarray]],
    carry: Any,
    step_limit: int,
) -> EpisodeResults:
    """Plays one episode in every sub-environment of ``vec_env``.

    Args:
      vec_env: N sub-environments (autoreset NEXT_STEP; a sub-environment that has ended is ignored).
      reset_seeds: N ints, the reset seed of each sub-environment.
      act: (carry, obs f32[N, obs_dim]) -> (carry, actions f[N, act_dim]); called once per step for all N.
      carry: the policy's initial carry (e.g. recurrent state).
      step_limit: most steps per episode.
    Returns:
      EpisodeResults with arrays of shape [N].
    """
    n = vec_env.num_envs
    low = np.asarray(vec_env.single_action_space.low, dtype=np.float32)
    high = np.asarray(vec_env.single_action_space.high, dtype=np.float32)
    obs, _ = vec_env.reset(seed=[int(s) for s in reset_seeds])
    returns = np.zeros(n, np.float64)
    success = np.full(n, np.nan)
    lengths = np.zeros(n, np.int32)
    done = np.zeros(n, bool)
    for _ in range(step_limit):
        carry, actions = act(carry, np.asarray(obs, dtype=np.float32))
        actions = np.clip(np.nan_to_num(np.asarray(actions, dtype=np.float32), nan=0.0), low, high)
        obs, reward, terminated, truncated, infos = vec_env.step(actions)
        live = ~done
        returns[live] += np.asarray(reward, dtype=np.float64)[live]
        lengths[live] += 1
        flags = _success_flags(infos, n)
        if flags is not None:
            success[live] = flags[live]
        done |= np.asarray(terminated, bool) | np.asarray(truncated, bool)
        if done.all():
            break
    return EpisodeResults(returns, success, lengths)


def _normaliser_fn(obs_normaliser: ObsNormaliser) -> Callable[[np.ndarray], np.ndarray]:
    if obs_normaliser is None:
        return lambda o: o
    if callable(obs_normaliser):
        return obs_normaliser
    mean, std = (np.asarray(a, dtype=np.float32) for a in obs_normaliser)
    std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant feature is only centred
    return lambda o: (o - mean) / std


@functools.lru_cache(maxsize=None)
def population_programs(family: str, activation: str):
    """(prepare, step) of a family, vmapped over the models and jitted: ``prepare(params, masks)`` masks and
    arranges every model's weights once; ``step(prepared, state f32[P, K, S], x f32[P, K, X])`` ->
    (state, y f32[P, K, Y]) is one recurrent step of every model on its K observations."""
    fam = get_family(family)

    def step(prepared, state, x, hidden_dim):
        return jax.vmap(lambda w, z, o: fam.step(w, z, o, hidden_dim, activation))(prepared, state, x)

    return jax.jit(jax.vmap(fam.prepare)), jax.jit(step, static_argnums=(3,))


def make_population_actor(
    family: str,
    params: Mapping[str, Any],
    masks: Mapping[str, Any],
    activation: str,
    episodes_per_model: int,
    output_dim: int,
    obs_normaliser: ObsNormaliser = None,
) -> tuple[Callable[[jax.Array, np.ndarray], tuple[jax.Array, np.ndarray]], jax.Array]:
    """The population as a vector-env policy for ``run_vector_episodes``.

    Sub-environment ``p * episodes_per_model + k`` is played by model p. Returns ``(act, state0)``:
    act(state f32[P, K, S], obs f32[P*K, X]) -> (next state, y f32[P*K, Y]) is one recurrent step of every model
    on its K observations (one jitted call of the family's ``step`` on weights prepared once per population,
    ~8x faster per step at H = 900 than masking at every step), and state0 is the zero state.
    """
    if activation not in ACTIVATION_FNS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATION_FNS)}, got {activation!r}")
    fam = get_family(family)
    normalise = _normaliser_fn(obs_normaliser)
    n_models = _population_size(params)
    k = int(episodes_per_model)
    params = jax.tree.map(jnp.asarray, dict(params))
    masks = jax.tree.map(jnp.asarray, dict(masks))
    prepare, vstep = population_programs(family, activation)
    prepared = prepare(params, masks)
    hidden_dim = int(fam.dims(jax.tree.map(lambda a: a[0], params))[1])
    state_dim = fam.state_size(hidden_dim, int(output_dim))

    def act(state: jax.Array, obs: np.ndarray) -> tuple[jax.Array, np.ndarray]:
        x = jnp.asarray(normalise(obs).reshape(n_models, k, -1), jnp.float32)
        state, y = vstep(prepared, state, x, hidden_dim)
        return state, np.asarray(y).reshape(n_models * k, -1)

    return act, jnp.zeros((n_models, k, state_dim), jnp.float32)


def _population_size(params: Mapping[str, Any]) -> int:
    sizes = {int(np.shape(v)[0]) for v in jax.tree_util.tree_leaves(params)}
    if len(sizes) != 1:
        raise ValueError(f"every population leaf needs the same leading model axis, got sizes {sorted(sizes)}")
    return sizes.pop()


def _single_activation(activation: str | Sequence[str]) -> str:
    if isinstance(activation, str):
        return activation
    kinds = set(activation)
    if len(kinds) != 1:
        raise ValueError(f"one rollout runs one activation; split the population by activation, got {sorted(kinds)}")
    return kinds.pop()


def _model_dims(family: str, params: Mapping[str, Any]) -> tuple[int, int]:
    """(input_dim, output_dim) of the models of a stacked population."""
    x, _, y = get_family(family).dims(jax.tree.map(lambda a: a[0], dict(params)))
    return int(x), int(y)


def rollout_population(
    family: str,
    params: Mapping[str, Any],
    masks: Mapping[str, Any],
    activation: str | Sequence[str],
    env_id: str,
    episodes: int = 100,
    seed: int = 0,
    max_steps: int = 200,
    obs_normaliser: ObsNormaliser = None,
    *,
    max_envs: int = DEFAULT_MAX_ENVS,
    progress: bool = False,
) -> EpisodeResults:
    """Plays ``episodes`` episodes with every model of a population; arrays of shape [P, episodes].

    Args:
      family: the models' family (``models.registry.FAMILIES``), e.g. "block" or "lstm".
      params, masks: the population: the per-model dicts of the family's ``init`` (any padded hidden size H,
        the same for all) stacked along a leading model axis P, numpy or jax arrays.
      activation: the hidden activation of every model ("relu" or "tanh").
      env_id: Gymnasium env id whose observation size is the models' input_dim and action size their output_dim.
      episodes: K, episodes per model; episode k is reset with seed ``seed + k`` for every model.
      max_steps: most steps per episode (also bounded by the env's own TimeLimit).
      obs_normaliser: None, a function f32[N, X] -> f32[N, X], or (mean, std) giving (obs - mean) / std
        (std 0 read as 1).
      max_envs: most sub-environments at once; models (and, when K > max_envs, episodes) are split into
        nearly equal chunks.
      progress: show a progress bar over chunks.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    act_name = _single_activation(activation)
    n_models = _population_size(params)
    step_limit = episode_step_limit(env_id, max_steps)
    params = jax.tree_util.tree_map(jnp.asarray, dict(params))
    masks = jax.tree_util.tree_map(jnp.asarray, dict(masks))
    probe = make_env(env_id, step_limit)
    obs_shape, act_shape = probe.observation_space.shape, probe.action_space.shape
    probe.close()
    input_dim, output_dim = _model_dims(family, params)
    if obs_shape != (input_dim,) or act_shape != (output_dim,):
        raise ValueError(
            f"{env_id} has observation shape {obs_shape} and action shape {act_shape}, but the models map "
            f"{input_dim} inputs to {output_dim} outputs"
        )

    # A model's episodes stay together (its weights are read once per step for all of them); as many
    # models as fit in max_envs step together.
    episode_chunks = [(a, b) for a, b, _ in even_pieces(episodes, max(1, max_envs))]
    episodes_per_chunk = episode_chunks[0][1] - episode_chunks[0][0]
    model_chunks = [(a, b) for a, b, _ in even_pieces(n_models, max(1, max_envs // episodes_per_chunk))]
    models_per_chunk = model_chunks[0][1] - model_chunks[0][0]
    num_envs = models_per_chunk * episodes_per_chunk

    returns = np.zeros((n_models, episodes), np.float64)
    success = np.zeros((n_models, episodes), np.float64)
    lengths = np.zeros((n_models, episodes), np.int32)
    vec_env = make_vector_env(env_id, num_envs, step_limit)
    work = [(m, e) for m in model_chunks for e in episode_chunks]
    if progress:
        from tqdm.auto import tqdm

        work = tqdm(work, desc=f"scoring {n_models} models x {episodes} episodes", unit="chunk")
    try:
        for (m0, m1), (e0, e1) in work:
            # Chunks have the same shape (one compilation, one vector env); the last ones are padded by
            # repeating the last model and by extra episodes, and their results are dropped.
            model_idx = np.minimum(np.arange(m0, m0 + models_per_chunk), n_models - 1)
            chunk_params = jax.tree_util.tree_map(lambda a: a[model_idx], params)
            chunk_masks = jax.tree_util.tree_map(lambda a: a[model_idx], masks)
            seeds = np.tile(seed + np.arange(e0, e0 + episodes_per_chunk), models_per_chunk)
            act, state0 = make_population_actor(
                family, chunk_params, chunk_masks, act_name, episodes_per_chunk, output_dim, obs_normaliser
            )
            res = run_vector_episodes(vec_env, seeds, act, state0, step_limit)
            keep_m, keep_e = m1 - m0, e1 - e0
            for name, out in (("returns", returns), ("success", success), ("lengths", lengths)):
                block = getattr(res, name).reshape(models_per_chunk, episodes_per_chunk)
                out[m0:m1, e0:e1] = block[:keep_m, :keep_e]
    finally:
        vec_env.close()
    return EpisodeResults(returns, success, lengths)


def summarise(results: EpisodeResults, env_id: str) -> dict[str, np.ndarray]:
    """Per-model scores from EpisodeResults of shape [P, K]: each value f64[P]."""
    mean = results.returns.mean(axis=-1)
    return {
        "eval_return_mean": mean,
        "eval_return_std": results.returns.std(axis=-1),
        "eval_success_rate": results.success.mean(axis=-1),
        "d4rl_score": d4rl_normalised_score(env_id, mean),
    }


def score_population(family: str, params, masks, activation, env_id: str, *args, **kwargs) -> dict[str, np.ndarray]:
    """Scores every model of a population in ``env_id``: {eval_return_mean, eval_return_std,
    eval_success_rate, d4rl_score}, each f64[P]. Arguments as in ``rollout_population``."""
    return summarise(rollout_population(family, params, masks, activation, env_id, *args, **kwargs), env_id)


def rollout_policy(
    policy: TanhMlpPolicy,
    env_id: str,
    episodes: int = 20,
    seed: int = 0,
    max_steps: Optional[int] = 200,
    *,
    stochastic: bool = False,
    max_envs: int = 32,
) -> EpisodeResults:
    """Plays ``episodes`` episodes with an npz policy (episode k reset with seed ``seed + k``); arrays [episodes].

    Stochastic action noise is drawn from ``numpy.random.default_rng(seed)``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    step_limit = episode_step_limit(env_id, max_steps)
    probe = make_env(env_id, step_limit)
    policy.check_spaces(probe.observation_space, probe.action_space, env_id)
    probe.close()
    rng = np.random.default_rng(seed)

    def act(carry, obs):
        return carry, policy.act(obs, stochastic=stochastic, rng=rng)

    out = []
    chunks = [(a, b) for a, b, _ in even_pieces(episodes, max_envs)]
    vec_env = make_vector_env(env_id, chunks[0][1] - chunks[0][0], step_limit)
    try:
        for e0, _ in chunks:
            out.append(run_vector_episodes(vec_env, seed + np.arange(e0, e0 + vec_env.num_envs), act, None, step_limit))
    finally:
        vec_env.close()
    return EpisodeResults(*(np.concatenate([getattr(r, f) for r in out])[:episodes] for f in EpisodeResults._fields))


def score_policy_npz(
    policy: TanhMlpPolicy | str | os.PathLike,
    env_id: str,
    episodes: int = 20,
    seed: int = 0,
    max_steps: Optional[int] = 200,
    **kwargs,
) -> dict[str, float]:
    """Scores an npz policy (or the path of one): the keys of ``score_population``, as floats.
    Keyword arguments as in ``rollout_policy`` (``stochastic``, ``max_envs``)."""
    if not isinstance(policy, TanhMlpPolicy):
        policy = load_npz_policy(policy)
    res = rollout_policy(policy, env_id, episodes, seed, max_steps, **kwargs)
    batched = EpisodeResults(*(a[None] for a in res))
    return {k: float(v[0]) for k, v in summarise(batched, env_id).items()}
