"""A new task for ``experiments.recommend``: any registered task as the task (``--task`` with a JSON config),
the graded extrapolation distance of a recommendation from the zoo, and the per-rung run configs of a race.

**Extrapolation distance** (``add_extrapolation``). For each parent feature, the distance of a value outside the
range of the zoo's models, in units of that range's width (0 inside; 0.5: half a range beyond its edge; features
are the parent's, so dims, length, training size and budget are in log units). ``rec["extrapolation"]``: per task
descriptor (``task``: feature -> distance), the task's largest distance (``task_distance``) and the nearest zoo
task (standardised Euclidean distance in the parent's task-feature space over the zoo's (task, budget) pairs,
``nearest_zoo_task``). Each candidate gets ``extrapolation_distance`` (its largest distance over every feature,
the task's included) and ``extrapolation_features`` (the features with a distance > 0).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from sparse_rnn_jax.analysis.meta.parent import (
    FEATURES,
    PARENT_FILE,
    SHIPPED_PARENT,
    TASK_FEATURES,
    spec_meta_features,
    task_features,
)


def registered_task_config(task: str, config_json: str = "{}"):
    """The config of registered ``task`` with the fields of the JSON object ``config_json``; a one-line
    ValueError starting with ``task`` or ``task_config`` otherwise."""
    import dataclasses

    from sparse_rnn_jax.tasks.registry import get_task

    try:
        definition = get_task(task)
    except ValueError as e:
        raise ValueError(f"task: {e}") from None
    try:
        values = json.loads(config_json or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"task_config: not JSON ({e.msg})") from None
    if not isinstance(values, dict):
        raise ValueError("task_config: must be a JSON object of config fields")
    fields = {f.name for f in dataclasses.fields(definition.config_type)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"task_config: {task} has no field {unknown[0]!r}; fields: {', '.join(sorted(fields))}")
    try:
        return definition.config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise ValueError(f"task_config: {e}") from None


def registered_descriptor(task: str, config) -> dict:
    """The descriptor (``tasks.base.descriptor_dict``) of a registered task's config."""
    from sparse_rnn_jax.studies.zoo import task_descriptor

    return task_descriptor(task, config)


def _ranges(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.asarray(meta["feature_min"], float), np.asarray(meta["feature_max"], float)
    return lo, hi


def feature_distances(features: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """f64[n, k]: distance of each value outside [lo, hi] in units of hi - lo (a constant feature: in its own
    units, i.e. a width of 1)."""
    width = np.where(hi - lo > 0, hi - lo, 1.0)
    x = np.asarray(features, float).reshape(-1, lo.size)
    return np.maximum(0.0, np.maximum(lo - x, x - hi)) / width


def _zoo_task_points(meta: dict) -> tuple[list[str], np.ndarray]:
    names, rows = [], []
    for t in meta["tasks"]:
        for b in t["budgets"]:
            names.append(t["task"])
            rows.append(task_features(t["input_dim"], t["output_dim"], t["seq_len"], t["loss"], t["train_size"], b))
    return names, np.array(rows)


def add_extrapolation(rec: dict, meta: dict | None = None) -> dict:
    """Adds the graded extrapolation distances (module docstring) to the recommendation ``rec`` in place (``meta``:
    the parent's parent.json, default the shipped one) and returns it."""
    from sparse_rnn_jax.core.spec_text import spec_from_text

    meta = meta or json.loads((SHIPPED_PARENT / PARENT_FILE).read_text())
    lo, hi = _ranges(meta)
    t = rec["task"]
    x, y = int(t["input_dim"]), int(t["output_dim"])
    vec = task_features(x, y, t["seq_len"], t["loss"], t["train_size"], rec["budget"])
    k = len(TASK_FEATURES)
    task_d = feature_distances(vec, lo[:k], hi[:k])[0]
    names, points = _zoo_task_points(meta)
    scale = points.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    dist = np.sqrt((((points - vec) / scale) ** 2).sum(axis=1))
    j = int(np.argmin(dist))
    rec["extrapolation"] = {
        "task": {f: float(d) for f, d in zip(TASK_FEATURES, task_d)},
        "task_distance": float(task_d.max()),
        "nearest_zoo_task": {"task": names[j], "distance": float(dist[j])},
        "units": "distance outside the zoo models' range, in widths of that range (0: inside)",
    }
    cands = rec["candidates"]
    if cands:
        specs = [spec_from_text(c["spec"], x, y) for c in cands]
        d = feature_distances(spec_meta_features(specs, t, rec["budget"]), lo, hi)
        for c, row in zip(cands, d):
            c["extrapolation_distance"] = float(row.max())
            c["extrapolation_features"] = {f: round(float(v), 4) for f, v in zip(FEATURES, row) if v > 0}
    return rec


def zoo_epochs(rec: dict) -> int:
    """The zoo's training epochs (the longest of the parent's tasks)."""
    return int(max(t["epochs"] for t in rec["predictor"]["task_descriptors"]))


def race_workdir(workdir: str | None) -> Path:
    """``workdir``, or a new ``recommend_race_*`` folder in the current directory."""
    return Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="recommend_race_", dir="."))


