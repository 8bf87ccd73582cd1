"""Measurements behind ``experiments.bench``: population throughput, the loop baseline, matmul peak,
padding efficiency and input wait. Every timing blocks on the device result and excludes compilation
(one warm-up call per compiled shape).

Throughput unit: *model-sequences per second* = models x sequences trained per second.
Executed matrix FLOPs of one training step of one model: ``models.family.train_matmul_flops`` (the forward, the
weight gradients and the state cotangents; the input gets none) at the padded hidden size.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparse_rnn_jax.engine.config import TrainConfig
from sparse_rnn_jax.engine.devices import population_mesh, shardings
from sparse_rnn_jax.engine.population import Chunk, Member
from sparse_rnn_jax.engine.programs import PopulationProgram
from sparse_rnn_jax.engine.run_plan import plan_members
from sparse_rnn_jax.engine.task import Objective
from sparse_rnn_jax.models.family import train_matmul_flops
from sparse_rnn_jax.models.registry import family_of


def synthetic_rad_data(
    n: int, images_per_sequence: int = 10, image_size: int = 50, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random uint8 images shaped like RAD (speed does not depend on their content)."""
    rng = np.random.default_rng(seed)
    return {
        "images": rng.integers(0, 256, size=(n, images_per_sequence, image_size * image_size), dtype=np.uint8),
        "labels": rng.integers(0, images_per_sequence, size=n).astype(np.int32),
    }


@dataclasses.dataclass(frozen=True)
class PopulationTiming:
    """Timing of one population: seconds and FLOPs per minibatch step of every model, input wait."""

    models: int
    chunks: int
    seconds_per_step: float  # one minibatch step of every model (all chunks, summed)
    executed_flops_per_step: float
    useful_flops_per_step: float
    input_seconds_per_step: float  # host-side input preparation and transfer
    model_sequences_per_s: float
    weight_entries: int = 0  # float32 entries of every chunk's (padded) weights

    @property
    def flops_per_s(self) -> float:
        """Executed matrix FLOP/s."""
        return self.executed_flops_per_step / self.seconds_per_step

    @property
    def input_wait_fraction(self) -> float:
        """Share of a step's time spent preparing and moving its inputs."""
        return self.input_seconds_per_step / (self.input_seconds_per_step + self.seconds_per_step)


def _chunk_flops(chunk: Chunk, batch: int, steps_per_seq: int) -> tuple[float, float]:
    s = chunk.members[0].spec
    family = family_of(s)
    executed = chunk.size * train_matmul_flops(family, s.input_dim, chunk.padded_hidden_dim, s.output_dim)
    useful = sum(
        train_matmul_flops(family, m.spec.input_dim, m.spec.hidden_dim, m.spec.output_dim) for m in chunk.members
    )
    return batch * steps_per_seq * executed, batch * steps_per_seq * useful


