"""Minari datasets as padded sequences: shapes, masks, alignment with the policy, splits, failures."""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pytest

import tests.needs_adroit  # noqa: F401  (skips this module without the Adroit stack)
from sparse_rnn_jax.tasks.adroit.minari_sequences import (
    MinariDataError,
    SequenceDataset,
    load_minari_sequences,
    split_sequences,
)

HAMMER = "AdroitHandHammer-v1"
HAMMER_ID = "local/hammer/tiny-v0"
MAZE_ID = "local/pointmaze/uneven-v0"
MAZE_LENGTHS = (5, 3, 8)
EPISODES, STEPS, SEED = 6, 30, 10


@pytest.fixture(scope="module")
def minari_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(home))
        yield home


@pytest.fixture(scope="module")
def expert(shared_dir):
    from sparse_rnn_jax.tasks.adroit.policies import load_npz_policy

    path = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load_npz_policy(path)


@pytest.fixture(scope="module")
def hammer_dataset(minari_home, expert):
    """6 deterministic expert episodes of 30 steps, episode i reset with seed 10 + i."""
    from sparse_rnn_jax.tasks.adroit.collect import collect_dataset

    collect_dataset(HAMMER, expert, EPISODES, HAMMER_ID, seed=SEED, max_episode_steps=STEPS, progress=False)
    return load_minari_sequences(HAMMER_ID, download=False)