def rung_config_factory(
    task: str,
    task_config=None,
    data: str | None = None,
    loss: str = "",
    seed: int = 0,
    *,
    seeds: int = 1,
    batch_size: int = 32,
    max_buckets: int = 1,
):
    """``make(spec_texts, epochs) -> RunConfig`` that trains each spec with ``seeds`` seeds (``run.command.
    specs_config``): the registered ``task`` with ``task_config``, or the npz file ``data`` (``task="npz"``). A race
    rung (one seed each) and ``recommend.validate`` (several) build their run configs here."""
    from sparse_rnn_jax.engine.config import TrainConfig
    from sparse_rnn_jax.run.command import specs_config

    if task == "npz":
        from sparse_rnn_jax.tasks.npz import NpzConfig

        task_config = NpzConfig(data=str(data), loss=loss)

    def make(specs: Sequence[str], epochs: int):
        train = TrainConfig(epochs=int(epochs), batch_size=batch_size, seed=seed, max_buckets=max_buckets)
        return specs_config(task, task_config, specs, seeds=seeds, train=train)

    return make


def chance_of(*candidates) -> float:
    """The first finite positive chance loss of ``candidates`` (the run's, then the task descriptor's, e.g. Adroit's
    constant-action MSE), else 1 (losses are then raw)."""
    for c in candidates:
        if c is not None and math.isfinite(float(c)) and float(c) > 0:
            return float(c)
    return 1.0


def environment_scores(models, task: str, task_config) -> tuple[np.ndarray | None, dict | None]:
    """(f64[n] normalised returns, the baseline dict) of ``models`` (``final_per_model`` rows joined with the run's
    ``scores.parquet``) when the registered ``task`` scores its models in an environment: its module offers
    ``normalised_returns(config, returns, env_id=, max_steps=)`` (the ``ah`` task: ``tasks.adroit.baseline``,
    100 x (R - random) / (expert - random)) and every model has a finite ``eval_return_mean``; else (None, None)."""
    import importlib

    from sparse_rnn_jax.tasks.registry import TASKS

    if "eval_return_mean" not in models or task not in TASKS:
        return None, None
    returns = models["eval_return_mean"].to_numpy(float)
    normalise = getattr(importlib.import_module(TASKS[task]), "normalised_returns", None)
    if normalise is None or not len(returns) or not np.isfinite(returns).all():
        return None, None
    env_id = str(models["eval_env_id"].iloc[0]) if "eval_env_id" in models else None
    steps = int(models["eval_max_steps"].iloc[0]) if "eval_max_steps" in models else None
    scores, baseline = normalise(task_config, returns, env_id=env_id, max_steps=steps)
    return np.asarray(scores, float), baseline


def baseline_text(baseline: dict | None) -> str:
    """One line naming the reference returns of a normalised return (``tasks.adroit.baseline``)."""
    if not baseline:
        return ""
    b = baseline
    where = (
        "D4RL's constants"
        if b["source"] == "d4rl"
        else f"a uniformly random policy measured over {b['episodes']} episodes (seed {b['seed']}, "
        f"{b['max_steps']} steps); expert: the dataset's mean return"
    )
    text = (
        f"normalised return = 100 x (R - random) / (expert - random) in {b['env_id']}: "
        f"random {b['random_return']:.4g}, expert {b['expert_return']:.4g} ({where})"
    )
    if "dataset_return" in b:
        text += f"; the dataset's episodes: return {b['dataset_return']:.4g}, normalised {b['dataset_score']:.1f}"
    return text


def full_text(rec: dict, top: int = 20) -> str:
    """The recommendation's text (``recommend.recommendation_text``) with the extrapolation and the race."""
    from sparse_rnn_jax.analysis.meta.recommend import recommendation_text

    lines = [recommendation_text(rec, top)]
    ex = rec.get("extrapolation")
    if ex:
        far = {f: d for f, d in ex["task"].items() if d > 0}
        where = ", ".join(f"{f} {d:.2f}" for f, d in far.items()) if far else "inside the zoo's range"
        n = ex["nearest_zoo_task"]
        lines.append(
            f"Extrapolation (in widths of the zoo's range): task {ex['task_distance']:.2f} ({where}); nearest zoo "
            f"task {n['task']} at standardised distance {n['distance']:.2f}"
        )
    if "race" in rec:
        from sparse_rnn_jax.analysis.meta.race import race_text

        lines += ["", race_text(rec["race"])]
    return "\n".join(lines)
