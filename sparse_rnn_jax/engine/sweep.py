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

import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding
from tqdm.auto import tqdm

from sparse_rnn_jax.core.rng import rng as core_rng
from sparse_rnn_jax.engine.checkpoint import SweepCheckpointer
from sparse_rnn_jax.engine.config import SweepConfig
from sparse_rnn_jax.engine.devices import barrier, fetch, is_lead, population_mesh, put, shardings
from sparse_rnn_jax.engine.population import Chunk, Member, make_chunks, padding_efficiency, stack_chunk
from sparse_rnn_jax.engine.programs import eval_indices, init_train_state, jitted_programs, run_steps
from sparse_rnn_jax.engine.results import ResultsTable, spec_columns
from sparse_rnn_jax.engine.task import Task
from sparse_rnn_jax.engine.workdir import CHECKPOINTS_DIR, RESULTS_FILE, absolute, final_params_dir
from sparse_rnn_jax.models.masks import trainable_counts
from sparse_rnn_jax.models.registry import family_of


class SweepInterrupted(RuntimeError):
    """Raised after a stop request, once the checkpoint to resume from is written."""


def epoch_order(seed: int, epoch: int, n: int, model_id: int | None = None) -> np.ndarray:
    """Permutation int32[n] of the training examples for ``epoch`` (1-based)."""
    key = [int(seed), int(epoch)] if model_id is None else [int(seed), int(epoch), int(model_id), 1]
    return core_rng(*key).permutation(n).astype(np.int32)


def epoch_indices(cfg: SweepConfig, epoch: int, n: int, model_ids: Sequence[int]) -> np.ndarray:
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


def _save_final_params(workdir, chunk: Chunk, params) -> None:
    """Saves a chunk's trained (sharded) weights; every process takes part, orbax writes each shard once."""
    import orbax.checkpoint as ocp

    path = final_params_dir(workdir, chunk.key)
    if is_lead() and path.exists():  # a retrained chunk reproduces the same weights
        path.rmtree()
    barrier("final_params_clear")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(absolute(path), dict(params))


