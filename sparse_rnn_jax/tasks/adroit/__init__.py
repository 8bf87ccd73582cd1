"""Adroit hand tasks (the paper's AH, Table II): behaviour cloning of an expert on Minari sequences (MSE on the
actions at every step), then every trained model scored by the return it earns acting in the real environment.

``minari_sequences`` loads a Minari dataset as padded sequences, ``collect`` writes one offline with an npz
expert (``policies``), ``rollout`` scores populations in the environment, ``task`` makes the engine's Task and
the scoring step. The config's fields are the ``--task=ah`` flags.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sparse_rnn_jax.tasks.base import TaskDef, descriptor_dict, lazy, masked_variance, task_field


@dataclasses.dataclass(frozen=True)
class AdroitTaskConfig:
    """The Minari data of a sweep and how its models are scored."""

    dataset_id: str = task_field(
        "D4RL/hammer/expert-v2", "Minari dataset id (downloaded when not local and reachable)."
    )
    download: bool = task_field(True, "Download the dataset when it is not in the local Minari store.", defining=False)
    train_size: int = task_field(4500, "Training episodes.")
    val_size: int = task_field(250, "Validation episodes.")
    test_size: int = task_field(250, "Held-out test episodes (not used in training).")
    data_seed: int = task_field(0, "Seed of the episode split.")
    max_len: int | None = task_field(None, "Truncate episodes to this many steps.")
    eval_episodes: int = task_field(100, "Environment episodes per model after training (0: no scoring).")
    eval_env_id: str | None = task_field(None, "Environment to score in (default: the dataset's own env).")
    eval_seed: int = task_field(1_000_000, "Episode k of every model is reset with eval_seed + k.")
    eval_max_steps: int = task_field(200, "Steps per scoring episode.")
    eval_max_envs: int = task_field(256, "Environments stepped together while scoring.", defining=False)

    def __post_init__(self) -> None:
        for name in ("train_size", "val_size", "test_size", "eval_max_steps", "eval_max_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0, got {self.eval_episodes}")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")


def descriptor(config: AdroitTaskConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``) from the dataset: that of ``data`` (the loaded ``TaskData``),
    loaded when None. chance_loss: the MSE of the best constant action on the training episodes (the task's own
    chance stays NaN: behaviour cloning is judged by the environment scores)."""
    if data is None:
        data = TASK.load(config, lambda message: None)
    train = data.train
    n, t, _ = train["x"].shape
    chance = masked_variance(train["targets"], train["step_mask"])
    return descriptor_dict(data.task.name, data.task.input_dim, data.task.output_dim, t, "mse", chance, n)


TASK = TaskDef(
    name="ah",
    config_type=AdroitTaskConfig,
    dims=lazy("sparse_rnn_jax.tasks.adroit.task", "dims"),
    load=lazy("sparse_rnn_jax.tasks.adroit.task", "load"),
    after_training=lazy("sparse_rnn_jax.tasks.adroit.task", "score_models"),
    keeps_final_params=lambda config: config.eval_episodes > 0,
)
