"""A whole sweep: members -> buckets -> chunks, each chunk one jitted, vmapped, sharded training program.

Chunks train one after another; within a chunk every model sees the same minibatch stream (one data
pass feeds all models) unless ``per_model_order``. After every epoch the chunk is evaluated on the
validation set and the epoch is committed (``engine.checkpoint.SweepLedger``: its rows merged into
``WORKDIR/results.parquet``, the chunk's state checkpointed, then the manifest naming both), so a kill at any
instant resumes from the last commit. When ``should_stop()`` turns true (e.g. on SIGTERM) the state is
committed mid-epoch and ``SweepInterrupted`` is raised; running the same sweep on the same workdir resumes and
ends with identical results, and so does a rerun with more epochs (each chunk continues from its final state).

Determinism: a model's masks and initial weights come from its own seed; the minibatch order of epoch e
is a permutation drawn from (seed, e) (or (seed, model_id, e) per model), so results do not depend on
the population, the chunking or the device count beyond float summation order.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from etils import epath
from jax.sharding import Mesh
from tqdm.auto import tqdm

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.engine.checkpoint import SweepLedger, final_arrays, state_arrays, state_from_arrays, state_leaves
from sparse_rnn_jax.engine.config import TrainConfig
from sparse_rnn_jax.engine.devices import (
    barrier,
    device_memory_bytes,
    fetch,
    is_lead,
    population_mesh,
    put,
    shardings,
)
from sparse_rnn_jax.engine.population import (
    BYTES_PER_WEIGHT_ENTRY,
    Chunk,
    Member,
    resolve_chunk_models,
    stack_chunk,
    weight_entries,
)
from sparse_rnn_jax.engine.programs import EpochEnd, EpochStop, PopulationProgram
from sparse_rnn_jax.engine.progress import BAR_FORMAT, SweepEta, step_work
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.engine.run_plan import RunPlan, plan_members
from sparse_rnn_jax.engine.task import Objective
from sparse_rnn_jax.engine.workdir import NO_FAULTS, Faults, absolute
from sparse_rnn_jax.models.masks import trainable_counts
from sparse_rnn_jax.models.registry import family_of


class SweepInterrupted(RuntimeError):
    """Raised after a stop request, once the checkpoint to resume from is written."""


def epoch_order(seed: int, epoch: int, n: int, model_id: int | None = None) -> np.ndarray:
    """Permutation int32[n] of the training examples for ``epoch`` (1-based)."""
    key = [int(seed), int(epoch)] if model_id is None else [int(seed), int(epoch), int(model_id), 1]
    return core_rng(*key).permutation(n).astype(np.int32)


def epoch_indices(cfg: TrainConfig, epoch: int, n: int, model_ids: Sequence[int]) -> np.ndarray:
    """int32[steps, B] (shared order) or int32[steps, P, B]; the last partial batch is dropped."""
    steps = n // cfg.batch_size
    if cfg.per_model_order:
        orders = np.stack([epoch_order(cfg.seed, epoch, n, m)[: steps * cfg.batch_size] for m in model_ids])
        return orders.reshape(len(model_ids), steps, cfg.batch_size).transpose(1, 0, 2)
    return epoch_order(cfg.seed, epoch, n)[: steps * cfg.batch_size].reshape(steps, cfg.batch_size)


def data_size(data: Mapping[str, np.ndarray]) -> int:
    """The number of examples N of a task's arrays (their common leading axis)."""
    sizes = {k: int(np.shape(v)[0]) for k, v in data.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"data arrays disagree on the number of examples: {sizes}")
    return next(iter(sizes.values()))


