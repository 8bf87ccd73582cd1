"""Trains a sweep of block RNNs (and baseline cells) on the embedded Reber grammar as one batched program
per bucket: next-symbol prediction (multi-hot legal next symbols at every step) or classification
(grammatical or not, at the last symbol). See sparse_rnn_jax/data/reber.py.

  python -m experiments.reber_sweep --flagfile=experiments/flags/reber_smoke.flags
  python -m experiments.reber_sweep --flagfile=experiments/flags/reber_smoke.flags --variant=classification \
      --workdir=runs/reber_cls
  python -m experiments.reber_sweep --flagfile=experiments/flags/reber_smoke.flags --hh_graph=ws --configs= \
      --num_models=48 --workdir=runs/reber_ws

Writes WORKDIR/results.parquet (one row per model and epoch; val_accuracy = fully correct strings for
next symbol, correct labels for classification), WORKDIR/run.json and orbax checkpoints; rerunning the
same command resumes. See experiments/sweep_cli.py for the shared flags.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import flags

from experiments import common, sweep_cli
from sparse_rnn_jax.data.reber import CORRUPTIONS, DEFAULT_MAX_LEN, VARIANTS, ReberConfig, load_reber
from sparse_rnn_jax.tasks import reber_classification_task, reber_next_symbol_task

FLAGS = flags.FLAGS
flags.DEFINE_enum("variant", "next_symbol", list(VARIANTS), "next_symbol (7 sigmoid outputs) or classification (2 classes).")
flags.DEFINE_integer("train_size", 10_000, "Training strings.")
flags.DEFINE_integer("val_size", 1_000, "Validation strings.")
flags.DEFINE_integer("test_size", 1_000, "Test strings (generated, not used in training).")
flags.DEFINE_integer("max_len", DEFAULT_MAX_LEN, "Longest string (longer ones are redrawn); the padded sequence length.")
flags.DEFINE_enum("corruption", "substitute", list(CORRUPTIONS), "How ungrammatical strings are made (classification).")
flags.DEFINE_integer("data_seed", 0, "Seed of the generated strings (each split has its own stream).")

REBER_FLAGS = ["variant", "train_size", "val_size", "test_size", "max_len", "corruption", "data_seed"]


def reber_config() -> ReberConfig:
    """The data config from the flags; a bad value exits 2 with a one-line error."""
    try:
        config = ReberConfig(
            variant=FLAGS.variant, train_size=FLAGS.train_size, val_size=FLAGS.val_size, test_size=FLAGS.test_size,
            max_len=FLAGS.max_len, corruption=FLAGS.corruption, seed=FLAGS.data_seed,
        )
    except ValueError as e:
        common.fail(str(e).replace("ReberConfig.seed", "--data_seed").replace("ReberConfig.", "--"))
    if config.train_size < FLAGS.batch_size:
        common.fail(f"--train_size ({config.train_size}) is smaller than one --batch_size ({FLAGS.batch_size})")
    return config


def load_task_data() -> sweep_cli.TaskData:
    config = reber_config()
    splits = load_reber(config)
    task = reber_next_symbol_task() if config.variant == "next_symbol" else reber_classification_task()
    lengths = np.asarray([len(s) for s in splits["train"].strings])
    train_set = set(splits["train"].strings)
    info = {
        "reber": dataclasses.asdict(config),
        "train_length": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())},
        "distinct_train_strings": len(train_set),
        "val_strings_seen_in_train": float(np.mean([s in train_set for s in splits["val"].strings])),
    }
    print(f"reber ({config.variant}): {config.train_size} / {config.val_size} / {config.test_size} strings, "
          f"length {info['train_length']['min']}-{info['train_length']['max']} (median {info['train_length']['median']:g}), "
          f"{len(train_set)} distinct in train; {info['val_strings_seen_in_train']:.0%} of validation strings also in train")
    return sweep_cli.TaskData(task, splits["train"].arrays, splits["val"].arrays, info)


def dims() -> tuple[int, int]:
    return reber_config().dims


def main(argv):
    module_flags = [f.name for f in FLAGS.get_key_flags_for_module(sweep_cli)] + REBER_FLAGS
    sweep_cli.run_sweep_main(dims, load_task_data, module_flags, argv)


if __name__ == "__main__":
    common.run(main)
