"""Collects a Minari dataset offline by running an npz tanh-MLP policy in a Gymnasium environment.

  python -m experiments.collect_minari --env_id=AdroitHandHammer-v1 \
      --policy_npz=../shared/data/dapg/hammer_expert_policy.npz --episodes=5000 \
      --dataset_id=local/hammer/expert-v0 --stochastic

Writes into Minari's local store ($MINARI_DATASETS_PATH, default ~/.minari/datasets); load the result
with ``sparse_rnn_jax.tasks.adroit.minari_sequences.load_minari_sequences("local/hammer/expert-v0")``.
Episode i is reset with seed --seed + i, so a collection is reproducible.
"""

from __future__ import annotations

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_string("env_id", None, "Gymnasium env id, e.g. AdroitHandHammer-v1.")
flags.DEFINE_string("policy_npz", None, "The policy's .npz file (tanh-MLP format of data/dapg/README.md).")
flags.DEFINE_integer("episodes", None, "Episodes to collect.")
flags.DEFINE_string("dataset_id", None, "Minari dataset id, (namespace/)name-vN, e.g. local/hammer/expert-v0.")
flags.DEFINE_bool("stochastic", False, "Add the policy's Gaussian action noise (as for the D4RL expert data).")
flags.DEFINE_integer("seed", 0, "Episode i is reset with seed + i.")
flags.DEFINE_integer("max_episode_steps", None, "Override the env's TimeLimit (default: the env's own).")
flags.DEFINE_bool("overwrite", False, "Replace an existing dataset of the same id.")
flags.DEFINE_bool("progress", True, "Show a progress bar over episodes.")
common.help_group("what to collect", ["env_id", "policy_npz", "episodes", "stochastic", "seed", "max_episode_steps"])
common.help_group("the dataset", ["dataset_id", "overwrite", "progress"])


def main(argv):
    common.check_no_positional(argv)
    for name in ("env_id", "policy_npz", "episodes", "dataset_id"):
        if FLAGS[name].value is None:
            common.fail(f"--{name} is required")
    if FLAGS.episodes < 1:
        common.fail(f"--episodes must be >= 1, got {FLAGS.episodes}")
    common.expand_user("policy_npz")
    from sparse_rnn_jax.engine.workdir import path_problem
    from sparse_rnn_jax.tasks.adroit.minari_sequences import datasets_root

    problem = path_problem(datasets_root())
    if problem:
        common.fail(f"Minari's dataset store ($MINARI_DATASETS_PATH): {problem}")
    from sparse_rnn_jax.tasks.adroit import missing_packages, stack_message

    if missing_packages():
        common.fail(stack_message(missing_packages()))
    import numpy as np

    from sparse_rnn_jax.tasks.adroit.collect import collect_dataset
    from sparse_rnn_jax.tasks.adroit.policies import load_npz_policy

    try:
        policy = load_npz_policy(FLAGS.policy_npz)
        summary = collect_dataset(  # checks every input before the first episode
            FLAGS.env_id,
            policy,
            FLAGS.episodes,
            FLAGS.dataset_id,
            stochastic=FLAGS.stochastic,
            seed=FLAGS.seed,
            max_episode_steps=FLAGS.max_episode_steps,
            overwrite=FLAGS.overwrite,
            progress=FLAGS.progress,
        )
    except ValueError as e:
        common.fail(str(e).replace("replacing it needs overwrite=True", "use --overwrite to replace it"))
    r = summary.returns
    print(
        f"{summary.episodes} episodes in {summary.seconds:.1f} s ({summary.episodes_per_second:.2f} episodes/s); "
        f"return mean {r.mean():.1f}, std {r.std():.1f}, min {r.min():.1f}, max {r.max():.1f}"
    )
    if np.isfinite(summary.successes).any():
        print(f"success rate (the env's flag at each episode's last step): {np.nanmean(summary.successes):.3f}")
    print(f"dataset {summary.dataset_id} written to {summary.path}")


if __name__ == "__main__":
    common.run(main)
