"""Collects a Minari dataset by running an npz tanh-MLP policy in a Gymnasium environment.

The environment is wrapped in ``minari.DataCollector`` with the step infos' numeric entries recorded
(Adroit's per-step ``success``; the reset entry, whose info is empty, stores zeros), and the dataset is
written with ``DataCollector.create_dataset`` into Minari's local store (``$MINARI_DATASETS_PATH``,
default ``~/.minari/datasets``), with the env spec, the package pins of the env and, for envs in
``sparse_rnn_jax.rollout.D4RL_REF_SCORES``, the reference scores of ``minari.get_normalized_score``.
Episode i is reset with seed ``seed + i`` and, with stochastic actions, draws its noise from
``numpy.random.default_rng([seed, i])``, so a collection is reproducible episode by episode.

Every input is checked before the first episode: the dataset id (Minari's ``(namespace/)name-vN``
grammar, and not already present unless ``overwrite``), the env id, the policy's shapes against the
env's spaces, and that episodes are bounded. Problems raise :class:`CollectError` or
``sparse_rnn_jax.policies.PolicyError`` (both ValueError) with a one-line message.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from sparse_rnn_jax.tasks.adroit.minari_sequences import MinariDataError, check_dataset_id, local_dataset_path
from sparse_rnn_jax.tasks.adroit.policies import TanhMlpPolicy
from sparse_rnn_jax.tasks.adroit.rollout import D4RL_REF_SCORES, SUCCESS_INFO_KEYS, EnvError, check_env_id, make_env

DEFAULT_AUTHOR = "sparse_rnn_jax"

# Minari nags when optional provenance fields are None; what we know is set, the rest stays empty.
_MINARI_NAGS = (r"`code_permalink` is set to None", r"`author_email` is set to None")


class CollectError(ValueError):
    """Bad collection input (one-line message)."""


@dataclasses.dataclass(frozen=True)
class CollectionSummary:
    """What a collection wrote.

    Attributes:
      dataset_id, path: the Minari id and its folder in the local store.
      returns: f64[E] episode returns.  successes: f64[E] the env's success flag at each episode's end
        (NaN where the env reports none).  lengths: int32[E] steps per episode.
      seconds: wall time of the episodes (excluding writing the dataset).
    """

    dataset_id: str
    path: Path
    returns: np.ndarray
    successes: np.ndarray
    lengths: np.ndarray
    seconds: float

    @property
    def episodes(self) -> int:
        """Episodes collected."""
        return int(self.returns.shape[0])

    @property
    def mean_return(self) -> float:
        """Mean episode return."""
        return float(self.returns.mean())

    @property
    def episodes_per_second(self) -> float:
        """Collection throughput (episodes per wall-clock second)."""
        return self.episodes / self.seconds if self.seconds > 0 else float("inf")


def env_requirements(env_spec) -> list[str]:
    """Pins of the distributions that provide ``env_spec``'s entry point (and MuJoCo when installed)."""
    entry = env_spec.entry_point
    entry = entry if isinstance(entry, str) else getattr(entry, "__module__", "")
    top = entry.split(":", 1)[0].split(".", 1)[0]
    dists = set()
    for guess in (top.replace("_", "-"), top):
        try:
            importlib.metadata.version(guess)
            dists.add(guess)
            break
        except importlib.metadata.PackageNotFoundError:
            pass
    else:
        dists.update(importlib.metadata.packages_distributions().get(top, []))
    if top.startswith("gymnasium_robotics") or "mujoco" in entry:
        dists.add("mujoco")
    pins = []
    for name in sorted(dists):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return pins


def _info_template(env_id: str, step_limit: int, policy: TanhMlpPolicy, seed: int) -> dict[str, np.ndarray]:
    """The step infos' flat numeric entries (bool/int/float scalars or arrays), each as a zero of its kind.

    Reset and step infos must hold the same keys for Minari to store them (Adroit's reset info is empty,
    its step info holds ``success``); the zeros fill the reset entry. Found with one probe step.
    """
    env = make_env(env_id, step_limit)
    try:
        obs, _ = env.reset(seed=seed)
        _, _, _, _, info = env.step(np.clip(policy.act(obs), env.action_space.low, env.action_space.high))
    finally:
        env.close()
    template = {}
    for key, value in info.items():
        arr = np.asarray(value) if not isinstance(value, dict) else None
        if arr is not None and arr.dtype.kind in "biuf":
            template[key] = np.zeros_like(arr)
    return template


def _step_data_callback(template: dict[str, np.ndarray]):
    """A minari StepDataCallback class whose infos always hold exactly the ``template`` keys."""
    import minari

    class ConsistentInfos(minari.StepDataCallback):
        def __call__(self, env, **kwargs):
            data = super().__call__(env, **kwargs)
            info = data["info"] or {}
            data["info"] = {k: np.asarray(info.get(k, zero), dtype=zero.dtype) for k, zero in template.items()}
            return data

    return ConsistentInfos