def load_final_params(workdir: str | Path, chunk: Chunk, mask_mode: str = "exact"):
    """The trained weights of ``chunk`` saved by a sweep with ``save_final_params``: (params, masks), numpy
    pytrees with a leading axis over the chunk's real members (ghosts dropped); None if not saved."""
    import orbax.checkpoint as ocp

    path = final_params_dir(workdir, chunk.key)
    if not path.exists():
        return None
    _, masks, _ = stack_chunk(chunk, mask_mode)
    with ocp.StandardCheckpointer() as ckptr:
        params = ckptr.restore(absolute(path))
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
    workdir = absolute(workdir)  # orbax needs absolute paths
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = mesh or population_mesh()
    lead = is_lead()
    progress = progress and lead
    if not lead:
        log = lambda _msg: None  # noqa: E731
    n_dev = mesh.devices.size
    n_train, n_val = data_size(train_data), data_size(val_data)
    if n_train < cfg.batch_size:
        raise ValueError(f"training set ({n_train}) is smaller than one batch ({cfg.batch_size})")
    steps_per_epoch = n_train // cfg.batch_size
    chunks, eff = describe_plan(members, cfg, n_dev)
    log(
        f"{len(members)} models in {len({c.bucket for c in chunks})} hidden-size buckets, {len(chunks)} chunks "
        f"on {n_dev} device(s); padding efficiency {eff:.1%}"
    )

    replicated, by_model = shardings(mesh)
    train_dev = put({k: np.asarray(v) for k, v in train_data.items()}, replicated)
    val_dev = put({k: np.asarray(v) for k, v in val_data.items()}, replicated)
    eval_idx, eval_w = eval_indices(n_val, cfg.eval_batch_size)

    results = ResultsTable.load(workdir / RESULTS_FILE, write=lead)
    ckpt = SweepCheckpointer(workdir / CHECKPOINTS_DIR)
    meta = ckpt.latest_meta()
    todo = [c for c in chunks if min(results.done_epochs(m.model_id) for m in c.members) < cfg.epochs]
    total = sum((cfg.epochs - min(results.done_epochs(m.model_id) for m in c.members)) * steps_per_epoch for c in todo)
    bar = tqdm(total=total, unit="step", disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        for chunk in todo:
            train_steps, evaluate = jitted_programs(
                task, chunk.family, chunk.activation, cfg.unroll, cfg.per_model_order
            )
            _train_chunk(
                chunk,
                task,
                cfg,
                train_dev,
                val_dev,
                eval_idx,
                eval_w,
                train_steps,
                evaluate,
                results,
                ckpt,
                meta if meta and meta.get("chunk") == chunk.key else None,
                by_model,
                n_train,
                steps_per_epoch,
                should_stop,
                bar,
                log,
            )
            meta = None
    finally:
        bar.close()
        ckpt.close()
    return results.frame


def _train_chunk(
    chunk: Chunk,
    task: Task,
    cfg: SweepConfig,
    train_dev,
    val_dev,
    eval_idx,
    eval_w,
    train_steps,
    evaluate,
    results: ResultsTable,
    ckpt: SweepCheckpointer,
    resume_meta: dict | None,
    by_model: NamedSharding,
    n_train: int,
    steps_per_epoch: int,
    should_stop,
    bar,
    log,
) -> None:
    params_np, masks_np, lrs_np = stack_chunk(chunk, cfg.mask_mode)
    exact = family_trainable(chunk, masks_np)
    masks, lrs = put(masks_np, by_model), put(lrs_np, by_model)
    state = jax.jit(init_train_state, out_shardings=by_model)(put(params_np, by_model))
    model_ids = [m.model_id for m in chunk.members] + [chunk.members[-1].model_id] * chunk.ghosts
    done = min(results.done_epochs(m.model_id) for m in chunk.members)
    epoch, start_step, loss_sum = done + 1, 0, np.zeros(chunk.size)
    if resume_meta is not None:
        state = ckpt.restore(state)
        epoch, start_step = resume_meta["epoch"], resume_meta["step"]
        loss_sum = np.asarray(resume_meta["loss_sum"], dtype=np.float64)
        log(f"resuming chunk {chunk.key} at epoch {epoch}, step {start_step}")
    elif done > 0:
        raise RuntimeError(f"chunk {chunk.key} has results up to epoch {done} but no checkpoint to resume from")
    static_rows = [
        {
            "model_id": m.model_id,
            "bucket": chunk.bucket,
            "seed": m.seed,
            "config": m.config,
            "task": task.name,
            "trainable_params_exact": int(exact[i]),
            **spec_columns(m.spec, m.seed),
        }
        for i, m in enumerate(chunk.members)
    ]
    while epoch <= cfg.epochs:
        idx = epoch_indices(cfg, epoch, n_train, model_ids)
        bar.set_description(
            f"bucket {chunk.bucket} (h<={chunk.padded_hidden_dim}, {chunk.size} models) epoch {epoch}/{cfg.epochs}"
        )
        clock = [time.perf_counter()]

        def after_call(_state, losses, n, step, clock=clock):
            nonlocal loss_sum
            loss_sum += losses.sum(axis=0)
            bar.update(n)
            now = time.perf_counter()
            bar.set_postfix(steps_per_s=f"{n / (now - clock[0]):.1f}", refresh=False)
            clock[0] = now
            return should_stop() and step < steps_per_epoch

        state, step = run_steps(
            train_steps,
            state,
            masks,
            lrs,
            train_dev,
            idx,
            cfg.steps_per_call,
            start=start_step,
            after_call=after_call,
            fetch=fetch,
        )
        if step < steps_per_epoch:
            ckpt.save(state, {"chunk": chunk.key, "epoch": epoch, "step": step, "loss_sum": loss_sum.tolist()})
            raise SweepInterrupted(f"stopped in chunk {chunk.key}, epoch {epoch}, step {step}; checkpoint saved")
        val_loss, val_acc = (
            fetch(a) for a in evaluate(state.params, masks, val_dev, jnp.asarray(eval_idx), jnp.asarray(eval_w))
        )
        diverged = fetch(state.diverged)
        train_loss = loss_sum / steps_per_epoch
        rows = []
        for i, base in enumerate(static_rows):
            rows.append(
                {
                    **base,
                    "epoch": epoch,
                    "train_loss": float(train_loss[i]),
                    "val_loss": float(val_loss[i]),
                    "val_accuracy": float(val_acc[i]) if task.has_accuracy else float("nan"),
                    "diverged": bool(diverged[i]),
                }
            )
        if epoch == cfg.epochs and cfg.save_final_params:  # before the rows that mark the chunk complete
            _save_final_params(results.path.parent, chunk, state.params)
        results.merge(rows)
        barrier("results_written")
        ckpt.save(state, {"chunk": chunk.key, "epoch": epoch + 1, "step": 0, "loss_sum": [0.0] * chunk.size})
        epoch, start_step, loss_sum = epoch + 1, 0, np.zeros(chunk.size)
        if should_stop() and epoch <= cfg.epochs:
            raise SweepInterrupted(f"stopped in chunk {chunk.key} after epoch {epoch - 1}; checkpoint saved")


def family_trainable(chunk: Chunk, masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """Trainable weights (biases excluded) per model of a chunk's stacked masks: its family's weight arrays."""
    return trainable_counts(masks, family_of(chunk.members[0].spec).weight_keys.values())
