"""Scoring block RNN populations and npz policies in the environment."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tests.needs_adroit  # noqa: F401  (skips this module without the Adroit stack)
from sparse_rnn_jax.core.spec import make_spec
from sparse_rnn_jax.models.block import block_rnn_forward, block_rnn_step, init_model
from sparse_rnn_jax.tasks.adroit import rollout

HAMMER = "AdroitHandHammer-v1"
OBS, ACT = 46, 26


def population(hidden_dims, padded_hidden_dim, seed=0, activation="relu", bias_std=0.1):
    """Stacked params/masks of block RNNs with the given hidden sizes (varied densities, random biases)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for i, h in enumerate(hidden_dims):
        dens = {b: float(rng.uniform(0.2, 1.0)) for b in ("hx", "hh", "hy", "yx", "yh", "yy")}
        spec = make_spec(OBS, h, ACT, dens, init_std=0.1, activation=activation)
        a = init_model(spec, seed * 100 + i, padded_hidden_dim)
        a.params["b_h"][:] = rng.normal(0, bias_std, padded_hidden_dim) * a.masks["b_h"]
        a.params["b_y"][:] = rng.normal(0, bias_std, ACT)
        arrays.append(a)
    params = {k: np.stack([a.params[k] for a in arrays]) for k in arrays[0].params}
    masks = {k: np.stack([a.masks[k] for a in arrays]) for k in arrays[0].masks}
    return params, masks


def model(tree, p):
    return {k: jnp.asarray(v[p]) for k, v in tree.items()}


def test_d4rl_score_table():
    lo, hi = rollout.D4RL_REF_SCORES[HAMMER]
    assert (lo, hi) == pytest.approx((-274.856578, 12794.134825))
    scores = rollout.d4rl_normalised_score(HAMMER, [lo, hi, 16257.0])
    np.testing.assert_allclose(scores, [0.0, 100.0, 126.49], atol=0.01)
    assert math.isnan(float(rollout.d4rl_normalised_score("Pendulum-v1", 1.0)))


