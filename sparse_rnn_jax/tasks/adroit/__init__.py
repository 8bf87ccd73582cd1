"""Adroit hand tasks (the paper's AH, Table II): behaviour cloning of an expert on Minari sequences (MSE on the
actions at every step), then every trained model scored by the return it earns acting in the real environment.

``minari_sequences`` loads a Minari dataset as padded sequences, ``collect`` writes one offline with an npz
expert (``policies``), ``rollout`` scores populations in the environment, ``baseline`` normalises their returns
against a random policy, ``task`` makes the engine's Objective and the scoring step. The config's fields are the
``--task=ah`` flags. Any Minari dataset of a Box-action environment works (``D4RL/door/expert-v2`` in
``AdroitHandDoor-v1``, pen, relocate, ...); reports name a run by its environment.

The Adroit stack (minari, gymnasium, gymnasium-robotics, mujoco) is the optional ``adroit`` extra: without it,
the task's ``check`` (run before any work) and the modules that need it fail with one line naming
``pip install -e '.[adroit]'``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

from sparse_rnn_jax.core.chance import constant_predictor_loss
from sparse_rnn_jax.tasks.base import TaskDef, descriptor_dict, lazy, task_field

ADROIT_PACKAGES: dict[str, str] = {
    "minari": "minari",
    "h5py": "h5py",
    "gymnasium": "gymnasium",
    "gymnasium_robotics": "gymnasium-robotics",
    "mujoco": "mujoco",
}
"""Module -> distribution of the Adroit stack (the ``adroit`` extra)."""
INSTALL_HINT = "pip install -e '.[adroit]'"


def missing_packages() -> list[str]:
    """The distributions of the Adroit stack whose modules cannot be found (nothing is imported)."""
    return [dist for module, dist in ADROIT_PACKAGES.items() if importlib.util.find_spec(module) is None]


def stack_message(missing: list[str]) -> str:
    """The one-line error for a missing Adroit stack."""
    return f"the Adroit tasks need {', '.join(missing)}, which are not installed: {INSTALL_HINT}"


def check_stack(config: object = None) -> None:
    """ValueError (one line, naming ``pip install -e '.[adroit]'``) when part of the Adroit stack is missing."""
    missing = missing_packages()
    if missing:
        raise ValueError(stack_message(missing))


@dataclasses.dataclass(frozen=True)
class AdroitTaskConfig:
    """The Minari data of a sweep and how its models are scored."""

    dataset_id: str = task_field(
        "D4RL/hammer/expert-v2",
        "Any Minari dataset id of a Box-action environment (D4RL/hammer/expert-v2, D4RL/door/expert-v2, "
        "local/hammer/expert-v0, ...); downloaded when not local and reachable.",
    )
    download: bool = task_field(True, "Download the dataset when it is not in the local Minari store.", defining=False)
    train_size: int = task_field(4500, "Training episodes.")
    val_size: int = task_field(250, "Validation episodes.")
    test_size: int = task_field(250, "Held-out test episodes (not used in training).")
    data_seed: int = task_field(0, "Seed of the episode split.")
    max_len: int | None = task_field(None, "Truncate episodes to this many steps.")
    eval_episodes: int = task_field(100, "Environment episodes per model after training (0: no scoring).")
    eval_env_id: str | None = task_field(
        None, "Environment to score in (default: the dataset's own, e.g. AdroitHandDoor-v1 for D4RL/door/expert-v2)."
    )
    eval_seed: int = task_field(1_000_000, "Episode k of every model is reset with eval_seed + k.")
    eval_max_steps: int | None = task_field(
        None, "Steps per scoring episode (default: the dataset's episode length, its env's TimeLimit)."
    )
    eval_max_envs: int = task_field(256, "Environments stepped together while scoring.", defining=False)

    def __post_init__(self) -> None:
        for name in ("train_size", "val_size", "test_size", "eval_max_steps", "eval_max_envs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0, got {self.eval_episodes}")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")


def descriptor(config: AdroitTaskConfig, data: Any = None) -> dict:
    """Task summary (``tasks.base.descriptor_dict``) from the dataset: that of ``data`` (the loaded ``LoadedTask``),
    loaded when None. chance_loss: the MSE of the best constant action on the training episodes (the task's own
    chance stays NaN: behaviour cloning is judged by the environment scores)."""
    if data is None:
        data = TASK.load(config, lambda message: None)
    train = data.train
    n, t, _ = train["x"].shape
    chance = constant_predictor_loss(train["targets"], train["step_mask"], "mse")
    return descriptor_dict(
        data.objective.name, data.objective.input_dim, data.objective.output_dim, t, "mse", chance, n
    )


normalised_returns = lazy("sparse_rnn_jax.tasks.adroit.baseline", "normalised_task_returns")
"""``(config, returns, env_id=None, max_steps=None) -> (scores, baseline)``: the models' mean returns normalised
against a random policy, 100 x (R - random) / (expert - random) (``baseline``); a task scored in an environment
offers it for ``experiments.recommend --validate`` and ``--race``."""


def unavailable(config: AdroitTaskConfig) -> str | None:
    """Why this machine cannot run ``config`` (``TaskDef.unavailable``): the Adroit stack is not installed, or the
    dataset is not in the local Minari store and ``download`` is off; None when it can."""
    missing = missing_packages()
    if missing:
        return f"the Adroit stack is not installed: {', '.join(missing)}"
    from sparse_rnn_jax.tasks.adroit.minari_sequences import local_dataset_path

    if not config.download and not (local_dataset_path(config.dataset_id) / "data").is_dir():
        return f"no local Minari dataset {config.dataset_id}; collect one offline with experiments.collect_minari"
    return None


TASK = TaskDef(
    name="ah",
    config_type=AdroitTaskConfig,
    dims=lazy("sparse_rnn_jax.tasks.adroit.task", "dims"),
    load=lazy("sparse_rnn_jax.tasks.adroit.task", "load"),
    after_training=lazy("sparse_rnn_jax.tasks.adroit.task", "score_models"),
    check=check_stack,
    descriptor=descriptor,
    unavailable=unavailable,
    tiny={"": {"download": False, "eval_episodes": 0, "train_size": 2, "val_size": 1, "test_size": 1}},
)
