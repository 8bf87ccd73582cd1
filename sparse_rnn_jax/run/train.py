"""One run of a sweep: ``train_and_evaluate`` turns a ``RunConfig`` (``run.config``) into a trained workdir,
and ``load_run`` reloads a workdir's run with one call.

Data flows one way: RunConfig -> the run's plan (``run_plan``: members -> buckets -> chunks, made once and kept in
run.json) and the task's data -> one ``PopulationProgram`` per chunk -> results.parquet (``engine.sweep``) -> the
analysis. Entry points build a RunConfig from their flags and hand it here; anything that revisits a run (prune,
diagnose, the analysis) reloads it with ``load_run``.

run.json holds ``config`` (the RunConfig as a dict), ``plan`` (``engine.run_plan.RunPlan.as_dict``), package
versions, devices, data provenance (``data``: the task's record of its source plus ``arrays_sha256`` of the training
and validation arrays; a resumed run must load the same data), ``chance_loss`` (the task's, the one definition the
summary and the analysis use), padding efficiency, wall time and ``status`` (running | interrupted | failed |
complete).

One run per workdir: ``train_and_evaluate`` holds the workdir's lock (``engine.workdir.WorkdirLock``) from its
first look at the workdir to its last write. A rerun of a complete run with nothing to do leaves every file as it
was; a rerun with a larger ``epochs`` continues each chunk from its final state (a smaller one is refused).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from etils import epath

from sparse_rnn_jax.engine.checkpoint import manifest_problem
from sparse_rnn_jax.engine.members import check_budget
from sparse_rnn_jax.engine.population import Chunk, Member
from sparse_rnn_jax.engine.run_plan import RunPlan, make_run_plan
from sparse_rnn_jax.engine.sweep import (
    SweepInterrupted,
    available_host_bytes,
    data_size,
    estimate_host_bytes,
    run_sweep,
    sweep_progress,
)
from sparse_rnn_jax.engine.workdir import (
    CHECKPOINTS_DIR,
    LOCK_FILE,
    LOCK_OWNER_FILE,
    LOG_FILE,
    MANIFEST_FILE,
    NO_FAULTS,
    RESULTS_FILE,
    RUN_FILE,
    RUN_OUTPUTS,
    SCORES_FILE,
    TENSORBOARD_DIR,
    Faults,
    WorkdirBusy,
    WorkdirLock,
    describe_holder,
    is_remote,
    link_problem,
    path_problem,
    record_problem,
    write_json_atomic,
)
from sparse_rnn_jax.run.config import RunConfig

PACKAGES: tuple[str, ...] = (
    "sparse_rnn_jax",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "absl-py",
    "filelock",
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
    """run.json of ``workdir`` (None when there is none), checked against ``engine.workdir.RECORD_FIELDS`` and
    its config against the config dataclasses; RunError (one line naming the field) when it cannot be read or is
    damaged."""
    path = epath.Path(workdir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"workdir {workdir}: unreadable {RUN_FILE} ({' '.join(str(e).split())})", True) from None
    problem = record_problem(record)
    if problem is None and "config" in record:
        try:
            RunConfig.from_dict(record["config"])
        except ValueError as e:
            problem = f"config: {' '.join(str(e).split())}"
    if problem:
        raise RunError(f"workdir {workdir}: {RUN_FILE} is damaged: {problem}", overwritable=True)
    return record


MANAGED: tuple[str, ...] = RUN_OUTPUTS + (LOCK_FILE, LOCK_OWNER_FILE, LOG_FILE)
"""Every entry of a workdir that a run writes or removes; none may be a symbolic link."""


@dataclasses.dataclass(frozen=True)
class RecordedRun:
    """A run as recorded in its workdir: run.json, its config and its plan (``engine.run_plan.RunPlan``, laid
    out for one device: chunk keys do not depend on the device count)."""

    workdir: Path
    record: dict
    config: RunConfig
    plan: RunPlan

    @property
    def members(self) -> list[Member]:
        """The run's members, in id order."""
        return list(self.plan.members)

    @property
    def chunks(self) -> list[Chunk]:
        """The run's chunks (for one device)."""
        return list(self.plan.chunks)

    @property
    def chunk_models(self) -> int:
        """The most models per chunk the run trained with (its config's cap, or the size chosen from memory)."""
        return self.plan.chunk_models

    def describe(self) -> str:
        """One line naming the workdir, task, model and chunk counts."""
        return (
            f"{self.workdir}: task {self.record.get('task')}, {len(self.members)} models in {len(self.chunks)} "
            f"chunks (config from {RUN_FILE})"
        )

    def task_data(self, log: Callable[[str], None] = print):
        """The task and its training and validation data, loaded as the sweep loaded them."""
        data = self.config.task_def.load(self.config.data, log)
        if data.objective.name != self.record.get("task"):
            raise RunError(
                f"{self.workdir}: {RUN_FILE} records task {self.record.get('task')!r}, the data is "
                f"{data.objective.name!r}"
            )
        return data