def check_collection(
    env_id: str,
    policy: TanhMlpPolicy,
    episodes: int,
    dataset_id: str,
    *,
    max_episode_steps: Optional[int] = None,
    overwrite: bool = False,
) -> int:
    """Checks every input of ``collect_dataset`` without stepping the env; returns the episode step limit."""
    if int(episodes) != episodes or episodes < 1:
        raise CollectError(f"episodes must be a positive integer, got {episodes}")
    try:
        check_dataset_id(dataset_id)
    except MinariDataError as e:
        raise CollectError(str(e)) from None
    path = local_dataset_path(dataset_id)
    if path.exists() and not overwrite:
        raise CollectError(f"Minari dataset {dataset_id!r} already exists at {path}; replacing it needs overwrite=True")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise CollectError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    try:
        spec = check_env_id(env_id)
        step_limit = max_episode_steps or spec.max_episode_steps
        if step_limit is None:
            raise CollectError(f"{env_id} has no TimeLimit; give max_episode_steps")
        env = make_env(env_id, step_limit)
    except EnvError as e:
        raise CollectError(str(e)) from None
    try:
        policy.check_spaces(env.observation_space, env.action_space, env_id)
    finally:
        env.close()
    return step_limit


def collect_dataset(
    env_id: str,
    policy: TanhMlpPolicy,
    episodes: int,
    dataset_id: str,
    *,
    stochastic: bool = False,
    seed: int = 0,
    max_episode_steps: Optional[int] = None,
    overwrite: bool = False,
    progress: bool = True,
    author: str = DEFAULT_AUTHOR,
    description: Optional[str] = None,
) -> CollectionSummary:
    """Runs ``policy`` for ``episodes`` episodes in ``env_id`` and writes them as Minari dataset ``dataset_id``.

    Args:
      env_id: a Gymnasium env id (gymnasium-robotics envs are registered on demand).
      policy: the npz tanh-MLP policy; its sizes must match the env's flat Box spaces.
      episodes: how many episodes.
      dataset_id: Minari id, e.g. "local/hammer/expert-v0".
      stochastic: add the policy's Gaussian noise (as when the D4RL expert data was collected).
      seed: episode i is reset with seed + i.
      max_episode_steps: override the env's TimeLimit (recorded in the dataset's env spec).
      overwrite: replace an existing dataset of the same id (only after the new episodes are collected).
    Returns:
      CollectionSummary.
    """
    step_limit = check_collection(
        env_id, policy, episodes, dataset_id, max_episode_steps=max_episode_steps, overwrite=overwrite
    )
    import minari

    template = _info_template(env_id, step_limit, policy, seed)
    env = minari.DataCollector(
        make_env(env_id, step_limit), step_data_callback=_step_data_callback(template), record_infos=True
    )
    low, high = env.action_space.low, env.action_space.high
    returns = np.zeros(episodes, np.float64)
    successes = np.full(episodes, np.nan)
    lengths = np.zeros(episodes, np.int32)
    bar = range(episodes)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=f"collecting {dataset_id}", unit="episode")
    start = time.perf_counter()
    try:
        for i in bar:
            rng = np.random.default_rng([seed, i])
            obs, _ = env.reset(seed=seed + i)
            for _ in range(step_limit):
                action = np.clip(policy.act(obs, stochastic=stochastic, rng=rng), low, high)
                obs, reward, terminated, truncated, info = env.step(action.astype(env.action_space.dtype))
                returns[i] += float(reward)
                lengths[i] += 1
                key = next((k for k in SUCCESS_INFO_KEYS if k in info), None)
                if key is not None:
                    successes[i] = float(info[key])
                if terminated or truncated:
                    break
            if progress:
                bar.set_postfix(mean_return=f"{returns[: i + 1].mean():.1f}")
        seconds = time.perf_counter() - start

        path = local_dataset_path(dataset_id)
        if path.exists():  # overwrite was checked above
            shutil.rmtree(path)
        ref = D4RL_REF_SCORES.get(env_id)
        mode = "stochastic" if stochastic else "deterministic"
        with warnings.catch_warnings():
            for pattern in _MINARI_NAGS:
                warnings.filterwarnings("ignore", message=pattern)
            env.create_dataset(
                dataset_id=dataset_id,
                eval_env=env.env.spec,
                algorithm_name=f"tanh-MLP policy {os.path.basename(policy.source)} ({mode} actions)",
                author=author,
                ref_min_score=None if ref is None else ref[0],
                ref_max_score=None if ref is None else ref[1],
                description=description
                or (
                    f"{episodes} episodes of {env_id} ({step_limit} steps at most) with the {mode} tanh-MLP policy "
                    f"{os.path.basename(policy.source)}; episode i reset with seed {seed} + i."
                ),
                requirements=env_requirements(env.env.spec),
            )
    finally:
        env.close()
    return CollectionSummary(dataset_id, path, returns, successes, lengths, seconds)
