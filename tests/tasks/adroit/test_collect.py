"""Offline collection of Minari datasets with an npz policy (library function and CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tests.needs_adroit  # noqa: F401  (skips this module without the Adroit stack)
from sparse_rnn_jax.tasks.adroit.collect import CollectError, check_collection, collect_dataset
from sparse_rnn_jax.tasks.adroit.policies import PolicyError, load_npz_policy
from tests.conftest import REPO  # noqa: E402
from tests.tasks.adroit.test_policies import write_random_policy

HAMMER = "AdroitHandHammer-v1"


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    home = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(home))
    return home


@pytest.fixture(scope="session")
def expert_npz(shared_dir) -> Path:
    path = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_expert_collection_returns_and_dataset(minari_home, expert_npz):
    import minari

    policy = load_npz_policy(expert_npz)
    summary = collect_dataset(HAMMER, policy, 3, "local/hammer/expert-v0", seed=100, progress=False)
    assert summary.mean_return >= 10_000, summary.returns
    assert summary.lengths.tolist() == [200, 200, 200]
    assert np.all(summary.successes == 1.0)
    assert summary.path == minari_home / "local" / "hammer" / "expert-v0"

    ds = minari.load_dataset("local/hammer/expert-v0")
    assert ds.total_episodes == 3 and ds.total_steps == 600
    assert ds.env_spec.id == HAMMER and ds.env_spec.max_episode_steps == 200
    meta = ds.storage.metadata
    assert meta["ref_min_score"] == pytest.approx(-274.856578) and meta["ref_max_score"] == pytest.approx(12794.134825)
    assert any(r.startswith("gymnasium-robotics==") for r in meta["requirements"])
    episode = ds[1]
    assert episode.observations.shape == (201, 46) and episode.actions.shape == (200, 26)
    np.testing.assert_allclose(episode.rewards.sum(), summary.returns[1], rtol=1e-6)
    assert episode.infos["success"].shape == (201,) and bool(episode.infos["success"][-1])


def test_collection_is_deterministic_and_refuses_existing_ids(minari_home, tmp_path):
    import minari

    policy = load_npz_policy(write_random_policy(tmp_path / "pendulum.npz", 3, 1))
    kwargs = dict(stochastic=True, seed=5, progress=False)
    a = collect_dataset("Pendulum-v1", policy, 2, "local/pendulum/a-v0", max_episode_steps=15, **kwargs)
    b = collect_dataset("Pendulum-v1", policy, 2, "local/pendulum/b-v0", max_episode_steps=15, **kwargs)
    np.testing.assert_array_equal(a.returns, b.returns)
    ea, eb = minari.load_dataset("local/pendulum/a-v0")[1], minari.load_dataset("local/pendulum/b-v0")[1]
    np.testing.assert_array_equal(ea.observations, eb.observations)
    np.testing.assert_array_equal(ea.actions, eb.actions)
    assert np.all(np.abs(ea.actions) <= 1.0)  # the format clips to [-1, 1] inside Pendulum's [-2, 2]

    with pytest.raises(CollectError, match="already exists"):
        collect_dataset("Pendulum-v1", policy, 1, "local/pendulum/a-v0", **kwargs)
    c = collect_dataset("Pendulum-v1", policy, 1, "local/pendulum/a-v0", max_episode_steps=4, overwrite=True, **kwargs)
    assert minari.load_dataset("local/pendulum/a-v0").total_steps == 4 and c.lengths.tolist() == [4]


def test_bad_inputs_fail_before_any_episode(minari_home, tmp_path):
    policy = load_npz_policy(write_random_policy(tmp_path / "p.npz", 3, 1))
    with pytest.raises(CollectError, match="unknown environment id"):
        check_collection("NoSuchEnv-v0", policy, 1, "local/x/y-v0")
    with pytest.raises(PolicyError, match="observation size 3"):
        check_collection(HAMMER, policy, 1, "local/x/y-v0")
    with pytest.raises(CollectError, match="malformed Minari dataset id"):
        check_collection("Pendulum-v1", policy, 1, "no-version")
    with pytest.raises(CollectError, match="episodes"):
        check_collection("Pendulum-v1", policy, 0, "local/x/y-v0")
    assert not (minari_home / "local" / "x").exists()


def _cli(args, env_home):
    env = dict(os.environ, MINARI_DATASETS_PATH=str(env_home))
    return subprocess.run(
        [sys.executable, "-m", "experiments.collect_minari", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_collects_and_fails_in_one_line(minari_home, tmp_path):
    npz = write_random_policy(tmp_path / "p.npz", 3, 1)
    ok = _cli(
        [
            "--env_id=Pendulum-v1",
            f"--policy_npz={npz}",
            "--episodes=2",
            "--dataset_id=local/pendulum/cli-v0",
            "--max_episode_steps=10",
            "--noprogress",
        ],
        minari_home,
    )
    assert ok.returncode == 0, ok.stderr
    assert "written to" in ok.stdout and str(minari_home) in ok.stdout
    args = ["--env_id=Pendulum-v1", f"--policy_npz={npz}", "--episodes=2", "--dataset_id=local/pendulum/cli-v0"]
    again = _cli(args, minari_home)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "already exists" in lines[0]
