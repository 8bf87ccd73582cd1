"""A run config as the command line that trains it, and the run config that trains chosen specs.

``sweep_command(config, workdir)`` is the ``python -m experiments.sweep ...`` line whose flags give back exactly
``config``: the task, every data, population and training field that differs from its default (so the line stays
short), and the workdir. ``specs_config`` is the run config of explicit specs (``core.spec_text``) trained with
several seeds each, on a task's data: what ``experiments.recommend`` prints and trains for its candidates.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any, Sequence

from sparse_rnn_jax.engine.config import PopulationConfig, TrainConfig
from sparse_rnn_jax.run.config import RunConfig

ENTRY = "experiments.sweep"


def _flag(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if isinstance(value, (tuple, list)):
        return f"--{name}=" + ",".join(_text(v) for v in value)
    return f"--{name}={_text(value)}"


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _changed(obj: Any, keep: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """(name, value) of the dataclass fields of ``obj`` that differ from their defaults (and those in ``keep``)."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, list):
            default = tuple(default)
        if f.name in keep or value != default:
            out.append((f.name, value))
    return out


def sweep_args(config: RunConfig, workdir: str) -> list[str]:
    """The arguments (after ``python -m experiments.sweep``) that train ``config`` into ``workdir``."""
    args = [f"--task={config.task}"]
    args += [_flag(n, v) for n, v in _changed(config.data)]
    args += [_flag(n, v) for n, v in _changed(config.population, keep=("num_models",))]
    args += [_flag(n, v) for n, v in _changed(config.train, keep=("epochs",))]
    if config.matmul_precision is not None:
        args.append(_flag("matmul_precision", config.matmul_precision))
    return args + [_flag("workdir", workdir)]


def sweep_command(config: RunConfig, workdir: str) -> str:
    """One shell line that trains ``config`` into ``workdir`` (rerun it to resume; ``--plan`` to estimate)."""
    return " ".join(shlex.quote(a) for a in ["python", "-m", ENTRY, *sweep_args(config, workdir)])


def specs_config(
    task: str,
    data: Any,
    texts: Sequence[str],
    *,
    seeds: int = 3,
    train: TrainConfig | None = None,
    matmul_precision: str | None = None,
) -> RunConfig:
    """The run config that trains each spec text of ``texts`` with ``seeds`` seeds (``spec_repeats``) and nothing
    else, on ``task`` with its data config ``data`` and training ``train`` (default: ``TrainConfig()`` with at
    most 2 buckets, which suits a handful of models)."""
    train = train or TrainConfig(max_buckets=2)
    population = PopulationConfig(num_models=0, specs=tuple(texts), spec_repeats=seeds)
    return RunConfig(task, data, population, train, matmul_precision)
