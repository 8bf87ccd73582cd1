"""The RAD task for the engine: the Objective (cross-entropy at the last step, accuracy) and the loaded splits."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.engine.task import Batch, LoadedTask, Objective, last_step_classification_score
from sparse_rnn_jax.tasks.rad import RadTaskConfig
from sparse_rnn_jax.tasks.rad.generate import RadConfig, load_rad, to_model_inputs
from sparse_rnn_jax.tasks.rad.mnist import digits_sha256, load_mnist


@functools.lru_cache(maxsize=None)
def rad_task(images_per_sequence: int = 10, image_size: int = 50) -> Objective:
    """Random Anomaly Detection: data {"images": uint8[N, n, image_size**2], "labels": int32[N]}; chance = ln n."""

    def make_batch(data, idx):
        x, y = to_model_inputs(data["images"][idx], data["labels"][idx])
        return Batch(x, y, jnp.ones(idx.shape[0], jnp.float32))

    return Objective(
        name="rad",
        input_dim=image_size * image_size,
        output_dim=images_per_sequence,
        make_batch=make_batch,
        score=last_step_classification_score,
        has_accuracy=True,
        chance_loss=float(np.log(images_per_sequence)),
    )


def generator_config(config: RadTaskConfig) -> RadConfig:
    """The generator's config of a task config."""
    return RadConfig(
        images_per_sequence=config.images_per_sequence,
        image_size=config.image_size,
        train_size=config.train_size,
        val_size=config.val_size,
        test_size=config.test_size,
        seed=config.data_seed,
    )


DIGIT_REUSE_WARNING = 10.0
"""Warn when a training set shows each source digit more than this many times on average."""


def digit_reuse(num_digits: int, config: RadTaskConfig) -> float:
    """Average times each digit of the training pool appears in the training sequences: train_size x images per
    sequence / the pool's size (``RadConfig.split_fractions[0]`` of the source digits)."""
    pool = max(1, int(num_digits * RadConfig().split_fractions[0]))
    return config.train_size * config.images_per_sequence / pool


def load(config: RadTaskConfig, log: Callable[[str], None] = print) -> LoadedTask:
    """Loads the digits (``mnist.load_mnist``), then generates (or reads from the cache) the splits."""
    generator = generator_config(config)
    digits = load_mnist(config.mnist_source, log=log)
    reuse = digit_reuse(len(digits.labels), config)
    if reuse > DIGIT_REUSE_WARNING:
        log(
            f"warning: {config.train_size:,} training sequences of {config.images_per_sequence} images show each digit "
            f"of the training pool ({digits.source}, {len(digits.labels):,} digits) about {reuse:.0f} times "
            "(more digits: mnist_source tfds, or idx:DIR with the MNIST files)"
        )
    splits = load_rad(digits, generator, config.cache_dir or None, log=log)
    data = {s: {"images": splits[s].images, "labels": splits[s].labels} for s in ("train", "val")}
    info = {
        "mnist_source": digits.source,
        "digits_sha256": digits_sha256(digits),
        "num_digits": int(len(digits.labels)),
        "digit_reuse": reuse,
        "rad": dataclasses.asdict(generator),
    }
    return LoadedTask(rad_task(config.images_per_sequence, config.image_size), data["train"], data["val"], info)
