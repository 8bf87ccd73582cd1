"""What a run will do, before it does it: ``plan_run`` counts the members per Table III/IV cell, lays out the
buckets and chunks, and estimates executed FLOPs, peak device memory and wall time from a short calibration of
every compiled shape on the current device. It writes nothing and trains nothing.

Wall-time model (per chunk): compile + steps x step time + epochs x evaluation time, with the step and
evaluation times of each (family, activation, padded hidden size) measured on a small slice of the task's data on
up to ``calibration_models`` of its members (default: 16 on a CPU, where one model already fills the cores and
time grows linearly with the models; the whole chunk on an accelerator, where it does not) and scaled linearly to
the chunk's size, plus the data loading time scaled from the slice. Environment scoring is not included.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index
from sparse_rnn_jax.core.strata import parse_stratum_key, stratum_label
from sparse_rnn_jax.engine.members import build_members, stratified_members
from sparse_rnn_jax.engine.population import Chunk, make_chunks, padding_efficiency, stack_chunk
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.models.family import train_matmul_flops
from sparse_rnn_jax.models.registry import family_of
from sparse_rnn_jax.tasks.run import prepare
from sparse_rnn_jax.tasks.run_config import RunConfig

CALIBRATION_SEQUENCES = 64
"""Training sequences of the calibration slice (validation: a quarter of it)."""


def _cells(members) -> dict[str, dict[str, int]]:
    cols = [spec_columns(m.spec) for m in members]
    out = {}
    for metric in ("hidden_proportion", "model_density"):
        counts = np.bincount(bucket_index([c[metric] for c in cols]), minlength=len(BUCKET_LABELS))
        out[metric] = {label: int(n) for label, n in zip(BUCKET_LABELS, counts)}
    return out


def _chunk_flops(chunk: Chunk, seq_len: int) -> tuple[float, float]:
    """Matrix FLOPs of (training on, evaluating) one sequence in every model of the chunk at its padded size
    (ghosts too): ``train_matmul_flops`` and the forward's."""
    s = chunk.members[0].spec
    family = family_of(s)
    dims = (s.input_dim, chunk.padded_hidden_dim, s.output_dim)
    scale = chunk.size * seq_len
    return scale * train_matmul_flops(family, *dims), scale * family.matmul_flops(*dims)


def _model_bytes(chunk: Chunk) -> int:
    """Device bytes of a chunk's training state: params, Adam's two moments, gradients and the updated copy
    (5 x 4 bytes per parameter) plus the boolean masks."""
    s = chunk.members[0].spec
    arrays = family_of(s).init(s, 0, chunk.padded_hidden_dim)
    params = sum(int(np.size(v)) for v in arrays.params.values())
    masks = sum(int(np.size(v)) for v in arrays.masks.values())
    return chunk.size * (20 * params + masks)


def _slice_config(data_config, n_train: int, n_val: int):
    """The task config with its split sizes cut to a calibration slice (unchanged when it has none)."""
    fields = {f.name for f in dataclasses.fields(data_config)}
    changes = {k: v for k, v in (("train_size", n_train), ("val_size", n_val), ("test_size", 1)) if k in fields}
    return dataclasses.replace(data_config, **changes)