def load_run(workdir: str | Path, *, require_complete: bool = True, data_overrides: dict | None = None) -> RecordedRun:
    """The run of ``workdir``: its run.json, RunConfig, members and chunks. The task config's non-defining fields
    (a cache folder, a download switch) are this invocation's, not the recorded run's: ``data_overrides``, else
    their defaults (so a data cache is written where this invocation says, never to a folder named in a
    workdir's run.json). RunError on a missing, unreadable, damaged or (``require_complete``) unfinished run."""
    workdir = workdir if "://" in str(workdir) else Path(workdir).expanduser()
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
        fields = {f.name: f for f in dataclasses.fields(config.data)}
        fixed = sorted(k for k in data_overrides or {} if k not in fields or fields[k].metadata.get("defining", True))
        if fixed:
            raise ValueError(f"{fixed[0]} is fixed by the run in {workdir} ({RUN_FILE}); it cannot be changed here")
        local = {k: f.default for k, f in fields.items() if not f.metadata.get("defining", True)}
        local.update(data_overrides or {})
        if local:
            config = dataclasses.replace(config, data=dataclasses.replace(config.data, **local))
    except ValueError as e:
        raise RunError(f"workdir {workdir}: {e}") from None
    plan = run_plan(config, 1, record, workdir)
    if record.get("num_models") not in (None, len(plan.members)):
        raise RunError(
            f"workdir {workdir}: the recorded config rebuilds {len(plan.members)} models, "
            f"{RUN_FILE} says {record['num_models']}"
        )
    return RecordedRun(Path(workdir), record, config, plan)


def run_plan(config: RunConfig, device_count: int = 1, record: dict | None = None, workdir=None) -> RunPlan:
    """The plan of the run of ``config`` on ``device_count`` devices (``engine.run_plan``): the plan ``record``
    (a run.json) holds, its members rebuilt from ``config``; else, for a new run or a run.json of an older version
    without one, made afresh (with the most models per chunk the record names, as that run chunked them). RunError
    (one line) when the recorded plan does not fit the config's members."""
    input_dim, output_dim = config.task_def.dims(config.data)
    record = record or {}
    try:
        return make_run_plan(
            config.population,
            config.train,
            input_dim,
            output_dim,
            device_count,
            record.get("chunk_models") or None,
            record.get("plan"),
        )
    except ValueError as e:
        raise RunError(f"workdir {workdir}: {RUN_FILE} is damaged: {e}", overwritable=True) from None