@pytest.fixture(scope="module")
def maze_dataset(minari_home):
    """PointMaze (Dict observations) episodes of unequal lengths, cut short by resets, random actions."""
    import minari

    from sparse_rnn_jax.tasks.adroit.rollout import make_env

    env = minari.DataCollector(make_env("PointMaze_UMaze-v3"))
    rng = np.random.default_rng(0)
    raw = []
    for i, length in enumerate(MAZE_LENGTHS):
        obs, _ = env.reset(seed=i)
        observations, actions = [obs], []
        for _ in range(length):
            a = rng.uniform(-1, 1, 2).astype(np.float32)
            obs, *_ = env.step(a)
            observations.append(obs)
            actions.append(a)
        raw.append((observations, actions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        env.create_dataset(dataset_id=MAZE_ID, algorithm_name="uniform random", author="tests")
    env.close()
    return load_minari_sequences(MAZE_ID, download=False), raw


def test_hammer_shapes_and_metadata(hammer_dataset):
    ds = hammer_dataset
    assert isinstance(ds, SequenceDataset) and len(ds) == EPISODES
    assert ds.obs.shape == (EPISODES, STEPS, 46) and ds.obs.dtype == np.float32
    assert ds.actions.shape == (EPISODES, STEPS, 26) and ds.actions.dtype == np.float32
    assert ds.step_mask.shape == (EPISODES, STEPS) and ds.step_mask.all()
    assert ds.lengths.dtype == np.int32 and ds.lengths.tolist() == [STEPS] * EPISODES
    assert (ds.dataset_id, ds.env_id, ds.max_episode_steps) == (HAMMER_ID, HAMMER, STEPS)
    assert ds.longest_episode == STEPS
    assert load_minari_sequences(HAMMER_ID, download=False, max_len=7).longest_episode == STEPS  # before truncation
    assert ds.episode_ids.tolist() == list(range(EPISODES))
    assert set(ds.arrays()) == {"x", "targets", "step_mask"}


def test_observations_and_actions_line_up_with_the_policy(hammer_dataset, expert):
    """actions[i, t] is the policy's action on obs[i, t]; obs[i, 0] is the reset observation of seed 10 + i."""
    from sparse_rnn_jax.tasks.adroit.rollout import make_env

    ds = hammer_dataset
    flat_obs = ds.obs.reshape(-1, 46)
    np.testing.assert_allclose(ds.actions.reshape(-1, 26), expert.act(flat_obs), atol=1e-5)
    env = make_env(HAMMER)
    for i in (0, EPISODES - 1):
        obs, _ = env.reset(seed=SEED + i)
        np.testing.assert_allclose(ds.obs[i, 0], obs.astype(np.float32))
        for t in range(3):  # the environment replays the recorded steps
            np.testing.assert_allclose(ds.obs[i, t], obs.astype(np.float32), rtol=1e-5, atol=1e-6)
            obs, reward, *_ = env.step(ds.actions[i, t])
            assert reward == pytest.approx(ds.rewards[i, t], rel=1e-5, abs=1e-5)
    env.close()


def test_truncation_and_episode_limits(minari_home, hammer_dataset):
    short = load_minari_sequences(HAMMER_ID, download=False, max_episodes=4, max_len=10)
    assert short.obs.shape == (4, 10, 46) and short.lengths.tolist() == [10] * 4
    np.testing.assert_array_equal(short.obs, hammer_dataset.obs[:4, :10])
    np.testing.assert_array_equal(short.actions, hammer_dataset.actions[:4, :10])


def test_unequal_lengths_are_padded_and_dict_observations_flattened(maze_dataset):
    ds, raw = maze_dataset
    t_max = max(MAZE_LENGTHS)
    assert ds.obs.shape == (3, t_max, 8) and ds.actions.shape == (3, t_max, 2)
    assert ds.lengths.tolist() == list(MAZE_LENGTHS)
    np.testing.assert_array_equal(ds.step_mask, np.arange(t_max)[None] < np.array(MAZE_LENGTHS)[:, None])
    assert not ds.obs[~ds.step_mask].any() and not ds.actions[~ds.step_mask].any()
    for i, (observations, actions) in enumerate(raw):
        n = MAZE_LENGTHS[i]
        # Dict keys in the space's order: achieved_goal, desired_goal, observation; the last observation dropped.
        flat = [np.concatenate([o["achieved_goal"], o["desired_goal"], o["observation"]]) for o in observations[:n]]
        np.testing.assert_allclose(ds.obs[i, :n], np.asarray(flat, np.float32))
        np.testing.assert_allclose(ds.actions[i, :n], np.asarray(actions))
    assert ds.env_id == "PointMaze_UMaze-v3"


def _synthetic(n: int) -> SequenceDataset:
    return SequenceDataset(
        obs=np.arange(n, dtype=np.float32).reshape(n, 1, 1),
        actions=np.zeros((n, 1, 1), np.float32),
        rewards=np.zeros((n, 1), np.float32),
        step_mask=np.ones((n, 1), bool),
        lengths=np.ones(n, np.int32),
        episode_ids=np.arange(n),
        dataset_id="synthetic-v0",
    )


def test_splits_are_disjoint_deterministic_and_scaled(caplog):
    ds = _synthetic(5000)
    splits = split_sequences(ds, seed=3)
    assert [len(s) for s in splits.values()] == [4500, 250, 250] and list(splits) == ["train", "validation", "test"]
    ids = np.concatenate([s.episode_ids for s in splits.values()])
    assert len(np.unique(ids)) == 5000
    again = split_sequences(ds, seed=3)
    for name in splits:
        np.testing.assert_array_equal(splits[name].episode_ids, again[name].episode_ids)
    assert not np.array_equal(split_sequences(ds, seed=4)["test"].episode_ids, splits["test"].episode_ids)

    with caplog.at_level(logging.WARNING):
        small = split_sequences(_synthetic(100), seed=0)
    assert [len(s) for s in small.values()] == [90, 5, 5] and "scaled" in caplog.text
    tiny = split_sequences(_synthetic(6), seed=0)
    assert sum(len(s) for s in tiny.values()) == 6 and all(len(s) >= 1 for s in tiny.values())
    fractions = split_sequences(_synthetic(1000), (0.8, 0.1, 0.1), seed=0)
    assert [len(s) for s in fractions.values()] == [800, 100, 100]
    named = split_sequences(_synthetic(10), (6, 4), seed=0, names=("a", "b"))
    assert {k: len(v) for k, v in named.items()} == {"a": 6, "b": 4}


def test_missing_dataset_without_download(minari_home):
    with pytest.raises(MinariDataError, match="not in .* download=False"):
        load_minari_sequences("local/none/missing-v0", download=False)
    with pytest.raises(MinariDataError, match="malformed"):
        load_minari_sequences("no version here", download=False)


def test_unknown_id_offline_fails_fast_in_one_line(minari_home, monkeypatch):
    # An endpoint that refuses connections: the same quick failure as a machine without internet.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(MinariDataError) as e:
        load_minari_sequences("D4RL/hammer/no-such-dataset-v0", download=True)
    assert time.perf_counter() - start < 10
    message = str(e.value)
    assert "\n" not in message and "D4RL/hammer/no-such-dataset-v0" in message and "127.0.0.1" in message