def plan_run(
    config: RunConfig,
    *,
    calibrate: bool = True,
    calibration_models: int | None = None,
    calibration_steps: int = 3,
    device_count: int | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> dict:
    """The plan of ``config`` (module docstring) as a JSON-able dict with keys ``models``, ``cells``
    (``hidden_proportion`` and ``model_density``, each mapping the five cell labels to counts), ``buckets``,
    ``chunks``, ``padding_efficiency``, ``executed_flops``, ``peak_memory_bytes``, ``estimated_seconds`` (None
    without calibration) and ``calibration`` (the measured times). RunError before any work on bad input."""
    import jax

    from sparse_rnn_jax.engine.devices import population_mesh, put, shardings
    from sparse_rnn_jax.engine.programs import choose_form, eval_indices, init_train_state, jitted_programs, run_steps
    from sparse_rnn_jax.engine.sweep import chunk_models, data_size

    input_dim, output_dim = prepare(config)
    if calibration_models is None:  # a CPU's step time grows linearly with the models; an accelerator's does not
        calibration_models = 16 if jax.default_backend() == "cpu" else 1 << 30
    train = config.train
    n_dev = device_count or jax.device_count()
    members = build_members(config.population, train.seed, input_dim, output_dim)
    chunks = make_chunks(members, train.max_buckets, chunk_models(members, train), n_dev)
    n_train = getattr(config.data, "train_size", None)
    n_val = getattr(config.data, "val_size", None)

    cal_call = min(train.steps_per_call, 10)  # steps per calibration call (compile time barely depends on it)
    cal_train = max(train.batch_size * cal_call, CALIBRATION_SEQUENCES)
    t0 = time.perf_counter()
    sliced = _slice_config(config.data, cal_train, max(1, cal_train // 4))
    data = config.task_def.load(sliced, lambda _s: None)
    load_seconds = time.perf_counter() - t0
    if n_train is None or n_val is None:  # sizes come from the data itself (e.g. a user's npz file)
        full = config.task_def.load(config.data, lambda _s: None)
        n_train, n_val = data_size(full.train), data_size(full.val)
    task = data.task
    seq_len = int(jax.jit(task.make_batch)(data.train, np.arange(1, dtype=np.int32)).x.shape[1])
    steps_per_epoch = n_train // train.batch_size
    bytes_per_example = sum(np.asarray(v).nbytes for v in data.train.values()) / data_size(data.train)
    data_bytes = int(bytes_per_example * (n_train + n_val))

    buckets: dict[int, dict] = {}
    executed = 0.0
    for ch in chunks:
        train_seq, fwd = _chunk_flops(ch, seq_len)
        flops = train.epochs * (train_seq * steps_per_epoch * train.batch_size + fwd * n_val)
        executed += flops
        b = buckets.setdefault(
            ch.bucket,
            {
                "bucket": ch.bucket,
                "family": ch.family,
                "activation": ch.activation,
                "padded_hidden_dim": ch.padded_hidden_dim,
                "program_form": choose_form(train.program_form, train.compute_dtype),
                "models": 0,
                "chunks": 0,
                "executed_flops": 0.0,
            },
        )
        b["models"] += len(ch.members)
        b["chunks"] += 1
        b["executed_flops"] += flops
    plan = {
        "task": task.name,
        "models": len(members),
        "devices": n_dev,
        "cells": _cells(members),
        "buckets": list(buckets.values()),
        "chunks": len(chunks),
        "padding_efficiency": padding_efficiency(chunks),
        "sequence_steps": seq_len,
        "steps_per_epoch": steps_per_epoch,
        "epochs": train.epochs,
        "compute_dtype": train.compute_dtype,
        "executed_flops": executed,
        "data_bytes": data_bytes,
        "peak_memory_bytes": data_bytes + max(_model_bytes(c) for c in chunks),
        "estimated_seconds": None,
        "calibration": None,
        "strata": (
            stratified_members(config.population, train.seed, input_dim, output_dim).as_dict()
            if config.population.stratify != "none"
            else None
        ),
    }
    if not calibrate:
        return plan

    mesh = population_mesh()
    replicated, by_model = shardings(mesh)
    train_dev = put({k: np.asarray(v) for k, v in data.train.items()}, replicated)
    val_dev = put({k: np.asarray(v) for k, v in data.val.items()}, replicated)
    n_cal_val = data_size(data.val)
    eval_idx, eval_w = eval_indices(n_cal_val, train.eval_batch_size)
    rng = np.random.default_rng(0)
    shapes: dict[tuple, dict] = {}
    for ch in chunks:
        key = (ch.family, ch.activation, ch.padded_hidden_dim)
        if key in shapes:
            continue
        p = min(len(ch.members), calibration_models)
        p += (-p) % n_dev
        probe = (
            dataclasses.replace(ch, members=ch.members[:p], ghosts=0)
            if p <= len(ch.members)
            else dataclasses.replace(ch, ghosts=p - len(ch.members))
        )
        params, masks, lrs = stack_chunk(probe, train.mask_mode)
        masks, lrs = put(masks, by_model), put(lrs, by_model)
        train_steps, evaluate = jitted_programs(
            task,
            ch.family,
            ch.activation,
            train.unroll,
            train.per_model_order,
            train.compute_dtype,
            choose_form(train.program_form, train.compute_dtype),
        )
        idx_shape = (
            (train.steps_per_call, p, train.batch_size)
            if train.per_model_order
            else (train.steps_per_call, train.batch_size)
        )
        idx = rng.integers(
            0, data_size(data.train), size=(calibration_steps * train.steps_per_call,) + idx_shape[1:]
        ).astype(np.int32)
        state = put(init_train_state(params), by_model)
        t0 = time.perf_counter()
        state, _ = run_steps(
            train_steps, state, masks, lrs, train_dev, idx[: train.steps_per_call], train.steps_per_call
        )  # compile and one call
        jax.block_until_ready(state)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        state, _ = run_steps(
            train_steps, state, masks, lrs, train_dev, idx[train.steps_per_call :], train.steps_per_call
        )
        jax.block_until_ready(state)
        step = (time.perf_counter() - t0) / max(1, (calibration_steps - 1) * train.steps_per_call)
        ev = lambda: jax.block_until_ready(evaluate(state.params, masks, val_dev, eval_idx, eval_w))  # noqa: E731
        t0 = time.perf_counter()
        ev()
        eval_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev()
        eval_time = time.perf_counter() - t0
        compile_s = max(0.0, first - step * cal_call) + max(0.0, eval_first - eval_time)
        shapes[key] = {
            "models": p,
            "step_seconds": step,
            "eval_seconds_per_sequence": eval_time / n_cal_val,
            "compile_seconds": compile_s,
        }
        log(
            f"calibrated {ch.family} h<={ch.padded_hidden_dim}: {step * 1e3:.1f} ms/step for {p} models, "
            f"compile {compile_s:.1f} s"
        )
    total = load_seconds * (n_train + n_val) / (cal_train + max(1, cal_train // 4))
    compiled: set[tuple] = set()
    for ch in chunks:
        c = shapes[(ch.family, ch.activation, ch.padded_hidden_dim)]
        scale = ch.size / c["models"]
        total += train.epochs * (steps_per_epoch * c["step_seconds"] + n_val * c["eval_seconds_per_sequence"]) * scale
        shape = (ch.family, ch.activation, ch.padded_hidden_dim, ch.size)
        if shape not in compiled:
            compiled.add(shape)
            total += c["compile_seconds"]
    plan["estimated_seconds"] = float(total)
    plan["calibration"] = {
        "shapes": [{"family": k[0], "activation": k[1], "padded_hidden_dim": k[2], **v} for k, v in shapes.items()],
        "slice_load_seconds": load_seconds,
        "slice_sequences": cal_train,
    }
    return plan


def plan_text(plan: dict) -> str:
    """The plan as a few lines for a terminal."""
    from sparse_rnn_jax.core.accounting import BUCKET_LABELS as labels

    lines = [
        f"{plan['models']} models of task {plan['task']} in {len(plan['buckets'])} buckets, {plan['chunks']} chunks "
        f"on {plan['devices']} device(s); padding efficiency {plan['padding_efficiency']:.1%}"
    ]
    width = 9
    lines.append(f"{'cell':<20}" + "".join(f"{lab:>{width}}" for lab in labels))
    for metric, counts in plan["cells"].items():
        lines.append(f"{metric:<20}" + "".join(f"{counts[lab]:>{width}}" for lab in labels))
    if plan.get("strata"):
        st = plan["strata"]
        lines.append(
            f"stratified: {st['sampled']} of a drawn population of {st['population']:,} "
            f"({st['extra_draws']:,} further draws filled the sparse strata); per stratum, population -> trained:"
        )
        for key, c in st["strata"].items():
            lines.append(f"  {stratum_label(parse_stratum_key(key)):<28}{c['population']:>7,} -> {c['sampled']}")
    lines.append(f"{'bucket':>6} {'family':<12}{'h<=':>6}{'models':>8}{'chunks':>8}{'PFLOP':>9}")
    for b in plan["buckets"]:
        lines.append(
            f"{b['bucket']:>6} {b['family']:<12}{b['padded_hidden_dim']:>6}{b['models']:>8}{b['chunks']:>8}"
            f"{b['executed_flops'] / 1e15:>9.3f}"
        )
    lines.append(
        f"{plan['epochs']} epochs x {plan['steps_per_epoch']} steps of {plan['sequence_steps']}-step "
        f"sequences; executed {plan['executed_flops'] / 1e15:.2f} PFLOP with {plan.get('compute_dtype', 'float32')} "
        "operands; peak device memory about "
        f"{plan['peak_memory_bytes'] / 2**30:.2f} GiB (data {plan['data_bytes'] / 2**30:.2f} GiB)"
    )
    if plan["estimated_seconds"] is not None:
        s = plan["estimated_seconds"]
        lines.append(
            f"estimated wall time: {s / 60:.1f} min ({s / 3600:.2f} h) on this device "
            "(calibrated; environment scoring not included)"
        )
    return "\n".join(lines)