def load_final_params(workdir: str | Path, chunk: Chunk, mask_mode: str = "exact"):
    """The trained weights of the finished ``chunk`` of a sweep in ``workdir``: (params, masks), numpy pytrees with a
    leading axis over the chunk's real members (ghosts dropped), read from the chunk's final checkpoint
    (``engine.checkpoint.final_arrays``, checked against its recorded sha256) and its masks redrawn from the
    members' seeds; None when the chunk has not finished. ``engine.checkpoint.CheckpointError`` when the manifest
    or the checkpoint is damaged."""
    arrays = final_arrays(epath.Path(absolute(workdir)), chunk.key)
    if arrays is None:
        return None
    _, masks, _ = stack_chunk(chunk, mask_mode)
    n = len(chunk.members)
    params = {k.split("|", 1)[1]: v[:n] for k, v in arrays.items() if k.startswith("params|")}
    return params, {k: v[:n] for k, v in masks.items()}


def chunk_models(members: Sequence[Member], cfg: TrainConfig) -> int:
    """The sweep's most models per chunk: ``cfg.max_models_per_chunk``, or sized from this device's memory."""
    return resolve_chunk_models(members, cfg.max_models_per_chunk, device_memory_bytes())


EpochCallback = Callable[[str, int, list, float], None]
"""on_epoch(chunk_key, epoch, rows, seconds): called on the lead process after each committed epoch of a chunk with
its results rows (dicts keyed like ``RESULT_COLUMNS``, one per real member) and the epoch's wall time (training,
evaluation and the commit). A metrics writer (population quantiles per epoch, ...) hooks in here; an exception it
raises stops the sweep, which resumes from the commit it has seen."""


