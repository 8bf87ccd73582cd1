"""Minari datasets as padded sequence arrays for behaviour cloning (Adroit Hammer: x_t = observation_t,
target = action_t, MSE at every valid step).

``load_minari_sequences(dataset_id)`` reads any Minari dataset from the local store
(``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``), downloading it first when it is absent and
``download=True``. Before a download the remote's host is probed with a short TCP connect, so an offline
machine fails in seconds. Every failure raises :class:`MinariDataError` with a one-line reason.

Minari stores T+1 observations for an episode of T steps (the last one follows the last action); the
final observation is dropped, so obs[i, t] is the observation the action actions[i, t] was taken on.
Episodes of unequal length are right-padded with zeros and ``step_mask`` False. Dict/Tuple observation
spaces of Boxes are flattened (Dict keys in the space's order); other observation spaces, and any
action space but a Box, are refused.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import socket
from pathlib import Path
from typing import Mapping, Optional, Sequence
from urllib.parse import urlparse

import numpy as np

from sparse_rnn_jax.tasks.adroit import missing_packages, stack_message

REMOTE_CONNECT_TIMEOUT_S = 3.0
DEFAULT_SPLIT_SIZES: tuple[int, int, int] = (4500, 250, 250)
DEFAULT_SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")

# Minari's dataset id grammar: (namespace/)name-vN; the version is required to load a dataset.
_DATASET_ID = re.compile(r"^(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<dataset>[-_\w]+?)-v(?P<version>\d+)$")

_log = logging.getLogger(__name__)


class MinariDataError(ValueError):
    """A Minari dataset that cannot be found, downloaded or converted (one-line message)."""


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    """Episodes of one Minari dataset as padded arrays (N episodes, T = longest kept length).

    Attributes:
      obs: f32[N, T, obs_dim]   observation_t (flattened), 0 on padding.
      actions: f32[N, T, act_dim]   action_t (the target), 0 on padding.
      rewards: f32[N, T]   reward_t, 0 on padding.
      step_mask: bool[N, T]   True on the first lengths[i] steps of episode i.
      lengths: int32[N]   kept steps per episode (after any max_len truncation).
      episode_ids: int64[N]   Minari episode ids.
      dataset_id: the Minari dataset id.  env_id: the id of the env the data was collected in (None if unknown).
      max_episode_steps: that env's TimeLimit (None if unknown).
      longest_episode: the longest episode's length before any ``max_len`` truncation (None if unknown).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    step_mask: np.ndarray
    lengths: np.ndarray
    episode_ids: np.ndarray
    dataset_id: str
    env_id: Optional[str] = None
    max_episode_steps: Optional[int] = None
    longest_episode: Optional[int] = None

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def num_steps(self) -> int:
        """T, the padded sequence length."""
        return int(self.obs.shape[1])

    @property
    def obs_dim(self) -> int:
        """Observation size X."""
        return int(self.obs.shape[2])

    @property
    def act_dim(self) -> int:
        """Action size Y."""
        return int(self.actions.shape[2])

    def arrays(self) -> dict[str, np.ndarray]:
        """{"x": observations, "targets": actions, "step_mask"}: the data of ``engine.task.regression_task``."""
        return {"x": self.obs, "targets": self.actions, "step_mask": self.step_mask}

    def subset(self, idx) -> "SequenceDataset":
        """The episodes ``idx`` (int array or slice), same T."""
        return dataclasses.replace(
            self,
            obs=self.obs[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            step_mask=self.step_mask[idx],
            lengths=self.lengths[idx],
            episode_ids=self.episode_ids[idx],
        )

    def episode_returns(self) -> np.ndarray:
        """f64[N], the sum of the kept rewards of each episode."""
        return self.rewards.astype(np.float64).sum(axis=1)


def datasets_root() -> Path:
    """Minari's local store: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def check_dataset_id(dataset_id: str) -> None:
    """Raises MinariDataError unless ``dataset_id`` follows Minari's ``(namespace/)name-vN`` grammar."""
    if not isinstance(dataset_id, str) or not _DATASET_ID.fullmatch(dataset_id):
        raise MinariDataError(
            f"malformed Minari dataset id {dataset_id!r}: ids look like (namespace/)name-vN, e.g. D4RL/hammer/expert-v2"
        )


def local_dataset_path(dataset_id: str) -> Path:
    """The folder of ``dataset_id`` in the local store (it holds ``data/`` when the dataset is there)."""
    return datasets_root() / dataset_id


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _remote_host() -> tuple[str, int]:
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    kind = remote.split("://", 1)[0]
    if kind == "hf":
        url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if kind == "gcp":
        return "storage.googleapis.com", 443
    raise MinariDataError(f"unknown MINARI_REMOTE {remote!r}")


def _download(dataset_id: str) -> None:
    host, port = _remote_host()
    try:
        socket.create_connection((host, port), timeout=REMOTE_CONNECT_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise MinariDataError(
            f"Minari dataset {dataset_id!r} is not in {datasets_root()} and its remote {host}:{port} cannot be "
            f"reached within {REMOTE_CONNECT_TIMEOUT_S:g} s ({reason})"
        ) from None
    import minari

    try:
        minari.download_dataset(dataset_id)
    except Exception as e:  # noqa: BLE001 - any download failure becomes one line
        raise MinariDataError(f"cannot download Minari dataset {dataset_id!r}: {_first_line(e)}") from None


def _open(dataset_id: str, download: bool):
    check_dataset_id(dataset_id)
    data_path = local_dataset_path(dataset_id) / "data"
    if not data_path.is_dir():
        if not download:
            raise MinariDataError(f"Minari dataset {dataset_id!r} is not in {datasets_root()} (and download=False)")
        _download(dataset_id)
        if not data_path.is_dir():
            raise MinariDataError(f"Minari dataset {dataset_id!r} was downloaded but {data_path} is missing")
    import minari

    try:
        return minari.MinariDataset(str(data_path))
    except Exception as e:  # noqa: BLE001
        raise MinariDataError(f"cannot open Minari dataset {dataset_id!r} at {data_path}: {_first_line(e)}") from None


def _flatten_observations(space, obs, dataset_id: str) -> np.ndarray:
    """Episode observations (array, or dict/tuple of arrays, leading axis T+1) -> f32[T+1, obs_dim]."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        arr = np.asarray(obs)
        return arr.reshape(arr.shape[0], -1).astype(np.float32)
    if isinstance(space, spaces.Dict):
        return np.concatenate(
            [_flatten_observations(sub, obs[key], dataset_id) for key, sub in space.spaces.items()], axis=1
        )
    if isinstance(space, spaces.Tuple):
        return np.concatenate([_flatten_observations(sub, o, dataset_id) for sub, o in zip(space.spaces, obs)], axis=1)
    raise MinariDataError(
        f"Minari dataset {dataset_id!r}: cannot flatten observation space {space} (only Box, or Dict/Tuple of Boxes)"
    )


def load_minari_sequences(
    dataset_id: str,
    *,
    download: bool = True,
    max_episodes: Optional[int] = None,
    max_len: Optional[int] = None,
) -> SequenceDataset:
    """Loads a Minari dataset as padded sequences.

    Args:
      dataset_id: any Minari id, e.g. "D4RL/hammer/expert-v2" or "local/hammer/expert-v0".
      download: fetch the dataset when it is not in the local store.
      max_episodes: keep the first this many episodes (all when None).
      max_len: keep at most this many steps of each episode; T = min(max_len, longest episode).
    Returns:
      SequenceDataset (see its attributes for shapes).
    Raises:
      MinariDataError: one line naming the id and the reason.
    """
    if max_episodes is not None and max_episodes < 1:
        raise ValueError(f"max_episodes must be >= 1, got {max_episodes}")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    missing = missing_packages()
    if missing:
        raise MinariDataError(stack_message(missing))
    from gymnasium import spaces

    ds = _open(dataset_id, download)
    if not isinstance(ds.action_space, spaces.Box):
        raise MinariDataError(f"Minari dataset {dataset_id!r}: action space {ds.action_space} is not a Box")
    n = ds.total_episodes if max_episodes is None else min(max_episodes, ds.total_episodes)
    if n == 0:
        raise MinariDataError(f"Minari dataset {dataset_id!r} holds no episodes")

    episodes_obs, episodes_act, episodes_rew, ids = [], [], [], []
    longest = 0
    for ep in ds.iterate_episodes(episode_indices=list(range(n))):
        longest = max(longest, len(ep))
        steps = len(ep) if max_len is None else min(len(ep), max_len)
        episodes_obs.append(_flatten_observations(ds.observation_space, ep.observations, dataset_id)[:steps])
        episodes_act.append(np.asarray(ep.actions, dtype=np.float32).reshape(len(ep), -1)[:steps])
        episodes_rew.append(np.asarray(ep.rewards, dtype=np.float32)[:steps])
        ids.append(ep.id)

    lengths = np.array([len(a) for a in episodes_act], dtype=np.int32)
    t_max = int(lengths.max())
    obs_dim, act_dim = episodes_obs[0].shape[1], episodes_act[0].shape[1]
    obs = np.zeros((n, t_max, obs_dim), np.float32)
    actions = np.zeros((n, t_max, act_dim), np.float32)
    rewards = np.zeros((n, t_max), np.float32)
    for i, (o, a, r) in enumerate(zip(episodes_obs, episodes_act, episodes_rew)):
        obs[i, : len(a)] = o
        actions[i, : len(a)] = a
        rewards[i, : len(a)] = r
    step_mask = np.arange(t_max)[None, :] < lengths[:, None]

    env_spec = ds.env_spec
    return SequenceDataset(
        obs=obs,
        actions=actions,
        rewards=rewards,
        step_mask=step_mask,
        lengths=lengths,
        episode_ids=np.asarray(ids, dtype=np.int64),
        dataset_id=dataset_id,
        env_id=None if env_spec is None else env_spec.id,
        max_episode_steps=None if env_spec is None else env_spec.max_episode_steps,
        longest_episode=longest,
    )


def _split_counts(sizes: Sequence[float], n: int) -> list[int]:
    """Episode counts per split: fractions (all < 1 or summing to <= 1) of n, or counts scaled down to n."""
    if any(s < 0 for s in sizes) or not any(s > 0 for s in sizes):
        raise ValueError(f"split sizes must be >= 0 and not all 0, got {tuple(sizes)}")
    fractions = all(isinstance(s, float) for s in sizes) and sum(sizes) <= 1.0 + 1e-9
    if not fractions:
        if any(float(s) != int(s) for s in sizes):
            raise ValueError(f"split sizes must be all counts or all fractions summing to <= 1, got {tuple(sizes)}")
        if sum(sizes) <= n:
            return [int(s) for s in sizes]
    total = 1.0 if fractions else float(sum(sizes))
    want = [s * n / total for s in sizes]
    counts = [math.floor(w + 1e-9) for w in want]
    if not fractions:  # scaled counts use all n episodes: largest remainders first
        for i in sorted(range(len(want)), key=lambda i: counts[i] - want[i])[: n - sum(counts)]:
            counts[i] += 1
    # Every requested split gets at least one episode while others can spare one.
    for i, s in enumerate(sizes):
        if s > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] = 1
    return counts


def split_sequences(
    ds: SequenceDataset,
    sizes: Sequence[float] = DEFAULT_SPLIT_SIZES,
    seed: int = 0,
    names: Optional[Sequence[str]] = None,
) -> dict[str, SequenceDataset]:
    """Deterministic, disjoint random splits of the episodes.

    Args:
      ds: the episodes.
      sizes: episode counts (default 4,500 / 250 / 250, the reference's Adroit Hammer splits) or fractions
        (floats summing to <= 1). Counts that add up to more than ``len(ds)`` are scaled proportionally to
        ``len(ds)`` (logged as a warning).
      seed: the permutation's seed.
      names: split names; default train / validation / test for three sizes.
    Returns:
      {name: SequenceDataset}, in the order of ``sizes``.
    """
    if names is None:
        if len(sizes) != len(DEFAULT_SPLIT_NAMES):
            raise ValueError(f"give names for {len(sizes)} splits")
        names = DEFAULT_SPLIT_NAMES
    if len(names) != len(sizes) or len(set(names)) != len(names):
        raise ValueError(f"need one distinct name per split, got names {tuple(names)} for sizes {tuple(sizes)}")
    n = len(ds)
    counts = _split_counts(sizes, n)
    if list(counts) != [int(s) for s in sizes] and not all(isinstance(s, float) for s in sizes):
        _log.warning(
            "dataset %s has %d episodes, fewer than the %d requested; splits scaled to %s",
            ds.dataset_id,
            n,
            int(sum(sizes)),
            dict(zip(names, counts)),
        )
    order = np.random.default_rng(seed).permutation(n)
    out: dict[str, SequenceDataset] = {}
    start = 0
    for name, count in zip(names, counts):
        out[name] = ds.subset(np.sort(order[start : start + count]))
        start += count
    return out


def describe(ds: SequenceDataset) -> Mapping[str, object]:
    """A small summary for logs: episodes, T, dims, steps, mean return."""
    return {
        "dataset_id": ds.dataset_id,
        "env_id": ds.env_id,
        "episodes": len(ds),
        "max_len": ds.num_steps,
        "obs_dim": ds.obs_dim,
        "act_dim": ds.act_dim,
        "steps": int(ds.lengths.sum()),
        "mean_return": float(ds.episode_returns().mean()) if len(ds) else float("nan"),
    }