def time_population(
    members: Sequence[Member],
    task: Objective,
    data: dict[str, np.ndarray],
    seq_len: int,
    batch_size: int = 16,
    steps_per_call: int = 10,
    calls: int = 3,
    max_buckets: int = 8,
    max_models_per_chunk: int = 512,
    activation: str = "relu",
    unroll: int = 1,
    compute_dtype: str = "float32",
    form: str = "auto",
    weight_layout: str = "auto",
) -> PopulationTiming:
    """Times the sweep's own jitted train program on ``members`` (planned, bucketed and chunked as a sweep plans
    them: ``engine.run_plan.plan_members``), its products with the data in ``compute_dtype``, each chunk's models
    batched or looped (``form``) and their sparse weights stepped dense or compact (``weight_layout``), both resolved
    as a sweep resolves them."""
    mesh = population_mesh()
    cfg = TrainConfig(
        batch_size=batch_size,
        steps_per_call=steps_per_call,
        max_buckets=max_buckets,
        max_models_per_chunk=max_models_per_chunk,
        unroll=unroll,
        compute_dtype=compute_dtype,
        program_form=form,
        weight_layout=weight_layout,
    )
    plan = plan_members(members, cfg, mesh.devices.size)

    replicated, by_model = shardings(mesh)
    data_dev = {k: jax.device_put(v, replicated) for k, v in data.items()}
    n = len(next(iter(data.values())))
    rng = np.random.default_rng(0)
    total = input_total = 0.0
    executed = useful = 0.0
    entries = 0
    for chunk in plan.chunks:
        program = dataclasses.replace(PopulationProgram.for_chunk(chunk, task, cfg, by_model), activation=activation)
        population = program.stack(chunk)
        entries += sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(population.state.params))
        t0 = time.perf_counter()
        idx = rng.integers(0, n, size=((calls + 1) * steps_per_call, batch_size)).astype(np.int32)
        jax.block_until_ready(jnp.asarray(idx[:steps_per_call]))
        input_total += (time.perf_counter() - t0) / (calls + 1) / steps_per_call
        ticks: list[float] = []
        population, _ = program.train(population, data_dev, idx[:steps_per_call])  # compile
        jax.block_until_ready(population.state)
        ticks.append(time.perf_counter())
        program.train(
            population,
            data_dev,
            idx[steps_per_call:],
            after_call=lambda *_: ticks.append(time.perf_counter()) and False,
        )
        total += (ticks[-1] - ticks[0]) / calls / steps_per_call
        e, u = _chunk_flops(chunk, batch_size, seq_len)
        executed, useful = executed + e, useful + u
    per_step, input_per_step = total, input_total
    return PopulationTiming(
        models=len(members),
        chunks=len(plan.chunks),
        seconds_per_step=per_step,
        executed_flops_per_step=executed,
        useful_flops_per_step=useful,
        input_seconds_per_step=input_per_step,
        model_sequences_per_s=len(members) * batch_size / per_step,
        weight_entries=entries,
    )


def weight_pass_seconds(entries: int, repeats: int = 5) -> float:
    """Seconds of the memory-bound part of one train step over ``entries`` float32 weights, timed alone (best of
    ``repeats``): the masked gradient, its finiteness check, Adam's two moments and the masked weight update, as the
    engine's step does them per weight-sized array, in one jitted program with its buffers donated."""
    import optax

    opt = optax.adam(1e-3)
    w = jnp.full((entries,), 0.01, jnp.float32)
    mask = (jnp.arange(entries) % 5 == 0).astype(jnp.float32)
    g = jnp.full((entries,), 1e-3, jnp.float32)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def update(w, state, g):
        g = g * mask
        ok = jnp.all(jnp.isfinite(g))
        step, state = opt.update(g, state, w)
        return jnp.where(ok, (w + step) * mask, w), state

    state = opt.init(w)
    w, state = jax.block_until_ready(update(w, state, g))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        w, state = jax.block_until_ready(update(w, state, g))
        best = min(best, time.perf_counter() - t0)
    return best


GUARD_BARS: dict[str, float] = {
    "flop_utilization_float32": 0.40,
    "speedup_vs_reference_style": 100.0,
    "padding_efficiency": 0.85,
    "bfloat16_speedup": 1.3,
}
"""The bench's regression guard: the float32 population's FLOP utilisation against the float32 matmul peak timed
next to it, the speed-up over the paper's reference style, the Table IV padding efficiency, and (in a bfloat16
run) the model-sequences/s of bfloat16 operands over float32, timed back to back."""


def regression_guard(values: dict[str, float | None]) -> dict[str, dict]:
    """Each guard of ``GUARD_BARS`` present in ``values``: {"value", "bar", "ok"}; ``ok`` is None (not measured)
    where the value is None (e.g. no torch for the reference style)."""
    return {
        name: {"value": values[name], "bar": bar, "ok": None if values[name] is None else bool(values[name] >= bar)}
        for name, bar in GUARD_BARS.items()
        if name in values
    }


def time_loop(members: Sequence[Member], time_one: Callable[[Sequence[Member]], PopulationTiming]) -> float:
    """Seconds per step of training ``members`` one at a time through the same jitted code."""
    return sum(time_one([m]).seconds_per_step for m in members)