def run_sweep(
    plan: RunPlan | Sequence[Member],
    task: Objective,
    train_data: Mapping[str, np.ndarray],
    val_data: Mapping[str, np.ndarray],
    cfg: TrainConfig,
    workdir: str | Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    progress: bool = True,
    mesh: Mesh | None = None,
    on_epoch: EpochCallback | None = None,
    faults: Faults = NO_FAULTS,
) -> pd.DataFrame:
    """Trains every member of ``plan`` (a ``RunPlan``, or members planned here with ``plan_members``) for
    ``cfg.epochs`` epochs (resuming from ``workdir``'s last commit, or continuing a finished run to more epochs)
    and returns the results table (also in ``workdir/results.parquet``). ``on_epoch``: see ``EpochCallback``;
    ``faults``: the write protocol's tests (``engine.workdir.Faults``)."""
    workdir = absolute(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = mesh or population_mesh()
    lead = is_lead()
    progress = progress and lead
    if not lead:
        log = lambda _msg: None  # noqa: E731
    n_dev = mesh.devices.size
    plan = plan.for_devices(n_dev) if isinstance(plan, RunPlan) else plan_members(plan, cfg, n_dev)
    n_train = data_size(train_data)
    if n_train < cfg.batch_size:
        raise ValueError(f"training set ({n_train}) is smaller than one batch ({cfg.batch_size})")
    steps_per_epoch = n_train // cfg.batch_size
    log(plan.describe())
    ledger = SweepLedger(workdir, list(plan.chunks), lead=lead, log=log, faults=faults)
    ledger.open(barrier)
    todo = [c for c in plan.chunks if ledger.committed_epochs(c.key) < cfg.epochs]
    if not todo:
        return ledger.frame

    replicated, by_model = shardings(mesh)
    train_dev = put({k: np.asarray(v) for k, v in train_data.items()}, replicated)
    val_dev = put({k: np.asarray(v) for k, v in val_data.items()}, replicated)
    total = sum((cfg.epochs - ledger.committed_epochs(c.key)) * steps_per_epoch for c in todo)
    x, y = plan.members[0].spec.input_dim, plan.members[0].spec.output_dim
    eta = SweepEta(
        [(step_work(c, x, y), (cfg.epochs - ledger.committed_epochs(c.key)) * steps_per_epoch, _shape(c)) for c in todo]
    )
    bar = tqdm(total=total, unit="step", disable=not progress, dynamic_ncols=True, bar_format=BAR_FORMAT)
    try:
        for chunk in todo:
            eta.start_chunk()
            program = PopulationProgram.for_chunk(chunk, task, cfg, by_model)
            hooks = _ChunkHooks(
                chunk, task, cfg, ledger, log, bar, eta, step_work(chunk, x, y), on_epoch if lead else None
            )
            _train_chunk(program, chunk, train_dev, val_dev, hooks, should_stop)
            ledger.faults.reach("chunk_done")
    finally:
        bar.close()
    return ledger.frame


def sweep_progress(plan: RunPlan, epochs: int, workdir: str | Path, log=print) -> tuple[int, int, pd.DataFrame]:
    """(chunks complete to ``epochs``, chunks, the verified results table) of the sweep of ``plan`` in
    ``workdir``, from its commits as ``run_sweep`` would find them (and repair them: the lead process writes)."""
    workdir = absolute(workdir)
    ledger = SweepLedger(workdir, list(plan.chunks), lead=is_lead(), log=log if is_lead() else (lambda _m: None))
    if workdir.exists():
        ledger.open(barrier)
    return sum(ledger.committed_epochs(c.key) >= epochs for c in plan.chunks), len(plan.chunks), ledger.frame


BYTES_PER_MEMBER = 2_000
"""Host memory of one member (spec, seed, name) before training, measured (about 1.6 kB) and rounded up."""
BYTES_PER_RESULT_ROW = 600
"""Host memory of one results row (47 columns in pandas), rounded up."""


def estimate_host_bytes(population, cfg: TrainConfig, input_dim: int, output_dim: int, sample: int = 256) -> dict:
    """An estimate of a sweep's host memory from its plan, before any member is built: ``members`` (their specs),
    ``results`` (the table at the last epoch), ``chunk`` (the largest chunk's padded arrays, from the members of a
    ``sample`` of the sampled models and every named configuration) and ``total``; the task's data is not counted."""
    from sparse_rnn_jax.engine.members import build_members

    small = dataclasses.replace(population, num_models=min(population.num_models, sample), stratify="none")
    drawn = build_members(small, cfg.seed, input_dim, output_dim)

    per_model = max((weight_entries(m.spec) for m in drawn), default=0.0)
    n = population.size
    out = {
        "members": float(n) * BYTES_PER_MEMBER,
        "results": float(n) * cfg.epochs * BYTES_PER_RESULT_ROW,
        "chunk": min(chunk_models(drawn, cfg), n) * per_model * BYTES_PER_WEIGHT_ENTRY,
    }
    out["total"] = sum(out.values())
    return out


def available_host_bytes() -> float | None:
    """Memory available to a new process (Linux: MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclasses.dataclass
class _ChunkHooks:
    """The sweep's callbacks around one chunk's ``PopulationProgram.epochs``: the ledger (resume point, stop and
    epoch commits, final weights), the results rows, the metrics callback and the progress bar."""

    chunk: Chunk
    task: Objective
    cfg: TrainConfig
    ledger: SweepLedger
    log: Callable[[str], None]
    bar: Any
    eta: SweepEta
    work_per_step: float
    on_epoch: EpochCallback | None
    static_rows: list = dataclasses.field(default_factory=list)
    t_epoch: float = 0.0
    clock: float = 0.0

    def start(self, program: PopulationProgram):
        """The chunk's population, resumed from its last commit: (population, epoch, step, loss sum or None)."""
        chunk = self.chunk
        params, masks, lrs = stack_chunk(chunk, self.cfg.mask_mode)
        exact = family_trainable(chunk, masks)
        population = program.init(params, masks, lrs)
        start = self.ledger.start_point(chunk.key, state_leaves(population.state), len(chunk.members))
        if start.arrays is not None:
            population = program.with_state(population, state_from_arrays(start.arrays))
            self.log(f"resuming chunk {chunk.key} at epoch {start.epoch}, step {start.step}")
        self.static_rows = [
            {
                "model_id": m.model_id,
                "bucket": chunk.bucket,
                "seed": m.seed,
                "config": m.config,
                "task": self.task.name,
                "trainable_params_exact": int(exact[i]),
                **spec_columns(m.spec, m.seed),
            }
            for i, m in enumerate(chunk.members)
        ]
        return population, start.epoch, start.step, start.loss_sum

    def epoch_start(self, epoch: int) -> None:
        c = self.chunk
        self.t_epoch = self.clock = time.perf_counter()
        self.bar.set_description(
            f"bucket {c.bucket} (h<={c.padded_hidden_dim}, {c.size} models) epoch {epoch}/{self.cfg.epochs}"
        )

    def steps(self, n: int) -> None:
        now = time.perf_counter()
        self.eta.record(self.work_per_step, n, now - self.clock, _shape(self.chunk))
        self.bar.set_postfix_str(self.eta.postfix(), refresh=False)
        self.bar.update(n)
        self.clock = now

    def stop(self, at: EpochStop) -> None:
        key = self.chunk.key
        self.ledger.commit_stop(key, at.epoch, at.step, at.loss_sum.tolist(), state_arrays(at.population.state, fetch))
        barrier("stop_committed")
        raise SweepInterrupted(f"stopped in chunk {key}, epoch {at.epoch}, step {at.step}; checkpoint saved")

    def epoch_end(self, end: EpochEnd) -> None:
        rows = [
            {
                **base,
                "epoch": end.epoch,
                "train_loss": float(end.train_loss[i]),
                "val_loss": float(end.val_loss[i]),
                "val_accuracy": float(end.val_accuracy[i]) if self.task.has_accuracy else float("nan"),
                "diverged": bool(end.diverged[i]),
            }
            for i, base in enumerate(self.static_rows)
        ]
        self.ledger.faults.reach("before_results")
        state = end.population.state
        final = end.epoch == self.cfg.epochs
        self.ledger.commit_epoch(self.chunk.key, end.epoch, rows, state_arrays(state, fetch), final)
        barrier("epoch_committed")
        if self.on_epoch is not None:
            self.on_epoch(self.chunk.key, end.epoch, rows, time.perf_counter() - self.t_epoch)


def _train_chunk(program: PopulationProgram, chunk: Chunk, train_dev, val_dev, hooks: _ChunkHooks, should_stop):
    """Trains ``chunk`` from its last commit to ``cfg.epochs`` with ``program``, ``hooks`` committing each epoch;
    SweepInterrupted after a stop request (its checkpoint written)."""
    cfg = hooks.cfg
    population, epoch, step, loss_sum = hooks.start(program)
    n_train = data_size(train_dev)
    model_ids = [m.model_id for m in chunk.members] + [chunk.members[-1].model_id] * chunk.ghosts
    _, stopped = program.epochs(
        population,
        train_dev,
        val_dev,
        lambda e: epoch_indices(cfg, e, n_train, model_ids),
        epoch,
        cfg.epochs,
        start_step=step,
        loss_sum=loss_sum,
        should_stop=should_stop,
        on_epoch_start=hooks.epoch_start,
        on_steps=hooks.steps,
        on_stop=hooks.stop,
        on_epoch=hooks.epoch_end,
    )
    if stopped is not None:
        raise SweepInterrupted(f"stopped in chunk {chunk.key} after epoch {stopped}; checkpoint saved")


def _shape(chunk: Chunk) -> tuple:
    """What a chunk's compiled programs depend on: family, activation, padded hidden size and models."""
    return (chunk.family, chunk.activation, chunk.padded_hidden_dim, chunk.size)


def family_trainable(chunk: Chunk, masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """Trainable weights (biases excluded) per model of a chunk's stacked masks: its family's weight arrays."""
    return trainable_counts(masks, family_of(chunk.members[0].spec).weight_keys.values())
