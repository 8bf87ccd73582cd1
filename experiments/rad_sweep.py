"""Trains a sweep of block RNNs on Random Anomaly Detection as one batched program per bucket.

  python -m experiments.rad_sweep --flagfile=experiments/flags/rad_smoke.flags
  python -m experiments.rad_sweep --flagfile=experiments/flags/table_iv.flags --workdir=runs/table_iv

Writes WORKDIR/results.parquet (one row per model and epoch), WORKDIR/run.json and orbax checkpoints;
rerunning the same command resumes. See experiments/sweep_cli.py for the shared flags.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from absl import flags

from experiments import common, sweep_cli
from sparse_rnn_jax.data.mnist import MnistSourceError, load_mnist
from sparse_rnn_jax.data.rad import RadConfig, load_rad
from sparse_rnn_jax.tasks import rad_task

FLAGS = flags.FLAGS
flags.DEFINE_string("mnist_source", "auto", "MNIST digits: auto | tfds | embedded | idx:DIR.")
flags.DEFINE_integer("train_size", 30_000, "Training sequences.")
flags.DEFINE_integer("val_size", 1_000, "Validation sequences.")
flags.DEFINE_integer("test_size", 1_000, "Test sequences (generated and cached, not used in training).")
flags.DEFINE_integer("images_per_sequence", 10, "Images per sequence (= classes).")
flags.DEFINE_integer("image_size", 50, "Images are resized to image_size x image_size inputs.")
flags.DEFINE_integer("data_seed", 0, "Seed of the generated RAD sequences.")
flags.DEFINE_string("cache_dir", os.path.join(os.path.expanduser("~"), ".cache", "sparse_rnn_jax", "rad"),
                    "Cache of generated RAD splits ('' disables).")

RAD_FLAGS = ["mnist_source", "train_size", "val_size", "test_size", "images_per_sequence", "image_size", "data_seed"]


def validate_rad_flags() -> RadConfig:
    src = FLAGS.mnist_source
    if not (src in ("auto", "tfds", "embedded") or src.startswith("idx:")):
        common.fail(f"--mnist_source must be auto, tfds, embedded or idx:DIR, got {src!r}")
    if src.startswith("idx:") and not Path(src[4:]).is_dir():
        common.fail(f"--mnist_source: no folder {src[4:]!r}")
    for name in ("train_size", "val_size", "test_size"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if FLAGS.train_size < FLAGS.batch_size:
        common.fail(f"--train_size ({FLAGS.train_size}) is smaller than one --batch_size ({FLAGS.batch_size})")
    try:
        return RadConfig(
            images_per_sequence=FLAGS.images_per_sequence, image_size=FLAGS.image_size, train_size=FLAGS.train_size,
            val_size=FLAGS.val_size, test_size=FLAGS.test_size, seed=FLAGS.data_seed,
        )
    except ValueError as e:
        common.fail(str(e).replace("RadConfig.seed", "--data_seed").replace("RadConfig.", "--"))


def load_task_data() -> sweep_cli.TaskData:
    config = validate_rad_flags()
    try:
        digits = load_mnist(FLAGS.mnist_source, log=print)
    except MnistSourceError as e:
        common.fail(str(e))
    splits = load_rad(digits, config, FLAGS.cache_dir or None, log=print)
    data = {s: {"images": splits[s].images, "labels": splits[s].labels} for s in ("train", "val")}
    info = {"mnist_source": digits.source, "num_digits": int(len(digits.labels)), "rad": dataclasses.asdict(config)}
    return sweep_cli.TaskData(rad_task(config.images_per_sequence, config.image_size), data["train"], data["val"], info)


def dims() -> tuple[int, int]:
    validate_rad_flags()
    return FLAGS.image_size * FLAGS.image_size, FLAGS.images_per_sequence


def main(argv):
    module_flags = [f.name for f in FLAGS.get_key_flags_for_module(sweep_cli)] + RAD_FLAGS
    sweep_cli.run_sweep_main(dims, load_task_data, module_flags, argv)


if __name__ == "__main__":
    common.run(main)
