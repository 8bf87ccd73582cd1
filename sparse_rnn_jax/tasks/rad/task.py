"""The RAD task for the engine: the Task (cross-entropy at the last step, accuracy) and the loaded splits."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.engine.task import Batch, Task, TaskData, last_step_classification_score
from sparse_rnn_jax.tasks.rad import RadTaskConfig
from sparse_rnn_jax.tasks.rad.generate import RadConfig, load_rad, to_model_inputs
from sparse_rnn_jax.tasks.rad.mnist import load_mnist


@functools.lru_cache(maxsize=None)
def rad_task(images_per_sequence: int = 10, image_size: int = 50) -> Task:
    """Random Anomaly Detection: data {"images": uint8[N, n, image_size**2], "labels": int32[N]}; chance = ln n."""

    def make_batch(data, idx):
        x, y = to_model_inputs(data["images"][idx], data["labels"][idx])
        return Batch(x, y, jnp.ones(idx.shape[0], jnp.float32))

    return Task(
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


def load(config: RadTaskConfig, log: Callable[[str], None] = print) -> TaskData:
    """Loads the digits (``mnist.load_mnist``), then generates (or reads from the cache) the splits."""
    generator = generator_config(config)
    digits = load_mnist(config.mnist_source, log=log)
    splits = load_rad(digits, generator, config.cache_dir or None, log=log)
    data = {s: {"images": splits[s].images, "labels": splits[s].labels} for s in ("train", "val")}
    info = {"mnist_source": digits.source, "num_digits": int(len(digits.labels)), "rad": dataclasses.asdict(generator)}
    return TaskData(rad_task(config.images_per_sequence, config.image_size), data["train"], data["val"], info)
