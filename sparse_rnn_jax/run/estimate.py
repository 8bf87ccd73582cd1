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
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from sparse_rnn_jax.core.accounting import BUCKET_LABELS, bucket_index
from sparse_rnn_jax.core.strata import parse_stratum_key, stratum_label
from sparse_rnn_jax.engine.members import stratified_members
from sparse_rnn_jax.engine.population import Chunk
from sparse_rnn_jax.engine.results import spec_columns
from sparse_rnn_jax.models.family import train_matmul_flops
from sparse_rnn_jax.models.registry import family_of
from sparse_rnn_jax.run.config import RunConfig
from sparse_rnn_jax.run.train import preflight, run_plan

DEFAULT_CACHE = Path(os.path.expanduser("~")) / ".cache" / "sparse_rnn_jax" / "plan_calibration.json"
"""Where ``plan_run`` keeps its measured calibrations (``CalibrationCache``)."""
QUICK_CALL_STEPS = 5
"""Steps per calibration call of a quick plan (the full plan times calls of the run's own ``steps_per_call``)."""
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


def _model_bytes(chunk: Chunk, compact: bool = False) -> int:
    """Device bytes of a chunk's training state: params, Adam's two moments, gradients and the updated copy
    (5 x 4 bytes per parameter) plus the boolean masks; a compact layout (``engine.layout``) adds 8 bytes per
    parameter at most (its int32 indices and the compact copies: 28 against 20 bytes per entry in the compiled
    program of the bench's 16 models at |h| 224)."""
    s = chunk.members[0].spec
    arrays = family_of(s).init(s, 0, chunk.padded_hidden_dim)
    params = sum(int(np.size(v)) for v in arrays.params.values())
    masks = sum(int(np.size(v)) for v in arrays.masks.values())
    return chunk.size * ((28 if compact else 20) * params + masks)


