"""The npz tanh-MLP policy: loading without pickle, the documented forward pass, shape checks."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_rnn_jax.tasks.adroit.policies import PolicyError, TanhMlpPolicy, load_npz_policy
from tests.conftest import skip_without_adroit

HAMMER_OBS, HAMMER_ACT = 46, 26


def random_policy_arrays(obs_dim: int, act_dim: int, hidden=(8, 8), seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of a random policy in the npz format (float32)."""
    rng = np.random.default_rng(seed)
    sizes = (obs_dim,) + tuple(hidden) + (act_dim,)
    arrays = {}
    for i in range(len(sizes) - 1):
        arrays[f"w{i}"] = rng.normal(0, 0.5, (sizes[i + 1], sizes[i])).astype(np.float32)
        arrays[f"b{i}"] = rng.normal(0, 0.1, sizes[i + 1]).astype(np.float32)
    arrays["in_shift"] = rng.normal(0, 1, obs_dim).astype(np.float32)
    arrays["in_scale"] = rng.uniform(0.5, 2, obs_dim).astype(np.float32)
    arrays["out_shift"] = rng.normal(0, 0.1, act_dim).astype(np.float32)
    arrays["out_scale"] = rng.uniform(0.5, 1.5, act_dim).astype(np.float32)
    arrays["log_std"] = np.full(act_dim, -1.0, np.float32)
    return arrays


def write_random_policy(path, obs_dim: int, act_dim: int, **kwargs):
    np.savez(path, **random_policy_arrays(obs_dim, act_dim, **kwargs))
    return path


def readme_forward(a: dict, o: np.ndarray) -> np.ndarray:
    """The forward pass exactly as data/dapg/README.md writes it (one observation, three layers)."""
    u = (o - a["in_shift"]) / (a["in_scale"] + 1e-8)
    u = np.tanh(a["w0"] @ u + a["b0"])
    u = np.tanh(a["w1"] @ u + a["b1"])
    return (a["w2"] @ u + a["b2"]) * a["out_scale"] + a["out_shift"]


@pytest.fixture
def small_policy(tmp_path):
    arrays = random_policy_arrays(5, 3)
    np.savez(tmp_path / "p.npz", **arrays)
    return load_npz_policy(tmp_path / "p.npz"), arrays


def test_forward_pass_matches_the_format(small_policy):
    policy, arrays = small_policy
    obs = np.random.default_rng(1).normal(0, 2, (7, 5))
    want = np.stack([readme_forward(arrays, o) for o in obs])
    np.testing.assert_allclose(policy.mean_action(obs), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(policy.act(obs), np.clip(want, -1, 1), rtol=1e-5, atol=1e-5)
    assert policy.obs_dim == 5 and policy.act_dim == 3 and policy.hidden_sizes == (8, 8)


def test_batched_equals_one_by_one(small_policy):
    policy, _ = small_policy
    obs = np.random.default_rng(2).normal(size=(4, 5))
    batched = policy.act(obs)
    assert batched.shape == (4, 3) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, np.stack([policy.act(o) for o in obs]), atol=1e-6)


def test_stochastic_actions_reproducible_and_clipped(small_policy):
    policy, _ = small_policy
    obs = np.random.default_rng(3).normal(size=(64, 5))
    a1 = policy.act(obs, stochastic=True, rng=np.random.default_rng(7))
    a2 = policy.act(obs, stochastic=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a1, a2)
    assert np.all(np.abs(a1) <= 1.0)
    assert not np.allclose(a1, policy.act(obs))
    with pytest.raises(ValueError, match="rng"):
        policy.act(obs, stochastic=True)


def test_loader_errors_are_one_line(tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        load_npz_policy(tmp_path / "missing.npz")
    arrays = random_policy_arrays(5, 3)
    np.savez(tmp_path / "no_std.npz", **{k: v for k, v in arrays.items() if k != "log_std"})
    with pytest.raises(PolicyError, match="log_std"):
        load_npz_policy(tmp_path / "no_std.npz")
    bad = dict(arrays, w1=np.zeros((8, 9), np.float32))
    np.savez(tmp_path / "bad_shape.npz", **bad)
    with pytest.raises(PolicyError, match="w1"):
        load_npz_policy(tmp_path / "bad_shape.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PolicyError, match="pickle") as e:
        load_npz_policy(tmp_path / "objects.npy")
    assert "\n" not in str(e.value)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(PolicyError, match="single array"):
        load_npz_policy(tmp_path / "plain.npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(PolicyError, match="cannot read"):
        load_npz_policy(tmp_path / "junk.npz")


def test_space_check(small_policy):
    spaces = pytest.importorskip("gymnasium.spaces", reason="needs gymnasium (pip install -e '.[adroit]')")

    policy, _ = small_policy
    box = lambda n: spaces.Box(-1, 1, (n,), np.float32)  # noqa: E731
    policy.check_spaces(box(5), box(3))
    with pytest.raises(PolicyError, match="observation size 5"):
        policy.check_spaces(box(4), box(3), "Env-v0")
    with pytest.raises(PolicyError, match="action"):
        policy.check_spaces(box(5), spaces.Discrete(3), "Env-v0")


def test_nonfinite_weights_refused():
    arrays = {k: v for k, v in random_policy_arrays(2, 1, hidden=(3,)).items()}
    arrays["w0"][0, 0] = np.nan
    with pytest.raises(PolicyError, match="non-finite"):
        TanhMlpPolicy(
            weights=(arrays["w0"], arrays["w1"]),
            biases=(arrays["b0"], arrays["b1"]),
            **{k: arrays[k] for k in ("in_shift", "in_scale", "out_shift", "out_scale", "log_std")},
        )


def test_shared_expert_policy_fits_hammer(shared_dir):
    path = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    policy = load_npz_policy(path)
    assert (policy.obs_dim, policy.act_dim, policy.hidden_sizes) == (HAMMER_OBS, HAMMER_ACT, (32, 32))
    skip_without_adroit()
    from sparse_rnn_jax.tasks.adroit.rollout import make_env

    env = make_env("AdroitHandHammer-v1")
    policy.check_spaces(env.observation_space, env.action_space, "AdroitHandHammer-v1")
    obs, _ = env.reset(seed=0)
    env.close()
    arrays = dict(np.load(path, allow_pickle=False))
    np.testing.assert_allclose(policy.mean_action(obs), readme_forward(arrays, obs), rtol=1e-4, atol=1e-4)