def check_workdir(workdir: epath.Path, config: RunConfig, overwrite: bool) -> tuple[dict | None, bool, int | None]:
    """Refuses a workdir of a different run unless ``overwrite``. Returns (the previous run.json when resuming,
    whether the workdir must be cleared first, the recorded epochs when ``config`` asks for more of them); nothing
    is changed here. ``overwrite`` clears whatever a run left, also a run of the same settings."""
    if workdir.exists() and not workdir.is_dir():
        raise RunError(f"workdir {workdir} exists and is not a folder")
    problem = link_problem(workdir, MANAGED)
    if problem:
        raise RunError(problem)
    if overwrite:
        return None, workdir.exists() and any((workdir / name).exists() for name in RUN_OUTPUTS), None
    previous = read_record(workdir) if workdir.exists() else None
    if previous is None:
        if workdir.exists() and any((workdir / n).exists() for n in (RESULTS_FILE, CHECKPOINTS_DIR, MANIFEST_FILE)):
            raise RunError(f"workdir {workdir} holds results without {RUN_FILE}", overwritable=True)
        return None, False, None
    old = previous.get("config")
    if old is None:
        raise RunError(f"workdir {workdir} holds a run of an older version", overwritable=True)
    if (workdir / RESULTS_FILE).exists() and not (workdir / MANIFEST_FILE).exists():
        raise RunError(
            f"workdir {workdir} holds {RESULTS_FILE} without {MANIFEST_FILE} (a run of an older version, or the "
            "manifest was removed): its results cannot be verified",
            overwritable=True,
        )
    damaged = manifest_problem(workdir)
    if damaged:
        raise RunError(
            f"workdir {workdir}: {MANIFEST_FILE} is damaged ({damaged}): its results cannot be verified",
            overwritable=True,
        )
    old_defining = RunConfig.from_dict(old).defining_dict()  # read_record checked it
    new = config.defining_dict()
    old_epochs = (old_defining.get("train") or {}).get("epochs")
    new_epochs = new["train"]["epochs"]
    diff = [
        d for d in _differences(old_defining, new) if d[0] != "epochs" or not isinstance(old_epochs, int)
    ]  # epochs may grow (checked below)
    if diff:
        shown = ", ".join(f"{k}={a!r} there vs {b!r} now" for k, a, b in diff[:3])
        raise RunError(f"workdir {workdir} holds a run of different settings ({shown})", overwritable=True)
    if isinstance(old_epochs, int) and new_epochs < old_epochs:
        raise RunError(
            f"--epochs={new_epochs} is less than the {old_epochs} epochs of the run in {workdir}; a run can be "
            f"continued to more epochs, not shortened (rerun with --epochs={old_epochs} to resume or reprint it)",
            overwritable=True,
        )
    return previous, False, old_epochs if isinstance(old_epochs, int) and new_epochs > old_epochs else None


def _differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, "")
        elif a != b:
            out.append((prefix + k, a, b))
    return out


def clear_workdir(workdir: epath.Path, faults: Faults = NO_FAULTS) -> list[str]:
    """Removes what a previous run wrote (only a run's own files, the manifest first; anything else stays);
    returns their names (folders with a trailing /)."""
    removed = []
    for name in RUN_OUTPUTS:
        path = workdir / name
        if not is_remote(workdir) and os.path.islink(os.fspath(path)):
            os.unlink(os.fspath(path))  # the link itself, never what it points to
            removed.append(name)
        elif path.is_dir():
            path.rmtree()
            removed.append(name + "/")
        elif path.exists():
            path.unlink()
            removed.append(name)
        if name == MANIFEST_FILE:
            faults.reach("clear")
    return removed


DATA_IDENTITY_KEYS: tuple[str, ...] = ("mnist_source", "digits_sha256", "dataset_id", "arrays_sha256")
"""The fields of run.json's ``data`` that identify the data (a resumed run must load the same), in the order a
refusal names them: RAD's MNIST source and digits, Adroit's dataset, and every task's arrays."""


