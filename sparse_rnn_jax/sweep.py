"""A whole sweep: members -> buckets -> chunks, each chunk one jitted, vmapped, sharded training program.

Chunks train one after another; within a chunk every model sees the same minibatch stream (one data
pass feeds all models) unless ``per_model_order``. After every epoch the chunk is evaluated on the
validation set, its rows are merged into ``WORKDIR/results.parquet`` (atomic rewrite, keyed by
(model_id, epoch), so a rerun never duplicates or drops rows) and an orbax checkpoint is saved. When
``should_stop()`` turns true (e.g. on SIGTERM) a checkpoint is saved mid-epoch and ``SweepInterrupted``
is raised; running the same sweep on the same workdir resumes and ends with identical results.

Determinism: a model's masks and initial weights come from its own seed; the minibatch order of epoch e
is a permutation drawn from (seed, e) (or (seed, model_id, e) per model), so results do not depend on
the population, the chunking or the device count beyond float summation order.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from etils import epath
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from sparse_rnn_jax.checkpoint import SweepCheckpointer
from sparse_rnn_jax.population import Chunk, Member, make_chunks, padding_efficiency, stack_chunk
from sparse_rnn_jax.results import RESULT_COLUMNS, is_remote, read_parquet, spec_columns, write_parquet_atomic
from sparse_rnn_jax.spec import BLOCKS
from sparse_rnn_jax.tasks import Task
from sparse_rnn_jax.train import init_train_state, make_evaluate, make_train_steps

POPULATION_AXIS = "population"


class SweepInterrupted(RuntimeError):
    """Raised after a stop request, once the checkpoint to resume from is written."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """How a sweep trains.

    epochs: passes over the training set.  batch_size: sequences per minibatch (shared by all models).
    eval_batch_size: sequences per evaluation batch.  seed: minibatch order (model seeds are separate).
    per_model_order: each model draws its own minibatch order.  max_buckets: hidden-size buckets.
    max_models_per_chunk: models per compiled program (memory bound).  steps_per_call: minibatches per
    jitted call (progress and stop granularity).  mask_mode: "exact" or "bernoulli".  unroll: scan unroll.
    save_final_params: keep each chunk's trained weights in ``WORKDIR/final_params/<chunk key>`` (for
    environment scoring after training; ``load_final_params``).
    """

    epochs: int = 25
    batch_size: int = 16
    eval_batch_size: int = 250
    seed: int = 0
    per_model_order: bool = False
    max_buckets: int = 12
    max_models_per_chunk: int = 256
    steps_per_call: int = 50
    mask_mode: str = "exact"
    unroll: int = 1
    save_final_params: bool = False

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size", "max_buckets", "max_models_per_chunk", "steps_per_call", "unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def population_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over all (global) devices whose one axis is the population."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (POPULATION_AXIS,))


def epoch_order(seed: int, epoch: int, n: int, model_id: int | None = None) -> np.ndarray:
    """Permutation int32[n] of the training examples for ``epoch`` (1-based)."""
    key = [int(seed), int(epoch)] if model_id is None else [int(seed), int(epoch), int(model_id), 1]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key))).permutation(n).astype(np.int32)


def _epoch_indices(cfg: SweepConfig, epoch: int, n: int, model_ids: Sequence[int]) -> np.ndarray:
    """int32[steps, B] (shared order) or int32[steps, P, B]; the last partial batch is dropped."""
    steps = n // cfg.batch_size
    if cfg.per_model_order:
        orders = np.stack([epoch_order(cfg.seed, epoch, n, m)[: steps * cfg.batch_size] for m in model_ids])
        return orders.reshape(len(model_ids), steps, cfg.batch_size).transpose(1, 0, 2)
    return epoch_order(cfg.seed, epoch, n)[: steps * cfg.batch_size].reshape(steps, cfg.batch_size)


def _eval_indices(n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    batch = min(batch, n)
    steps = math.ceil(n / batch)
    idx = np.zeros(steps * batch, np.int32)
    idx[:n] = np.arange(n)
    w = np.zeros(steps * batch, np.float32)
    w[:n] = 1.0
    return idx.reshape(steps, batch), w.reshape(steps, batch)


def _data_size(data: Mapping[str, np.ndarray]) -> int:
    sizes = {k: int(np.shape(v)[0]) for k, v in data.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"data arrays disagree on the number of examples: {sizes}")
    return next(iter(sizes.values()))


def _absolute(path: epath.Path) -> epath.Path:
    return path if is_remote(path) else epath.Path(os.path.abspath(os.fspath(path)))


def _barrier(name: str) -> None:
    """Waits for every process (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _put(tree, sharding: NamedSharding):
    """Host numpy arrays -> global arrays with ``sharding``; every process holds the same full values
    (deterministic data and inits), so each fills in its own shards (works across hosts)."""
    return jax.tree.map(lambda a: jax.make_array_from_callback(np.shape(a), sharding, lambda idx, a=a: np.asarray(a)[idx]), tree)


def _fetch(x) -> np.ndarray:
    """A global array's full value on every process (gathered across hosts when needed)."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


@dataclasses.dataclass
class _Results:
    """The results table in memory (the same on every process), written to ``path`` by process 0 after
    every merge."""

    path: epath.Path
    frame: pd.DataFrame

    @classmethod
    def load(cls, path: epath.Path) -> "_Results":
        frame = read_parquet(path) if path.is_file() else pd.DataFrame(columns=list(RESULT_COLUMNS))
        return cls(path, frame)

    def done_epochs(self, model_id: int) -> int:
        rows = self.frame.loc[self.frame["model_id"] == model_id, "epoch"]
        return int(rows.max()) if len(rows) else 0

    def merge(self, rows: list[dict]) -> None:
        new = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        frame = frame.drop_duplicates(["model_id", "epoch"], keep="last").sort_values(["model_id", "epoch"])
        self.frame = frame.reset_index(drop=True)
        if jax.process_index() == 0:
            write_parquet_atomic(self.frame, self.path)
        _barrier("results_written")


def _exact_trainable(masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """Trainable weights (biases excluded) per model of stacked masks: the block RNN's W_* blocks or a cell's
    W_* matrices."""
    keys = [k for k in masks if k in BLOCKS or k.startswith("W_")]
    return sum(np.count_nonzero(masks[k].reshape(masks[k].shape[0], -1), axis=1) for k in keys)


@functools.lru_cache(maxsize=32)
def _jitted_programs(task: Task, family: str, activation: str, unroll: int, per_model_order: bool):
    """The jitted train and evaluate programs of a family, shared by every sweep of the same task in a
    process (so each padded shape compiles once per process)."""
    train_steps = jax.jit(make_train_steps(task, family, activation, unroll, per_model_order), donate_argnums=(0,))
    return train_steps, jax.jit(make_evaluate(task, family, activation, unroll))


def _final_params_dir(workdir, chunk: Chunk) -> epath.Path:
    return epath.Path(workdir) / "final_params" / chunk.key


def _save_final_params(workdir, chunk: Chunk, params) -> None:
    """Saves a chunk's trained (sharded) weights; every process takes part, orbax writes each shard once."""
    import orbax.checkpoint as ocp

    path = _final_params_dir(workdir, chunk)
    if jax.process_index() == 0 and path.exists():  # a retrained chunk reproduces the same weights
        path.rmtree()
    _barrier("final_params_clear")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(_absolute(path), dict(params))


def load_final_params(workdir: str | Path, chunk: Chunk, mask_mode: str = "exact"):
    """The trained weights of ``chunk`` saved by a sweep with ``save_final_params``: (params, masks), numpy
    pytrees with a leading axis over the chunk's real members (ghosts dropped); None if not saved."""
    import orbax.checkpoint as ocp

    path = _final_params_dir(workdir, chunk)
    if not path.exists():
        return None
    _, masks, _ = stack_chunk(chunk, mask_mode)
    with ocp.StandardCheckpointer() as ckptr:
        params = ckptr.restore(_absolute(path))
    n = len(chunk.members)
    return {k: np.asarray(v)[:n] for k, v in params.items()}, {k: v[:n] for k, v in masks.items()}


def describe_plan(members: Sequence[Member], cfg: SweepConfig, device_count: int) -> tuple[list[Chunk], float]:
    """The chunks a sweep will train and their padding efficiency (useful / executed matrix FLOPs)."""
    chunks = make_chunks(members, cfg.max_buckets, cfg.max_models_per_chunk, device_count)
    return chunks, padding_efficiency(chunks)


def run_sweep(
    members: Sequence[Member],
    task: Task,
    train_data: Mapping[str, np.ndarray],
    val_data: Mapping[str, np.ndarray],
    cfg: SweepConfig,
    workdir: str | Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    progress: bool = True,
    mesh: Mesh | None = None,
) -> pd.DataFrame:
    """Trains every member for ``cfg.epochs`` epochs (resuming from ``workdir`` where a previous run
    stopped) and returns the results table (also in ``workdir/results.parquet``)."""
    workdir = _absolute(epath.Path(workdir))  # orbax needs absolute paths
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = mesh or population_mesh()
    lead = jax.process_index() == 0
    progress = progress and lead
    if not lead:
        log = lambda _msg: None  # noqa: E731
    n_dev = mesh.devices.size
    n_train, n_val = _data_size(train_data), _data_size(val_data)
    if n_train < cfg.batch_size:
        raise ValueError(f"training set ({n_train}) is smaller than one batch ({cfg.batch_size})")
    steps_per_epoch = n_train // cfg.batch_size
    chunks, eff = describe_plan(members, cfg, n_dev)
    log(
        f"{len(members)} models in {len({c.bucket for c in chunks})} hidden-size buckets, {len(chunks)} chunks "
        f"on {n_dev} device(s); padding efficiency {eff:.1%}"
    )

    replicated = NamedSharding(mesh, PartitionSpec())
    by_model = NamedSharding(mesh, PartitionSpec(POPULATION_AXIS))
    train_dev = _put({k: np.asarray(v) for k, v in train_data.items()}, replicated)
    val_dev = _put({k: np.asarray(v) for k, v in val_data.items()}, replicated)
    eval_idx, eval_w = _eval_indices(n_val, cfg.eval_batch_size)

    results = _Results.load(workdir / "results.parquet")
    ckpt = SweepCheckpointer(workdir / "checkpoints")
    meta = ckpt.latest_meta()
    todo = [c for c in chunks if min(results.done_epochs(m.model_id) for m in c.members) < cfg.epochs]
    total = sum(
        (cfg.epochs - min(results.done_epochs(m.model_id) for m in c.members)) * steps_per_epoch for c in todo
    )
    bar = tqdm(total=total, unit="step", disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        for chunk in todo:
            train_steps, evaluate = _jitted_programs(task, chunk.family, chunk.activation, cfg.unroll, cfg.per_model_order)
            _train_chunk(
                chunk, task, cfg, train_dev, val_dev, eval_idx, eval_w, train_steps, evaluate, results, ckpt,
                meta if meta and meta.get("chunk") == chunk.key else None,
                by_model, n_train, steps_per_epoch, should_stop, bar, log,
            )
            meta = None
    finally:
        bar.close()
        ckpt.close()
    return results.frame


def _train_chunk(
    chunk: Chunk, task: Task, cfg: SweepConfig, train_dev, val_dev, eval_idx, eval_w, train_steps, evaluate,
    results: _Results, ckpt: SweepCheckpointer, resume_meta: dict | None, by_model: NamedSharding,
    n_train: int, steps_per_epoch: int, should_stop, bar, log,
) -> None:
    params_np, masks_np, lrs_np = stack_chunk(chunk, cfg.mask_mode)
    exact = _exact_trainable(masks_np)
    masks, lrs = _put(masks_np, by_model), _put(lrs_np, by_model)
    state = jax.jit(init_train_state, out_shardings=by_model)(_put(params_np, by_model))
    model_ids = [m.model_id for m in chunk.members] + [chunk.members[-1].model_id] * chunk.ghosts
    done = min(results.done_epochs(m.model_id) for m in chunk.members)
    epoch, start_step, loss_sum = done + 1, 0, np.zeros(chunk.size)
    if resume_meta is not None:
        state = ckpt.restore(state)
        epoch, start_step = resume_meta["epoch"], resume_meta["step"]
        loss_sum = np.asarray(resume_meta["loss_sum"], dtype=np.float64)
        log(f"resuming chunk {chunk.key} at epoch {epoch}, step {start_step}")
    elif done > 0:
        raise RuntimeError(
            f"chunk {chunk.key} has results up to epoch {done} but no checkpoint to resume from; "
            "rerun with --overwrite to start again"
        )
    s = cfg.steps_per_call
    static_rows = [
        {"model_id": m.model_id, "bucket": chunk.bucket, "seed": m.seed, "config": m.config, "task": task.name,
         "trainable_params_exact": int(exact[i]), **spec_columns(m.spec, m.seed)}
        for i, m in enumerate(chunk.members)
    ]
    while epoch <= cfg.epochs:
        idx = _epoch_indices(cfg, epoch, n_train, model_ids)
        pad = (-steps_per_epoch) % s
        idx = np.concatenate([idx, np.zeros((pad,) + idx.shape[1:], np.int32)])
        valid = np.arange(len(idx)) < steps_per_epoch
        bar.set_description(f"bucket {chunk.bucket} (h<={chunk.padded_hidden_dim}, {chunk.size} models) epoch {epoch}/{cfg.epochs}")
        step = start_step
        while step < steps_per_epoch:
            t0 = time.perf_counter()
            state, losses = train_steps(state, masks, lrs, train_dev, jnp.asarray(idx[step : step + s]), jnp.asarray(valid[step : step + s]))
            losses = _fetch(losses)[valid[step : step + s]]
            loss_sum += losses.sum(axis=0)
            n = min(s, steps_per_epoch - step)
            step += n
            bar.update(n)
            bar.set_postfix(steps_per_s=f"{n / (time.perf_counter() - t0):.1f}", refresh=False)
            if should_stop() and step < steps_per_epoch:
                ckpt.save(state, {"chunk": chunk.key, "epoch": epoch, "step": step, "loss_sum": loss_sum.tolist()})
                raise SweepInterrupted(f"stopped in chunk {chunk.key}, epoch {epoch}, step {step}; checkpoint saved")
        val_loss, val_acc = (_fetch(a) for a in evaluate(state.params, masks, val_dev, jnp.asarray(eval_idx), jnp.asarray(eval_w)))
        diverged = _fetch(state.diverged)
        train_loss = loss_sum / steps_per_epoch
        rows = []
        for i, base in enumerate(static_rows):
            rows.append({
                **base, "epoch": epoch, "train_loss": float(train_loss[i]), "val_loss": float(val_loss[i]),
                "val_accuracy": float(val_acc[i]) if task.has_accuracy else float("nan"), "diverged": bool(diverged[i]),
            })
        if epoch == cfg.epochs and cfg.save_final_params:  # before the rows that mark the chunk complete
            _save_final_params(results.path.parent, chunk, state.params)
        results.merge(rows)
        ckpt.save(state, {"chunk": chunk.key, "epoch": epoch + 1, "step": 0, "loss_sum": [0.0] * chunk.size})
        epoch, start_step, loss_sum = epoch + 1, 0, np.zeros(chunk.size)
        if should_stop() and epoch <= cfg.epochs:
            raise SweepInterrupted(f"stopped in chunk {chunk.key} after epoch {epoch - 1}; checkpoint saved")
