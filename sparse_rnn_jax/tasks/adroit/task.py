"""The Adroit task for the engine: behaviour cloning (MSE on actions at every valid step) and scoring every
trained model in the environment after training (``scores.parquet``)."""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import pandas as pd

from sparse_rnn_jax.engine.run_plan import RunPlan
from sparse_rnn_jax.engine.sweep import SweepInterrupted, TrainConfig, load_final_params
from sparse_rnn_jax.engine.task import LoadedTask, regression_task
from sparse_rnn_jax.engine.workdir import SCORES_FILE, read_parquet, write_parquet_atomic
from sparse_rnn_jax.models.registry import family_of
from sparse_rnn_jax.tasks.adroit import AdroitTaskConfig, check_stack
from sparse_rnn_jax.tasks.adroit.minari_sequences import SequenceDataset, load_minari_sequences, split_sequences


@functools.lru_cache(maxsize=4)
def dataset(dataset_id: str, download: bool, max_len: int | None) -> SequenceDataset:
    """The Minari dataset as padded sequences (read once per process)."""
    return load_minari_sequences(dataset_id, download=download, max_len=max_len)


def dims(config: AdroitTaskConfig) -> tuple[int, int]:
    """(observation size, action size) of the dataset."""
    check_stack()
    try:
        ds = dataset(config.dataset_id, config.download, config.max_len)
    except ValueError as e:  # MinariDataError and bad ids
        raise ValueError(f"dataset_id: {e}") from None
    return ds.obs_dim, ds.act_dim


def load(config: AdroitTaskConfig, log: Callable[[str], None] = print) -> LoadedTask:
    """The dataset's episodes split into train / validation / test."""
    ds = dataset(config.dataset_id, config.download, config.max_len)
    splits = split_sequences(ds, (config.train_size, config.val_size, config.test_size), seed=config.data_seed)
    train, val = splits["train"], splits["validation"]
    info = {
        "dataset_id": ds.dataset_id,
        "env_id": ds.env_id,
        "episodes": len(ds),
        "steps": int(ds.num_steps),
        "max_episode_steps": ds.max_episode_steps,
        "longest_episode": ds.longest_episode,
        "splits": {k: len(v) for k, v in splits.items()},
    }
    log(
        f"ah: {config.dataset_id}: {len(ds)} episodes of up to {ds.obs.shape[1]} steps "
        f"(obs {ds.obs_dim}, action {ds.act_dim}); splits {info['splits']}"
    )
    return LoadedTask(regression_task("ah", ds.obs_dim, ds.act_dim), train.arrays(), val.arrays(), info)


def eval_steps(config: AdroitTaskConfig, info: dict) -> int:
    """Steps per scoring episode: ``eval_max_steps`` when given, else the dataset's episode length (the TimeLimit
    of the env it was collected in, as the dataset records it, else its longest episode before any ``max_len``)."""
    if config.eval_max_steps is not None:
        return int(config.eval_max_steps)
    steps = info.get("max_episode_steps") or info.get("longest_episode") or info.get("steps")
    if not steps:
        raise ValueError(f"dataset_id {config.dataset_id} records no episode length; give eval_max_steps")
    return int(steps)


def score_models(
    config: AdroitTaskConfig,
    data: LoadedTask,
    plan: RunPlan,
    cfg: TrainConfig,
    workdir,
    should_stop: Callable[[], bool],
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> None:
    """Scores every trained chunk of ``plan`` not yet in scores.parquet (merged atomically after each chunk)."""
    if config.eval_episodes == 0:
        return
    import jax

    from sparse_rnn_jax.tasks.adroit.rollout import score_population

    env_id = config.eval_env_id or data.info["env_id"]
    if not env_id:
        raise ValueError(f"dataset_id {config.dataset_id} names no environment; give eval_env_id")
    max_steps = eval_steps(config, data.info)
    if jax.process_index() != 0:  # environments run on the host: process 0 scores for everyone
        return
    path = workdir / SCORES_FILE
    scores = read_parquet(path) if path.is_file() else pd.DataFrame()
    done = set(scores["model_id"]) if len(scores) else set()
    todo = [c for c in plan.chunks if any(m.model_id not in done for m in c.members)]
    for i, chunk in enumerate(todo):
        if should_stop():
            raise SweepInterrupted(f"stopped while scoring ({i}/{len(todo)} chunks scored)")
        loaded = load_final_params(workdir, chunk, cfg.mask_mode)
        if loaded is None:
            raise RuntimeError(f"no saved weights for chunk {chunk.key}")
        params, masks = loaded
        log(
            f"scoring {len(chunk.members)} models x {config.eval_episodes} episodes of {max_steps} steps in {env_id} "
            f"(chunk {i + 1}/{len(todo)})"
        )
        res = score_population(
            family_of(chunk.members[0].spec).name,
            params,
            masks,
            chunk.activation,
            env_id,
            config.eval_episodes,
            config.eval_seed,
            max_steps,
            max_envs=config.eval_max_envs,
            progress=progress,
        )
        rows = pd.DataFrame(
            {"model_id": [m.model_id for m in chunk.members], **{k: np.asarray(v) for k, v in res.items()}}
        )
        rows["eval_episodes"] = config.eval_episodes
        rows["eval_max_steps"] = max_steps
        rows["eval_env_id"] = env_id
        scores = pd.concat([scores, rows], ignore_index=True) if len(scores) else rows
        scores = scores.drop_duplicates("model_id", keep="last").sort_values("model_id").reset_index(drop=True)
        write_parquet_atomic(scores, path)