def arrays_sha256(*splits: Mapping[str, np.ndarray]) -> str:
    """sha256 of the arrays of ``splits`` (names, dtypes, shapes and bytes, in order)."""
    h = hashlib.sha256()
    for split in splits:
        for name in sorted(split):
            a = np.ascontiguousarray(split[name])
            h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def check_same_data(workdir, recorded: dict | None, loaded: dict) -> None:
    """RunError (one line) when the data loaded now is not the data the run in ``workdir`` was trained on."""
    for key in DATA_IDENTITY_KEYS:
        if recorded and key in recorded and key in loaded and recorded[key] != loaded[key]:
            old, new = recorded[key], loaded[key]
            if key.endswith("sha256"):
                old, new = old[:12] + "...", new[:12] + "..."
            raise RunError(
                f"workdir {workdir} was trained on other data ({key} {old} there, {new} now); resume it with the "
                "data it recorded in run.json",
                overwritable=True,
            )


@dataclasses.dataclass
class RunResult:
    """What ``train_and_evaluate`` returns: the results table, the run record and the task data."""

    frame: Any
    record: dict
    data: Any
    members: list[Member]


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n < 1e15 else f"{n / 1e9:.2g} GB"


def preflight(config: RunConfig) -> tuple[int, int]:
    """Everything that can be checked before any work: the task's own checks, the budget for its dims and the
    host memory the population needs (estimated from the plan). Returns (input_dim, output_dim); RunError with a
    one-line message otherwise."""
    task_def = config.task_def
    try:
        task_def.check(config.data)
        input_dim, output_dim = task_def.dims(config.data)
        check_budget(config.population, input_dim, output_dim)
    except ValueError as e:
        raise RunError(str(e)) from None
    train_size = getattr(config.data, "train_size", None)
    if train_size is not None and train_size < config.train.batch_size:
        raise RunError(f"train_size ({train_size}) is smaller than one batch_size ({config.train.batch_size})")
    cache = getattr(config.data, "cache_dir", None)
    problem = path_problem(cache) if isinstance(cache, str) and cache else None
    if problem:
        raise RunError(f"cache_dir: {problem}")
    need = estimate_host_bytes(config.population, config.train, input_dim, output_dim)
    have = available_host_bytes()
    if have is not None and need["total"] > have:
        raise RunError(
            f"num_models: {config.population.size:,} models need about {_gb(need['total'])} of host memory "
            f"(members {_gb(need['members'])}, results {_gb(need['results'])}, largest chunk {_gb(need['chunk'])}, "
            f"data not counted), {_gb(have)} is available; train fewer or smaller models per run (--num_models, "
            "--max_models_per_chunk, --budget)"
        )
    return input_dim, output_dim


def effective_precision(config: RunConfig) -> str:
    """The matmul precision a run computes in: float32 ("highest") unless the config asks for another (bfloat16,
    tensorfloat32, ...). On a CPU every setting computes in float32; on GPUs and TPUs JAX's own default would be
    TF32 or bfloat16 passes, which change the results."""
    return config.matmul_precision or "highest"


def in_run_precision(fn: Callable) -> Callable:
    """``fn(config, ...)`` computing in the run's matmul precision (``effective_precision(config)``) through
    ``jax.default_matmul_precision``: scoped to the call, the process' JAX setting is as it was afterwards."""

    @functools.wraps(fn)
    def call(config: RunConfig, *args, **kwargs):
        import jax

        with jax.default_matmul_precision(effective_precision(config)):
            return fn(config, *args, **kwargs)

    return call


