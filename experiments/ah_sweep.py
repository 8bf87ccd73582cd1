"""Trains a sweep of block RNNs on Adroit Hammer expert data (behaviour cloning, MSE on actions at every
step), then scores every trained model by the reward it earns acting in the real environment.

  python -m experiments.collect_minari --env_id=AdroitHandHammer-v1 \
      --policy_npz=../shared/data/dapg/hammer_expert_policy.npz --episodes=300 --stochastic \
      --dataset_id=local/hammer/expert-v0
  python -m experiments.ah_sweep --flagfile=experiments/flags/ah_smoke.flags
  python -m experiments.ah_sweep --flagfile=experiments/flags/table_iii.flags --dataset_id=D4RL/hammer/expert-v2

Writes WORKDIR/results.parquet (one row per model and epoch; val_loss is MSE, val_accuracy empty),
WORKDIR/scores.parquet (per model: eval_return_mean, eval_return_std, eval_success_rate, d4rl_score,
eval_episodes), WORKDIR/run.json and checkpoints; rerunning the same command resumes, scoring included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from absl import flags

from experiments import common, sweep_cli
from sparse_rnn_jax.data.minari_sequences import MinariDataError, load_minari_sequences, split_sequences
from sparse_rnn_jax.population import make_chunks
from sparse_rnn_jax.results import read_parquet, write_parquet_atomic
from sparse_rnn_jax.sweep import SweepInterrupted, load_final_params
from sparse_rnn_jax.tasks import sequence_regression_task

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset_id", "D4RL/hammer/expert-v2", "Minari dataset id (downloaded when not local and reachable).")
flags.DEFINE_bool("download", True, "Download the dataset when it is not in the local Minari store.")
flags.DEFINE_integer("train_size", 4500, "Training episodes.")
flags.DEFINE_integer("val_size", 250, "Validation episodes.")
flags.DEFINE_integer("test_size", 250, "Held-out test episodes (not used in training).")
flags.DEFINE_integer("data_seed", 0, "Seed of the episode split.")
flags.DEFINE_integer("max_len", None, "Truncate episodes to this many steps.")
flags.DEFINE_integer("eval_episodes", 100, "Environment episodes per model after training (0: no scoring).")
flags.DEFINE_string("eval_env_id", None, "Environment to score in (default: the dataset's own env).")
flags.DEFINE_integer("eval_seed", 1_000_000, "Episode k of every model is reset with eval_seed + k.")
flags.DEFINE_integer("eval_max_steps", 200, "Steps per scoring episode.")
flags.DEFINE_integer("eval_max_envs", 256, "Environments stepped together while scoring.")

AH_FLAGS = ["dataset_id", "train_size", "val_size", "test_size", "data_seed", "max_len", "eval_episodes",
            "eval_env_id", "eval_seed", "eval_max_steps"]
_dataset_cache: dict = {}


def _validate() -> None:
    for name in ("train_size", "val_size", "test_size", "eval_max_steps", "eval_max_envs"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if FLAGS.eval_episodes < 0:
        common.fail(f"--eval_episodes must be >= 0, got {FLAGS.eval_episodes}")
    if FLAGS.max_len is not None and FLAGS.max_len < 1:
        common.fail(f"--max_len must be >= 1, got {FLAGS.max_len}")


def _dataset():
    if "ds" not in _dataset_cache:
        try:
            _dataset_cache["ds"] = load_minari_sequences(FLAGS.dataset_id, download=FLAGS.download, max_len=FLAGS.max_len)
        except (MinariDataError, ValueError) as e:
            common.fail(f"--dataset_id: {e}")
    return _dataset_cache["ds"]


def dims() -> tuple[int, int]:
    _validate()
    ds = _dataset()
    return ds.obs_dim, ds.act_dim


def load_task_data() -> sweep_cli.TaskData:
    ds = _dataset()
    splits = split_sequences(ds, (FLAGS.train_size, FLAGS.val_size, FLAGS.test_size), seed=FLAGS.data_seed)
    train, val = splits["train"], splits["validation"]
    if len(train) < FLAGS.batch_size:
        common.fail(f"--dataset_id {FLAGS.dataset_id} gives {len(train)} training episodes, fewer than --batch_size={FLAGS.batch_size}")
    info = {"dataset_id": ds.dataset_id, "env_id": ds.env_id, "episodes": len(ds), "steps": int(ds.num_steps),
            "splits": {k: len(v) for k, v in splits.items()}}
    print(f"ah: {FLAGS.dataset_id}: {len(ds)} episodes of up to {ds.obs.shape[1]} steps "
          f"(obs {ds.obs_dim}, action {ds.act_dim}); splits {info['splits']}")
    task = sequence_regression_task("ah", ds.obs_dim, ds.act_dim)
    return sweep_cli.TaskData(task, train.arrays(), val.arrays(), info)


def score_models(data, members, cfg, workdir, should_stop) -> None:
    """Scores every trained chunk not yet in scores.parquet (merged atomically after each chunk)."""
    if FLAGS.eval_episodes == 0:
        return
    import jax

    from sparse_rnn_jax.rollout import score_population

    env_id = FLAGS.eval_env_id or data.info["env_id"]
    if not env_id:
        common.fail(f"--dataset_id {FLAGS.dataset_id} names no environment; give --eval_env_id")
    if jax.process_index() != 0:  # environments run on the host: process 0 scores for everyone
        return
    path = workdir / "scores.parquet"
    scores = read_parquet(path) if path.is_file() else pd.DataFrame()
    done = set(scores["model_id"]) if len(scores) else set()
    chunks = make_chunks(members, cfg.max_buckets, cfg.max_models_per_chunk, jax.device_count())
    todo = [c for c in chunks if any(m.model_id not in done for m in c.members)]
    for i, chunk in enumerate(todo):
        if should_stop():
            raise SweepInterrupted(f"stopped while scoring ({i}/{len(todo)} chunks scored)")
        loaded = load_final_params(workdir, chunk, cfg.mask_mode)
        if loaded is None:
            raise RuntimeError(f"no saved weights for chunk {chunk.key}; rerun with --overwrite")
        params, masks = loaded
        print(f"scoring {len(chunk.members)} models x {FLAGS.eval_episodes} episodes in {env_id} "
              f"(chunk {i + 1}/{len(todo)})", flush=True)
        res = score_population(params, masks, chunk.members[0].spec.activation, env_id, FLAGS.eval_episodes,
                               FLAGS.eval_seed, FLAGS.eval_max_steps, max_envs=FLAGS.eval_max_envs, progress=FLAGS.progress)
        rows = pd.DataFrame({"model_id": [m.model_id for m in chunk.members], **{k: np.asarray(v) for k, v in res.items()}})
        rows["eval_episodes"] = FLAGS.eval_episodes
        scores = pd.concat([scores, rows], ignore_index=True) if len(scores) else rows
        scores = scores.drop_duplicates("model_id", keep="last").sort_values("model_id").reset_index(drop=True)
        write_parquet_atomic(scores, path)


def main(argv):
    _validate()
    module_flags = [f.name for f in FLAGS.get_key_flags_for_module(sweep_cli)] + AH_FLAGS
    sweep_cli.run_sweep_main(dims, load_task_data, module_flags, argv,
                             save_final_params=FLAGS.eval_episodes > 0, after_training=score_models)


if __name__ == "__main__":
    common.run(main)