@pytest.mark.parametrize(
    "env_id,random_return,expert_return",
    [  # D4RL's random / expert reference returns of the Adroit tasks
        ("AdroitHandDoor-v1", -56.512833, 2880.5693087),
        ("AdroitHandHammer-v1", -274.856578, 12794.134825),
        ("AdroitHandPen-v1", 96.262799, 3076.8331018),
        ("AdroitHandRelocate-v1", -6.425911, 4233.8777977),
    ],
)
def test_d4rl_scores_of_every_adroit_env(env_id, random_return, expert_return):
    np.testing.assert_allclose(
        rollout.d4rl_normalised_score(env_id, [random_return, expert_return]), [0.0, 100.0], atol=1e-5
    )
    rollout.check_env_id(env_id)  # each is a registered Gymnasium-Robotics environment


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_prepared_step_equals_block_rnn_step(activation):
    params, masks = population((3, 7, 10), 10, seed=4, activation=activation)
    rng = np.random.default_rng(0)
    state = jnp.asarray(rng.normal(size=(3, 5, 10 + ACT)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(3, 5, OBS)), jnp.float32)
    prepare, step = rollout.population_programs("block", activation)
    got_state, got_y = step(prepare(params, masks), state, x, 10)
    for p in range(3):
        want_state, want_y = block_rnn_step(model(params, p), model(masks, p), state[p], x[p], activation)
        np.testing.assert_allclose(got_state[p], want_state, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_y[p], want_y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_carried_state_equals_rerunning_the_history(activation):
    """One recurrent step per env step gives the outputs of block_rnn_forward over the recorded observations,
    and each step's output equals re-running the whole history up to it (the reference's scoring)."""
    hidden, padded, k, steps = (5, 12, 20), 24, 2, 25
    params, masks = population(hidden, padded, seed=1, activation=activation)
    act, state0 = rollout.make_population_actor("block", params, masks, activation, k, ACT)
    seen_obs, seen_y = [], []

    def recording_act(state, obs):
        state, y = act(state, obs)
        seen_obs.append(obs.copy())
        seen_y.append(y.copy())
        return state, y

    vec_env = rollout.make_vector_env(HAMMER, len(hidden) * k, steps)
    try:
        res = rollout.run_vector_episodes(vec_env, np.tile([3, 4], len(hidden)), recording_act, state0, steps)
    finally:
        vec_env.close()
    assert res.lengths.tolist() == [steps] * (len(hidden) * k)
    obs = np.stack(seen_obs, 1).reshape(len(hidden), k, steps, OBS)  # [P, K, T, X]
    ys = np.stack(seen_y, 1).reshape(len(hidden), k, steps, ACT)
    assert np.abs(ys).max() > 1e-2  # the models say something
    forward = jax.jit(block_rnn_forward, static_argnames="activation")
    for p in range(len(hidden)):
        full = np.asarray(forward(model(params, p), model(masks, p), jnp.asarray(obs[p]), activation))
        np.testing.assert_allclose(ys[p], full, rtol=1e-4, atol=1e-5)
        for t in (0, 7, steps - 1):
            prefix = forward(model(params, p), model(masks, p), jnp.asarray(obs[p, :, : t + 1]), activation)
            np.testing.assert_allclose(ys[p, :, t], np.asarray(prefix)[:, -1], rtol=1e-4, atol=1e-5)


def test_scores_do_not_depend_on_chunks_or_company():
    params, masks = population((4, 9, 16), 16, seed=2)
    kwargs = dict(episodes=3, seed=11, max_steps=15)
    together = rollout.rollout_population("block", params, masks, "relu", HAMMER, **kwargs)
    chunked = rollout.rollout_population(
        "block", params, masks, "relu", HAMMER, max_envs=4, **kwargs
    )  # 1 model x 3 episodes
    split = rollout.rollout_population(
        "block", params, masks, "relu", HAMMER, max_envs=2, **kwargs
    )  # 1 model x 2 episodes
    alone = rollout.rollout_population(
        "block", {k: v[1:2] for k, v in params.items()}, {k: v[1:2] for k, v in masks.items()}, "relu", HAMMER, **kwargs
    )
    assert together.returns.shape == (3, 3) and together.lengths.tolist() == [[15] * 3] * 3
    np.testing.assert_allclose(chunked.returns, together.returns, rtol=1e-6)
    np.testing.assert_allclose(split.returns, together.returns, rtol=1e-6)
    np.testing.assert_allclose(alone.returns[0], together.returns[1], rtol=1e-6)
    assert len(np.unique(together.returns[0].round(6))) == 3  # episodes differ (seeds 11, 12, 13)
    scores = rollout.score_population("block", params, masks, ["relu"] * 3, HAMMER, **kwargs)
    assert set(scores) == {"eval_return_mean", "eval_return_std", "eval_success_rate", "d4rl_score"}
    assert all(v.shape == (3,) for v in scores.values())
    np.testing.assert_allclose(scores["eval_return_mean"], together.returns.mean(1))
    np.testing.assert_allclose(scores["d4rl_score"], rollout.d4rl_normalised_score(HAMMER, together.returns.mean(1)))


def test_bad_populations_are_refused():
    params, masks = population((4,), 4)
    with pytest.raises(ValueError, match="observation shape"):
        rollout.score_population("block", params, masks, "relu", "Pendulum-v1", episodes=1)
    with pytest.raises(ValueError, match="activation"):
        rollout.score_population("block", params, masks, ["relu", "tanh"], HAMMER, episodes=1)
    with pytest.raises(rollout.EnvError, match="unknown environment id"):
        rollout.score_population("block", params, masks, "relu", "NoSuchEnv-v3", episodes=1)


def test_expert_policy_scores_high(shared_dir):
    from sparse_rnn_jax.tasks.adroit.policies import load_npz_policy

    path = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    scores = rollout.score_policy_npz(path, HAMMER, episodes=2, seed=100)
    assert scores["eval_return_mean"] >= 10_000 and scores["eval_success_rate"] == 1.0
    assert scores["d4rl_score"] > 75
    # Stepping in a vector env gives the episodes that a single env replays with the same seeds and actions.
    policy = load_npz_policy(path)
    env = rollout.make_env(HAMMER)
    obs, _ = env.reset(seed=101)
    total = 0.0
    for _ in range(200):
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        total += reward
    env.close()
    single = rollout.rollout_policy(policy, HAMMER, episodes=2, seed=100)
    assert single.returns[1] == pytest.approx(total, rel=1e-6)  # the vector path feeds float32 observations


@pytest.mark.slow
def test_imitation_trained_model_scores_far_above_untrained(shared_dir, tmp_path, monkeypatch):
    """Behaviour cloning of the expert (10 stochastic episodes, 400 Adam steps, MSE on actions) by a small
    dense block RNN, scored together with its untrained initialisation on the same two episodes."""
    import optax

    from sparse_rnn_jax.tasks.adroit.collect import collect_dataset
    from sparse_rnn_jax.tasks.adroit.minari_sequences import load_minari_sequences
    from sparse_rnn_jax.tasks.adroit.policies import load_npz_policy

    path = shared_dir / "data" / "dapg" / "hammer_expert_policy.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    collect_dataset(HAMMER, load_npz_policy(path), 10, "local/hammer/bc-v0", stochastic=True, seed=1000, progress=False)
    ds = load_minari_sequences("local/hammer/bc-v0", download=False)
    flat = ds.obs[ds.step_mask]
    mean, std = flat.mean(0), np.where(flat.std(0) > 0, flat.std(0), 1.0)
    x, target = jnp.asarray((ds.obs - mean) / std), jnp.asarray(ds.actions)
    mask = jnp.asarray(ds.step_mask, jnp.float32)

    arrays = init_model(make_spec(OBS, 64, ACT, 1.0, init_std=0.05), seed=0)
    initial = {k: jnp.asarray(v) for k, v in arrays.params.items()}
    masks = {k: jnp.asarray(v) for k, v in arrays.masks.items()}
    opt = optax.adam(3e-3)

    def loss_fn(params):
        sq = jnp.mean((block_rnn_forward(params, masks, x, "relu") - target) ** 2, -1)
        return jnp.sum(sq * mask) / jnp.sum(mask)

    @jax.jit
    def update(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    params, opt_state = initial, opt.init(initial)
    first = float(loss_fn(params))
    for _ in range(400):
        params, opt_state, loss = update(params, opt_state)
    assert float(loss) < 0.3 * first

    both = {k: jnp.stack([params[k], initial[k]]) for k in params}
    both_masks = {k: jnp.stack([masks[k], masks[k]]) for k in masks}
    scores = rollout.score_population(
        "block", both, both_masks, "relu", HAMMER, episodes=2, seed=0, obs_normaliser=(mean, std)
    )
    trained, untrained = scores["eval_return_mean"]
    assert trained > untrained + 5_000, scores
    assert scores["d4rl_score"][0] > scores["d4rl_score"][1] + 30
