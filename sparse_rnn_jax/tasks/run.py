"""One run of a sweep: ``train_and_evaluate`` turns a ``RunConfig`` (``tasks.run_config``) into a trained workdir,
and ``load_run`` reloads a workdir's run with one call.

Data flows one way: RunConfig -> the task's data and members -> buckets and chunks -> programs ->
results.parquet (``engine.sweep``) -> the analysis. Entry points build a RunConfig from their flags and hand it
here; anything that revisits a run (prune, diagnose, the analysis) reloads it with ``load_run``.

run.json holds ``config`` (the RunConfig as a dict), package versions, devices, data provenance (``data``),
``chance_loss`` (the task's, the one definition the summary and the analysis use), padding efficiency, wall time
and ``status`` (running | interrupted | failed | complete).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

from etils import epath

from sparse_rnn_jax.engine.members import build_members, check_budget
from sparse_rnn_jax.engine.population import Chunk, Member, make_chunks
from sparse_rnn_jax.engine.sweep import SweepInterrupted
from sparse_rnn_jax.engine.workdir import CHECKPOINTS_DIR, RESULTS_FILE, RUN_FILE, RUN_OUTPUTS, write_json_atomic
from sparse_rnn_jax.tasks.run_config import RunConfig

PACKAGES: tuple[str, ...] = (
    "sparse_rnn_jax",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "chex",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "absl-py",
    "mlxtend",
    "tensorflow-datasets",
    "minari",
    "gymnasium",
    "gymnasium-robotics",
    "mujoco",
    "scikit-learn",
)


class RunError(ValueError):
    """A run that cannot start as asked (a workdir of another run, a budget too small, ...): one line.
    ``overwritable``: starting afresh in the same workdir (``overwrite=True``) would proceed."""

    def __init__(self, message: str, overwritable: bool = False):
        super().__init__(message)
        self.overwritable = overwritable


def package_versions() -> dict[str, str]:
    """Python's and the main packages' versions (recorded with every run)."""
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def read_record(workdir: str | Path) -> dict | None:
    """run.json of ``workdir`` (None when there is none); RunError when it cannot be read."""
    path = epath.Path(workdir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"workdir {workdir}: unreadable {RUN_FILE} ({e})") from None


@dataclasses.dataclass(frozen=True)
class RecordedRun:
    """A run as recorded in its workdir: run.json, its config, members and chunks (chunked for one device:
    chunk keys do not depend on the device count)."""

    workdir: Path
    record: dict
    config: RunConfig
    members: list[Member]
    chunks: list[Chunk]

    def describe(self) -> str:
        """One line naming the workdir, task, model and chunk counts."""
        return (
            f"{self.workdir}: task {self.record.get('task')}, {len(self.members)} models in {len(self.chunks)} "
            f"chunks (config from {RUN_FILE})"
        )

    def task_data(self, log: Callable[[str], None] = print):
        """The task and its training and validation data, loaded as the sweep loaded them."""
        data = self.config.task_def.load(self.config.data, log)
        if data.task.name != self.record.get("task"):
            raise RunError(
                f"{self.workdir}: {RUN_FILE} records task {self.record.get('task')!r}, the data is {data.task.name!r}"
            )
        return data


def load_run(workdir: str | Path, *, require_complete: bool = True, data_overrides: dict | None = None) -> RecordedRun:
    """The run of ``workdir``: its run.json, RunConfig (``data_overrides`` may change the task config's
    non-defining fields, e.g. a cache folder), members and chunks. RunError on a missing, unreadable or
    (``require_complete``) unfinished run."""
    record = read_record(workdir)
    if record is None:
        raise RunError(f"workdir {workdir}: no {RUN_FILE} (not a sweep workdir)")
    if require_complete and record.get("status") != "complete":
        raise RunError(
            f"workdir {workdir}: the sweep is {record.get('status', 'unfinished')!r}, not complete; finish it first"
        )
    if "config" not in record:
        raise RunError(
            f"workdir {workdir}: {RUN_FILE} was written by an older version (no run config); rerun the sweep"
        )
    try:
        config = RunConfig.from_dict(record["config"])
        if data_overrides:
            fields = {f.name: f for f in dataclasses.fields(config.data)}
            fixed = sorted(k for k in data_overrides if k not in fields or fields[k].metadata.get("defining", True))
            if fixed:
                raise ValueError(f"{fixed[0]} is fixed by the run in {workdir} ({RUN_FILE}); it cannot be changed here")
            config = dataclasses.replace(config, data=dataclasses.replace(config.data, **data_overrides))
    except ValueError as e:
        raise RunError(f"workdir {workdir}: {e}") from None
    input_dim, output_dim = config.task_def.dims(config.data)
    members = build_members(config.population, config.train.seed, input_dim, output_dim)
    if record.get("num_models") not in (None, len(members)):
        raise RunError(
            f"workdir {workdir}: the recorded config rebuilds {len(members)} models, "
            f"{RUN_FILE} says {record['num_models']}"
        )
    chunks = make_chunks(members, config.train.max_buckets, config.train.max_models_per_chunk, 1)
    return RecordedRun(Path(workdir), record, config, members, chunks)


def check_workdir(workdir: epath.Path, config: RunConfig, overwrite: bool) -> tuple[dict | None, bool]:
    """Refuses a workdir of a different run unless ``overwrite``. Returns (the previous run.json when resuming,
    whether the workdir must be cleared first); nothing is changed here."""
    if workdir.exists() and not workdir.is_dir():
        raise RunError(f"workdir {workdir} exists and is not a folder")
    previous = read_record(workdir) if workdir.exists() else None
    if previous is None:
        if workdir.exists() and ((workdir / RESULTS_FILE).exists() or (workdir / CHECKPOINTS_DIR).exists()):
            if not overwrite:
                raise RunError(f"workdir {workdir} holds results without {RUN_FILE}", overwritable=True)
            return None, True
        return None, False
    old = previous.get("config")
    if old is None:
        if not overwrite:
            raise RunError(f"workdir {workdir} holds a run of an older version", overwritable=True)
        return None, True
    try:
        old_defining = RunConfig.from_dict(old).defining_dict()
    except ValueError:
        old_defining = old
    new = config.defining_dict()
    diff = _differences(old_defining, new)
    if diff:
        if not overwrite:
            shown = ", ".join(f"{k}={a!r} there vs {b!r} now" for k, a, b in diff[:3])
            raise RunError(f"workdir {workdir} holds a run of different settings ({shown})", overwritable=True)
        return None, True
    return previous, False


def _differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, "")
        elif a != b:
            out.append((prefix + k, a, b))
    return out


def clear_workdir(workdir: epath.Path) -> list[str]:
    """Removes what a previous run wrote (only a run's own files; anything else stays); returns their names."""
    removed = []
    for name in RUN_OUTPUTS:
        path = workdir / name
        if path.is_dir():
            path.rmtree()
            removed.append(name)
        elif path.exists():
            path.unlink()
            removed.append(name)
    return removed


@dataclasses.dataclass
class RunResult:
    """What ``train_and_evaluate`` returns: the results table, the run record and the task data."""

    frame: Any
    record: dict
    data: Any
    members: list[Member]


def prepare(config: RunConfig) -> tuple[int, int]:
    """Everything that can be checked before any work: the task's own checks and the budget for its dims.
    Returns (input_dim, output_dim); RunError with a one-line message otherwise."""
    task = config.task_def
    try:
        task.check(config.data)
        input_dim, output_dim = task.dims(config.data)
        check_budget(config.population, input_dim, output_dim)
    except ValueError as e:
        raise RunError(str(e)) from None
    train_size = getattr(config.data, "train_size", None)
    if train_size is not None and train_size < config.train.batch_size:
        raise RunError(f"train_size ({train_size}) is smaller than one batch_size ({config.train.batch_size})")
    return input_dim, output_dim


def train_and_evaluate(
    config: RunConfig,
    workdir: str | Path,
    *,
    overwrite: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> RunResult:
    """Checks the workdir, loads the data, trains every member (resuming where a previous run stopped), runs the
    task's after-training step and records run.json. Raises RunError before any work on bad input, and
    SweepInterrupted (run.json status "interrupted") after a stop request."""
    import jax

    from sparse_rnn_jax.engine.sweep import describe_plan, run_sweep
    from sparse_rnn_jax.engine.workdir import absolute

    if config.matmul_precision:
        jax.config.update("jax_default_matmul_precision", config.matmul_precision)
    prepare(config)
    workdir = absolute(workdir)
    previous, clear = check_workdir(workdir, config, overwrite)
    lead = jax.process_index() == 0
    task_def = config.task_def
    try:
        data = task_def.load(config.data, log)
    except ValueError as e:
        raise RunError(str(e)) from None
    task = data.task
    members = build_members(config.population, config.train.seed, task.input_dim, task.output_dim)
    train = config.train
    if task_def.keeps_final_params(config.data) and not train.save_final_params:
        train = dataclasses.replace(train, save_final_params=True)
    _, efficiency = describe_plan(members, train, jax.device_count())
    if clear and lead:
        clear_workdir(workdir)
    record = {
        "config": config.to_dict(),
        "versions": package_versions(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "platform": jax.default_backend(),
        "task": task.name,
        "chance_loss": task.chance_loss,
        "data": data.info,
        "num_models": len(members),
        "padding_efficiency": efficiency,
        "wall_time_s": (previous or {}).get("wall_time_s", 0.0),
        "status": "running",
    }
    if lead:
        write_json_atomic(record, workdir / RUN_FILE)
    t0 = time.time()
    record["status"] = "failed"
    frame = None
    try:
        frame = run_sweep(
            members, task, data.train, data.val, train, workdir, should_stop=should_stop, log=log, progress=progress
        )
        if task_def.after_training is not None:
            task_def.after_training(config.data, data, members, train, workdir, should_stop, log, progress)
        record["status"] = "complete"
    except SweepInterrupted:
        record["status"] = "interrupted"
        raise
    finally:
        record["wall_time_s"] += time.time() - t0
        if lead:
            write_json_atomic(record, workdir / RUN_FILE)
    return RunResult(frame, record, data, members)