def matmul_peak_flops(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
    """FLOP/s of a large dense n x n matmul on the default device (the practical peak), operands in ``dtype``
    (a name or numpy dtype) and a float32 result, as the engine's products with the data take them."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
    jax.block_until_ready(f(a, a))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def adjacent_utilization(
    time_largest: Callable[[], PopulationTiming], peak: Callable[[], float], repeats: int = 3
) -> tuple[list[float], list[float]]:
    """FLOP utilisation measured ``repeats`` times, each against a matmul peak timed just before it: (the
    executed FLOP/s / peak ratios, the peaks). On a shared machine the peak drifts by tens of per cent within
    minutes (measured: 174-280 GFLOP/s on 2 CPU cores), so a ratio is only meaningful between adjacent timings."""
    ratios, peaks = [], []
    for _ in range(repeats):
        p = peak()
        ratios.append(time_largest().flops_per_s / p)
        peaks.append(p)
    return ratios, peaks


def table_iv_padding_efficiency(
    members: Sequence[Member], max_buckets: int, max_models_per_chunk: int, device_count: int = 1
) -> float:
    """Useful / executed matrix FLOPs of ``members`` chunked as a sweep would chunk them."""
    cfg = TrainConfig(max_buckets=max_buckets, max_models_per_chunk=max_models_per_chunk)
    return plan_members(members, cfg, device_count).padding_efficiency


def reference_style_seconds_per_step(
    input_dim: int,
    hidden_dim: int,
    output_dim: int,
    densities: dict[str, float],
    batch_size: int = 16,
    seq_len: int = 11,
    steps: int = 2,
    seed: int = 0,
) -> float | None:
    """Seconds per training step of ONE model in the paper's reference style, in PyTorch: the whole state
    z = [x; h; y] times one square (|x|+|h|+|y|)^2 masked matrix every step, a Python loop over the items of
    the batch, Adam. Returns None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    x, h, y = input_dim, hidden_dim, output_dim
    n = x + h + y
    mask = torch.zeros(n, n)
    rows = {"h": slice(x, x + h), "y": slice(x + h, n)}
    cols = {"x": slice(0, x), "h": slice(x, x + h), "y": slice(x + h, n)}
    for b, d in densities.items():
        r, c = rows[b[0]], cols[b[1]]
        shape = mask[r, c].shape
        mask[r, c] = (torch.rand(shape) < d).float()
    weight = torch.nn.Parameter(torch.randn(n, n) * 0.05)
    bias = torch.nn.Parameter(torch.zeros(n))
    opt = torch.optim.Adam([weight, bias], lr=1e-3)
    data = torch.randn(batch_size, seq_len, x)
    labels = torch.randint(0, y, (batch_size,))

    def step():
        opt.zero_grad()
        logits = []
        w = weight * mask
        for i in range(batch_size):  # the reference loops over the items of a batch
            z = torch.zeros(n)
            for t in range(seq_len):
                z = torch.cat([data[i, t], z[x:]])
                z = w @ z + bias
                z = torch.cat([z[:x], torch.relu(z[x : x + h]), z[x + h :]])
            logits.append(z[x + h :])
        loss = torch.nn.functional.cross_entropy(torch.stack(logits), labels)
        loss.backward()
        opt.step()

    step()  # warm up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def compare_dtypes(time_largest: Callable[[str], PopulationTiming], compute_dtype: str, repeats: int = 3) -> dict:
    """The largest population timed ``repeats`` times in float32 and in ``compute_dtype``, alternating (each pair
    back to back, so both see the same load): per-pair speed-ups and their median, and the model-sequences/s and
    seconds per step of every timing."""
    rates: dict[str, list[float]] = {"float32": [], compute_dtype: []}
    steps: dict[str, list[float]] = {"float32": [], compute_dtype: []}
    for _ in range(repeats):
        for dt in ("float32", compute_dtype):
            t = time_largest(dt)
            rates[dt].append(t.model_sequences_per_s)
            steps[dt].append(t.seconds_per_step)
    speedups = [b / a for a, b in zip(rates["float32"], rates[compute_dtype])]
    return {
        "compute_dtype": compute_dtype,
        "speedup": float(np.median(speedups)),
        "speedups": speedups,
        "model_sequences_per_s": rates,
        "seconds_per_step": steps,
    }