@in_run_precision
def train_and_evaluate(
    config: RunConfig,
    workdir: str | Path,
    *,
    overwrite: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    progress: bool = True,
    on_epoch: Callable[[str, int, list, float], None] | None = None,
    tensorboard: bool = True,
    wandb_project: str | None = None,
    log_models: str = "named",
    faults: Faults = NO_FAULTS,
) -> RunResult:
    """Checks the workdir and takes its lock, loads the data, trains every member (resuming from the last commit,
    or continuing a finished run to more epochs), runs the task's after-training step and records run.json. A
    complete run with nothing to do is reported as such and left untouched (``data`` is then None). Raises
    RunError before any work on bad input (a workdir in use, of another run or unwritable, not enough memory),
    and SweepInterrupted (run.json status "interrupted") after a stop request. ``on_epoch``: see
    ``engine.sweep.EpochCallback``. ``tensorboard`` writes live metrics (population quantiles per epoch, one curve
    per named configuration, throughput; ``engine.metrics.MetricsWriter``) into WORKDIR/tensorboard;
    ``wandb_project`` logs them to Weights & Biases too (a one-line note when wandb is not installed);
    ``log_models`` picks the models with their own curves (all, named, none; every model gets its hparams).
    The run computes in its matmul precision (``in_run_precision``); ``faults``: the write protocol's tests
    (``engine.workdir.Faults``)."""
    import jax

    from sparse_rnn_jax.engine.devices import agree
    from sparse_rnn_jax.engine.workdir import absolute

    preflight(config)
    workdir = absolute(workdir)
    problem = path_problem(workdir)
    if problem:
        raise RunError(f"workdir: {problem}")
    problem = link_problem(workdir, MANAGED)  # before the lock: run.lock itself may be the link
    if problem:
        raise RunError(problem)
    lead = jax.process_index() == 0
    lock = WorkdirLock(workdir) if lead else None
    busy = None
    created = not workdir.exists()
    if lock is not None:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            stale = lock.acquire()
            if stale:
                log(f"note: the previous run in {workdir} ended without releasing it ({describe_holder(stale)})")
        except WorkdirBusy as e:
            busy = f"workdir {workdir} {e}"
        except OSError as e:
            busy = f"workdir {workdir}: cannot take its lock ({e.strerror or e})"
    if not agree(busy is None):
        raise RunError(busy or f"workdir {workdir}: process 0 could not take the workdir's lock")
    try:
        metrics = (tensorboard or wandb_project is not None) and lead
        return _train_locked(
            config,
            workdir,
            overwrite,
            should_stop,
            log,
            progress,
            on_epoch,
            (tensorboard, wandb_project, log_models) if metrics else None,
            faults,
        )
    except RunError:
        if created and lock is not None:
            _remove_new_workdir(workdir)
        raise
    finally:
        if lock is not None:
            lock.release()


def _remove_new_workdir(workdir) -> None:
    """After a refusal (bad input found only once the data loads), removes the workdir this call created: its lock
    files and log, then the folder if nothing else is in it (called holding the lock; nothing of a run is there)."""
    if is_remote(workdir) or (workdir / RUN_FILE).exists():
        return
    for name in (LOCK_OWNER_FILE, LOG_FILE, LOCK_FILE):
        try:
            os.unlink(os.path.join(os.fspath(workdir), name))
        except OSError:
            pass
    try:
        os.rmdir(os.fspath(workdir))
    except OSError:
        pass


def _after_training_done(task_def, workdir, members) -> bool:
    """Whether the task's after-training step (environment scoring) has nothing left: no such step, or
    scores.parquet holds every member."""
    if task_def.after_training is None:
        return True
    from sparse_rnn_jax.engine.workdir import read_parquet

    try:
        scored = set(read_parquet(workdir / SCORES_FILE)["model_id"])
    except Exception:  # missing or unreadable: score again
        return False
    return all(m.model_id in scored for m in members)


def _metrics_callback(config: RunConfig, workdir, data, options, on_epoch, plan, train):
    """(on_epoch that also writes live metrics, the writer) for a run with metrics options (tensorboard on?, wandb
    project, log_models); the committed results of a resumed or extended run are rewritten first."""
    from sparse_rnn_jax.engine.metrics import MetricsWriter
    from sparse_rnn_jax.engine.workdir import read_parquet

    _, project, log_models = options
    try:
        history = read_parquet(workdir / RESULTS_FILE) if (workdir / RESULTS_FILE).exists() else None
    except Exception:  # an unreadable table is the sweep's to report and redo; the curves start afresh
        history = None
    writer = MetricsWriter(
        workdir / TENSORBOARD_DIR,
        wandb_project=project,
        run_name=Path(str(workdir)).name,
        config=config.to_dict(),
        chunk_keys=[c.key for c in plan.chunks],
        epochs=train.epochs,
        log_models=log_models,
        history=history,
        chunk_of=plan.chunk_of(),
    )
    sequences = data_size(data.train) // config.train.batch_size * config.train.batch_size

    def callback(chunk_key, epoch, rows, seconds):
        writer.epoch(chunk_key, epoch, rows, seconds, sequences * len(rows))
        if on_epoch is not None:
            on_epoch(chunk_key, epoch, rows, seconds)

    return callback, writer