class CalibrationCache:
    """Measured calibrations in a JSON file: {context key: {"family|activation|h": times}}. An unreadable file is
    an empty cache; writes are whole-or-nothing (a temporary file renamed into place)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _key(context: dict) -> str:
        return json.dumps(context, sort_keys=True)

    def get(self, context: dict, shape: tuple) -> dict | None:
        """The cached times of ``shape`` (family, activation, padded hidden size) in ``context``, or None."""
        hit = self._read().get(self._key(context), {}).get("|".join(map(str, shape)))
        ok = isinstance(hit, dict) and all(
            isinstance(hit.get(k), (int, float))
            for k in ("models", "step_seconds", "eval_seconds_per_sequence", "compile_seconds")
        )
        return dict(hit) if ok else None

    def put(self, context: dict, shapes: dict) -> None:
        """Adds measured ``shapes`` to ``context``; a cache that cannot be written is left as it was."""
        if not shapes:
            return
        data = self._read()
        entry = data.setdefault(self._key(context), {})
        for shape, times in shapes.items():
            entry["|".join(map(str, shape))] = {k: v for k, v in times.items() if k != "source"}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.path)
        except OSError:
            pass


def _scaled(refs: list[tuple[dict, Chunk]], chunk: Chunk, seq_len: int) -> dict:
    """The times of ``chunk``'s shape from measured reference shapes: per model, a + b x matrix FLOPs per sequence
    through the references (step and evaluation; proportional with one reference), the compile time their mean."""

    def per_model(times: dict, ch: Chunk, what: str, which: int) -> tuple[float, float]:
        flops = _chunk_flops(ch, seq_len)[which] / ch.size
        return flops, times[what] / times["models"]

    def fit(what: str, which: int) -> float:
        points = [per_model(t, c, what, which) for t, c in refs]
        x = _chunk_flops(chunk, seq_len)[which] / chunk.size
        if len(points) == 1 or points[1][0] <= points[0][0]:
            f0, t0 = points[0]
            return t0 * x / f0
        (f0, t0), (f1, t1) = points
        slope = max(0.0, (t1 - t0) / (f1 - f0))
        return max(0.0, t0 + slope * (x - f0))

    models = refs[0][0]["models"]
    return {
        "models": models,
        "step_seconds": fit("step_seconds", 0) * models,
        "eval_seconds_per_sequence": fit("eval_seconds_per_sequence", 1) * models,
        "compile_seconds": float(np.mean([t["compile_seconds"] for t, _ in refs])),
        "source": "scaled",
    }


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
    quick: bool = False,
    cache_path: str | os.PathLike | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> dict:
    """The plan of ``config`` (module docstring) as a JSON-able dict with keys ``models``, ``cells``
    (``hidden_proportion`` and ``model_density``, each mapping the five cell labels to counts), ``buckets``,
    ``chunks``, ``padding_efficiency``, ``executed_flops``, ``peak_memory_bytes``, ``estimated_seconds`` (None
    without calibration), ``calibration`` (the measured times) and ``plan`` (the run's ``RunPlan``, as run.json
    records it). RunError before any work on bad input.

    Every measured shape is kept in a calibration cache (``cache_path``, default ``DEFAULT_CACHE``) keyed by the
    device, JAX version, task dims and training settings, and reused by later plans. ``quick`` compiles at most
    two shapes (the narrowest and widest not cached) and interpolates the others by their matrix FLOPs."""
    import jax

    from sparse_rnn_jax.engine.devices import population_mesh, put, shardings
    from sparse_rnn_jax.engine.layout import resolve_layout
    from sparse_rnn_jax.engine.programs import PopulationProgram, choose_form
    from sparse_rnn_jax.engine.sweep import data_size

    input_dim, output_dim = preflight(config)
    cache_path = Path(cache_path) if cache_path is not None else DEFAULT_CACHE
    if calibration_models is None:  # a CPU's step time grows linearly with the models; an accelerator's does not
        calibration_models = 16 if jax.default_backend() == "cpu" else 1 << 30
    train = config.train
    n_dev = device_count or jax.device_count()
    form = choose_form(train.program_form)
    layout = resolve_layout(train.weight_layout, train.compute_dtype, form, devices=n_dev)
    run = run_plan(config, n_dev)
    members, chunks = run.members, run.chunks
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
    objective = data.objective
    seq_len = int(jax.jit(objective.make_batch)(data.train, np.arange(1, dtype=np.int32)).x.shape[1])
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
                "program_form": form,
                "weight_layout": layout,
                "models": 0,
                "chunks": 0,
                "executed_flops": 0.0,
            },
        )
        b["models"] += len(ch.members)
        b["chunks"] += 1
        b["executed_flops"] += flops
    plan = {
        "task": objective.name,
        "models": len(members),
        "devices": n_dev,
        "cells": _cells(members),
        "buckets": list(buckets.values()),
        "chunks": len(chunks),
        "padding_efficiency": run.padding_efficiency,
        "sequence_steps": seq_len,
        "steps_per_epoch": steps_per_epoch,
        "epochs": train.epochs,
        "compute_dtype": train.compute_dtype,
        "executed_flops": executed,
        "data_bytes": data_bytes,
        "peak_memory_bytes": data_bytes + max(_model_bytes(c, layout == "compact") for c in chunks),
        "estimated_seconds": None,
        "calibration": None,
        "plan": run.as_dict(),
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
    rng = np.random.default_rng(0)
    call_len = min(train.steps_per_call, QUICK_CALL_STEPS) if quick else train.steps_per_call

    def calibrate(ch: Chunk) -> dict:
        """Compiles and times the chunk's programs on a probe of up to ``calibration_models`` of its members."""
        p = min(len(ch.members), calibration_models)
        p += (-p) % n_dev
        probe = (
            dataclasses.replace(ch, members=ch.members[:p], ghosts=0)
            if p <= len(ch.members)
            else dataclasses.replace(ch, ghosts=p - len(ch.members))
        )
        program = PopulationProgram.for_chunk(probe, objective, train, by_model)
        program = dataclasses.replace(program, steps_per_call=call_len)
        population = program.stack(probe, train.mask_mode)
        idx_shape = (call_len, p, train.batch_size) if train.per_model_order else (call_len, train.batch_size)
        idx = rng.integers(0, data_size(data.train), size=(calibration_steps * call_len,) + idx_shape[1:]).astype(
            np.int32
        )
        t0 = time.perf_counter()
        population, _ = program.train(population, train_dev, idx[:call_len])  # compile and one call
        jax.block_until_ready(population.state)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        population, _ = program.train(population, train_dev, idx[call_len:])
        jax.block_until_ready(population.state)
        step = (time.perf_counter() - t0) / max(1, (calibration_steps - 1) * call_len)
        ev = lambda: program.evaluate(population.state.params, population.masks, val_dev)  # noqa: E731
        t0 = time.perf_counter()
        ev()
        eval_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev()
        eval_time = time.perf_counter() - t0
        compile_s = max(0.0, first - step * call_len) + max(0.0, eval_first - eval_time)
        log(
            f"calibrated {ch.family} h<={ch.padded_hidden_dim}: {step * 1e3:.1f} ms/step for {p} models, "
            f"compile {compile_s:.1f} s"
        )
        return {
            "models": p,
            "step_seconds": step,
            "eval_seconds_per_sequence": eval_time / n_cal_val,
            "compile_seconds": compile_s,
            "source": "measured",
        }

    context = {
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "devices": n_dev,
        "jax": jax.__version__,
        "task": objective.name,
        "dims": [input_dim, output_dim, seq_len],
        "train": [train.batch_size, train.steps_per_call, train.unroll, train.per_model_order, train.mask_mode],
        "eval_batch_size": train.eval_batch_size,
        "precision": config.matmul_precision,
        "compute": [train.compute_dtype, form, layout],
        "calibration_models": calibration_models,
    }
    cache = CalibrationCache(cache_path)
    shapes: dict[tuple, dict] = {}
    firsts: dict[tuple, Chunk] = {}
    for ch in chunks:
        firsts.setdefault((ch.family, ch.activation, ch.padded_hidden_dim), ch)
    for key in firsts:
        hit = cache.get(context, key)
        if hit is not None:
            shapes[key] = {**hit, "source": "cached"}
    missing = [k for k in firsts if k not in shapes]
    if quick and missing:  # two compiles: the narrowest and widest missing shapes; the others interpolated
        refs = sorted({min(missing, key=lambda k: k[2]), max(missing, key=lambda k: k[2])}, key=lambda k: k[2])
        for ref in refs:
            shapes[ref] = calibrate(firsts[ref])
        for key in missing:
            if key not in refs:
                shapes[key] = _scaled([(shapes[r], firsts[r]) for r in refs], firsts[key], seq_len)
    else:
        for key in missing:
            shapes[key] = calibrate(firsts[key])
    cache.put(context, {k: v for k, v in shapes.items() if v["source"] == "measured"})
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
        "quick": quick,
        "sources": {src: sum(v["source"] == src for v in shapes.values()) for src in ("measured", "cached", "scaled")},
        "cache": str(cache_path),
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
            f"({_calibration_words(plan['calibration'])}; environment scoring not included)"
        )
    return "\n".join(lines)


def _calibration_words(cal: dict | None) -> str:
    """How the estimate was calibrated, in words."""
    if not cal or "sources" not in cal:
        return "calibrated"
    n = cal["sources"]
    parts = [f"{n[k]} shape(s) {k}" for k in ("measured", "cached", "scaled") if n.get(k)]
    words = "calibration: " + ", ".join(parts)
    if n.get("scaled"):
        words += " by FLOPs between the narrowest and widest (quick; a full --plan measures each)"
    return words