def _train_locked(
    config, workdir, overwrite, should_stop, log, progress, on_epoch, metrics=None, faults: Faults = NO_FAULTS
) -> RunResult:
    import jax

    previous, clear, extend_from = check_workdir(workdir, config, overwrite)
    lead = jax.process_index() == 0
    task_def = config.task_def
    plan = run_plan(config, jax.device_count(), None if clear else previous, workdir)  # a resume keeps its plan
    members = list(plan.members)
    train = dataclasses.replace(config.train, max_models_per_chunk=plan.chunk_models)
    if previous is not None and previous.get("status") == "complete" and extend_from is None:
        done, total, frame = sweep_progress(plan, train.epochs, workdir, log)
        if done == total and _after_training_done(task_def, workdir, members):
            log(
                f"{workdir}: the run is complete ({len(members)} models, {train.epochs} epochs); nothing to do "
                "(--overwrite starts it again, a larger --epochs continues it)"
            )
            return RunResult(frame, previous, None, members)
    try:
        data = task_def.load(config.data, log)
    except ValueError as e:
        raise RunError(str(e)) from None
    objective = data.objective
    info = {**data.info, "arrays_sha256": arrays_sha256(data.train, data.val)}
    if previous is not None:
        check_same_data(workdir, previous.get("data"), info)
    if clear and lead:
        removed = clear_workdir(workdir, faults)
        log(f"--overwrite: removed {', '.join(removed)} from {workdir}")
    if extend_from is not None:
        log(f"continuing the run in {workdir} from {extend_from} to {train.epochs} epochs")
        if lead and (workdir / SCORES_FILE).exists():
            (workdir / SCORES_FILE).unlink()  # scored at the old last epoch; before run.json records the new one
    record = {
        "config": config.to_dict(),
        "versions": package_versions(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "platform": jax.default_backend(),
        "task": objective.name,
        "chance_loss": objective.chance_loss,
        "data": info,
        "num_models": len(members),
        "matmul_precision": effective_precision(config),
        "chunk_models": plan.chunk_models,
        "padding_efficiency": plan.padding_efficiency,
        "plan": plan.as_dict(),
        "wall_time_s": (previous or {}).get("wall_time_s", 0.0),
        "sessions": int((previous or {}).get("sessions", 1 if (previous or {}).get("wall_time_s") else 0)) + 1,
        "status": "running",
    }
    if lead:
        write_json_atomic(record, workdir / RUN_FILE)
        faults.reach("run_json")
    t0 = time.time()
    record["status"] = "failed"
    frame = None
    writer = None
    if metrics is not None:
        on_epoch, writer = _metrics_callback(config, workdir, data, metrics, on_epoch, plan, train)
    try:
        frame = run_sweep(
            plan,
            objective,
            data.train,
            data.val,
            train,
            workdir,
            should_stop=should_stop,
            log=log,
            progress=progress,
            on_epoch=on_epoch,
            faults=faults,
        )
        if task_def.after_training is not None:
            task_def.after_training(config.data, data, plan, train, workdir, should_stop, log, progress)
        record["status"] = "complete"
    except SweepInterrupted:
        record["status"] = "interrupted"
        raise
    finally:
        record["session_wall_time_s"] = time.time() - t0
        record["wall_time_s"] += record["session_wall_time_s"]
        if writer is not None:
            writer.close()
        if lead:
            write_json_atomic(record, workdir / RUN_FILE)
    return RunResult(frame, record, data, members)
