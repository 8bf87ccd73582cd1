"""Benchmarks the population engine on whatever device JAX finds, and writes one JSON.

  python -m experiments.bench --quick --json=bench.json
  python -m experiments.bench --json=bench.json            # populations of 1, 8, 64, 512

Measures (RAD shapes: 11 steps of 2,500 inputs, 10 outputs, batch 16; models from the Table IV sampler at
50,000 trainable weights): population throughput (model-sequences/s) per population size; the speed-up of
one population over looping the same models one at a time through the same jitted code; the paper's
reference style in PyTorch (one model, full-state masked matrix, Python loop over batch items; skipped when
torch is absent); executed matrix FLOP/s (``models.family.train_matmul_flops``) against a large dense matmul
timed just before (the median of --utilization_repeats adjacent ratios, as the peak drifts on shared machines); padding
efficiency of the sweep's buckets for 3,254 Table IV models; the fraction of step time spent preparing inputs;
the memory-bound remainder of a step (masking, finiteness check and Adam over the population's weights, timed
alone); the Table IV wall time these numbers imply; and the regression guard (``studies.benchmark.GUARD_BARS``:
each value against its bar, in the JSON's ``guard``).
"""

from __future__ import annotations

import platform
import statistics
import time

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_bool(
    "quick", False, "Small populations (1, 8, 64) and a sampled loop baseline: a few minutes on 2 CPU cores."
)
flags.DEFINE_bool(
    "tiny", False, "Smallest mode (populations of 1 and 4, tiny shapes): only checks that the bench runs."
)
flags.DEFINE_list("sizes", None, "Population sizes (default 1,8,64,512; --quick 1,8,64).")
flags.DEFINE_string("json", None, "Where to write the JSON results (required).")
flags.DEFINE_integer(
    "loop_sample",
    8,
    "Models timed alone for the loop baseline (the loop time of a larger population is extrapolated from their mean).",
)
flags.DEFINE_integer("steps_per_call", 10, "Minibatch steps per timed call.")
flags.DEFINE_integer("calls", 3, "Timed calls per chunk.")
flags.DEFINE_integer("max_models_per_chunk", 512, "Models per compiled program.")
flags.DEFINE_integer("max_buckets", 12, "Hidden-size buckets.")
flags.DEFINE_enum(
    "matmul_precision",
    None,
    ["default", "high", "highest", "bfloat16", "tensorfloat32", "float32"],
    "jax_default_matmul_precision for GPU/TPU (e.g. bfloat16, tensorfloat32).",
)
flags.DEFINE_integer("unroll", 1, "lax.scan unroll of the time loop.")
flags.DEFINE_enum(
    "compute_dtype",
    "float32",
    ["float32", "bfloat16"],
    "Operand dtype of the products with the data (the sweeps' --compute_dtype). With bfloat16 the largest "
    "population is also timed in float32, alternating with bfloat16 (--utilization_repeats pairs), and the JSON "
    "reports the median speed-up and both matmul peaks (float32 and bf16 operands).",
)
flags.DEFINE_enum(
    "program_form",
    "auto",
    ["auto", "population", "loop"],
    "How each chunk's models share its program (the sweeps' --program_form): batched, one after another, or auto "
    "(the batched program). The float32 comparison uses the same setting.",
)
flags.DEFINE_enum(
    "weight_layout",
    "auto",
    ["auto", "dense", "compact"],
    "How the sparse weights are stepped (the sweeps' --weight_layout): compact (Adam over the trainable entries "
    "only; bit-identical results), dense, or auto (compact for float32 batched programs on a CPU). The float32 "
    "comparison uses the same setting.",
)
flags.DEFINE_integer(
    "utilization_repeats",
    3,
    "FLOP utilisation: the largest population is timed this many more times, each right after a matmul peak; "
    "the JSON's flop_utilization is the median ratio.",
    lower_bound=1,
)
flags.DEFINE_integer("table_iv_models", 3254, "Models for the padding-efficiency and wall-time estimate.")
common.help_group("what to measure", ["quick", "tiny", "sizes", "loop_sample", "table_iv_models"])
common.help_group("timing", ["steps_per_call", "calls", "utilization_repeats"])
common.help_group(
    "programs and precision",
    [
        "max_models_per_chunk",
        "max_buckets",
        "matmul_precision",
        "unroll",
        "compute_dtype",
        "program_form",
        "weight_layout",
    ],
)
common.help_group("output", ["json"])


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.json:
        common.fail("--json=PATH is required")
    common.expand_user("json")
    common.check_path("json", FLAGS.json, "file")
    try:
        sizes = [
            int(s)
            for s in (
                FLAGS.sizes
                or (["1", "4"] if FLAGS.tiny else ["1", "8", "64"] if FLAGS.quick else ["1", "8", "64", "512"])
            )
        ]
    except ValueError:
        common.fail(f"--sizes must be integers, got {','.join(FLAGS.sizes)}")
    if any(s < 1 for s in sizes):
        common.fail(f"--sizes must be >= 1, got {sizes}")
    for name in (
        "loop_sample",
        "steps_per_call",
        "calls",
        "max_models_per_chunk",
        "max_buckets",
        "table_iv_models",
        "unroll",
    ):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")

    import jax

    if FLAGS.matmul_precision:
        jax.config.update("jax_default_matmul_precision", FLAGS.matmul_precision)
    from sparse_rnn_jax.core.samplers import sample_specs
    from sparse_rnn_jax.engine.population import Member, model_seed
    from sparse_rnn_jax.studies import benchmark as bm
    from sparse_rnn_jax.tasks.rad.task import rad_task

    if FLAGS.tiny:
        n_img, img, budget = 4, 8, 2_000
    else:
        n_img, img, budget = 10, 50, 50_000
    task = rad_task(n_img, img)
    x_dim, y_dim, seq_len = img * img, n_img, n_img + 1
    data = bm.synthetic_rad_data(512, n_img, img)
    all_specs = sample_specs("normal_size", max(sizes + [FLAGS.table_iv_models]), 0, x_dim, y_dim, budget).specs
    members = [Member(i, s, model_seed(0, i), "normal_size") for i, s in enumerate(all_specs)]
    out: dict = {
        "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind,
        "platform": jax.default_backend(),
        "device_count": jax.device_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "mode": "tiny" if FLAGS.tiny else "quick" if FLAGS.quick else "full",
        "shapes": {"input_dim": x_dim, "output_dim": y_dim, "seq_len": seq_len, "batch_size": 16, "budget": budget},
    }

    def time_pop(ms, compute_dtype=FLAGS.compute_dtype):
        # A sweep's buckets hold hundreds of models; a population of P gets one bucket per 32 models
        # (at most --max_buckets), so a small population is timed as one program, not P programs of one.
        buckets = min(FLAGS.max_buckets, max(1, len(ms) // 32))
        return bm.time_population(
            ms,
            task,
            data,
            seq_len,
            16,
            FLAGS.steps_per_call,
            FLAGS.calls,
            buckets,
            FLAGS.max_models_per_chunk,
            unroll=FLAGS.unroll,
            compute_dtype=compute_dtype,
            form=FLAGS.program_form,
            weight_layout=FLAGS.weight_layout,
        )

    from sparse_rnn_jax.engine.devices import device_memory_bytes

    memory = device_memory_bytes()
    out["device_memory_bytes"] = memory
    peak_n = 512 if FLAGS.tiny else 2048
    out["compute_dtype"] = FLAGS.compute_dtype
    out["program_form"] = FLAGS.program_form
    out["weight_layout"] = FLAGS.weight_layout
    peak = bm.matmul_peak_flops(peak_n, dtype=FLAGS.compute_dtype)
    print(
        f"device {out['device']} ({out['device_kind']}, {out['platform']}, {out['device_count']} device(s), "
        f"{(memory or 0) / 2**30:.0f} GiB); dense matmul peak {peak / 1e9:.1f} GFLOP/s "
        f"({FLAGS.compute_dtype} operands)",
        flush=True,
    )

    populations = {}
    for p in sizes:
        t = time_pop(members[:p])
        populations[p] = t
        print(
            f"population {p:4d}: {t.model_sequences_per_s:10.1f} model-seq/s, {t.seconds_per_step * 1e3:8.2f} ms/step, "
            f"{t.flops_per_s / 1e9:6.1f} GFLOP/s executed ({t.flops_per_s / peak:.0%} of peak), {t.chunks} chunk(s)",
            flush=True,
        )
    out["populations"] = {
        str(p): {
            "model_sequences_per_s": t.model_sequences_per_s,
            "seconds_per_step": t.seconds_per_step,
            "executed_flops_per_s": t.flops_per_s,
            "chunks": t.chunks,
            "input_wait_fraction": t.input_wait_fraction,
        }
        for p, t in populations.items()
    }
    largest = populations[max(sizes)]

    k = min(FLAGS.loop_sample, max(sizes))
    loop_per_model = bm.time_loop(members[:k], time_pop) / k
    loop_seconds = loop_per_model * largest.models
    out["loop"] = {
        "models_timed": k,
        "seconds_per_step_per_model": loop_per_model,
        "population": largest.models,
        "extrapolated": k < largest.models,
    }
    out["population_speedup_vs_loop"] = loop_seconds / largest.seconds_per_step
    print(
        f"loop baseline: {loop_per_model * 1e3:.2f} ms/step per model (mean of {k} alone); population of "
        f"{largest.models} is {out['population_speedup_vs_loop']:.1f}x faster",
        flush=True,
    )

    ref_spec = all_specs[0]
    ref = bm.reference_style_seconds_per_step(x_dim, ref_spec.hidden_dim, y_dim, ref_spec.densities(), 16, seq_len)
    if ref is None:
        print("reference style: skipped (torch is not installed: pip install -e '.[torch]')", flush=True)
        out["speedup_vs_reference_style"] = None
    else:
        ref_rate = 16 / ref  # model-sequences per second, one model at a time
        out["reference_style"] = {
            "seconds_per_step": ref,
            "model_sequences_per_s": ref_rate,
            "hidden_dim": ref_spec.hidden_dim,
        }
        out["speedup_vs_reference_style"] = largest.model_sequences_per_s / ref_rate
        print(
            f"reference style (PyTorch, one model, full-state masked matrix): {ref:.3f} s/step; engine is "
            f"{out['speedup_vs_reference_style']:.0f}x faster on equal work",
            flush=True,
        )

    ratios, peaks = bm.adjacent_utilization(
        lambda: time_pop(members[: max(sizes)]),
        lambda: bm.matmul_peak_flops(peak_n, dtype=FLAGS.compute_dtype),
        FLAGS.utilization_repeats,
    )
    out["matmul_peak_flops"] = statistics.median(peaks)
    out["matmul_peak_flops_samples"] = peaks
    out["flop_utilization"] = statistics.median(ratios)
    out["flop_utilization_samples"] = ratios
    out["matmul_peak_flops_by_dtype"] = {
        dt: statistics.median(bm.matmul_peak_flops(peak_n, dtype=dt) for _ in range(3))
        for dt in ("float32", "bfloat16")
    }
    if FLAGS.compute_dtype != "float32":
        out["float32_comparison"] = bm.compare_dtypes(
            lambda dt: time_pop(members[: max(sizes)], dt), FLAGS.compute_dtype, FLAGS.utilization_repeats
        )
        cmp = out["float32_comparison"]
        print(
            f"population {largest.models} in {FLAGS.compute_dtype} vs float32, alternating: "
            f"{cmp['speedup']:.2f}x (median of {len(cmp['speedups'])}: "
            f"{', '.join(f'{r:.2f}' for r in cmp['speedups'])}); "
            f"{statistics.median(cmp['model_sequences_per_s'][FLAGS.compute_dtype]):.0f} vs "
            f"{statistics.median(cmp['model_sequences_per_s']['float32']):.0f} model-seq/s",
            flush=True,
        )
    print(
        "matmul peaks: "
        + ", ".join(f"{dt} {v / 1e9:.1f} GFLOP/s" for dt, v in out["matmul_peak_flops_by_dtype"].items()),
        flush=True,
    )
    if FLAGS.compute_dtype == "float32":
        out["flop_utilization_float32"] = out["flop_utilization"]
    else:  # the guard's utilisation is the float32 population's, against the float32 peak timed next to it
        f32_ratios, _ = bm.adjacent_utilization(
            lambda: time_pop(members[: max(sizes)], "float32"),
            lambda: bm.matmul_peak_flops(peak_n, dtype="float32"),
            FLAGS.utilization_repeats,
        )
        out["flop_utilization_float32"] = statistics.median(f32_ratios)
        out["flop_utilization_float32_samples"] = f32_ratios
    pass_s = bm.weight_pass_seconds(largest.weight_entries)
    out["memory_bound"] = {
        "weight_entries": largest.weight_entries,
        "seconds_per_step": pass_s,
        "seconds_per_entry": pass_s / max(largest.weight_entries, 1),
        "share_of_step": pass_s / largest.seconds_per_step,
    }
    print(
        f"memory-bound remainder (masked gradient, finiteness check, Adam's moments and update over the population's "
        f"{largest.weight_entries:,} float32 weights, timed alone): {pass_s * 1e3:.2f} ms per step, "
        f"{pass_s / max(largest.weight_entries, 1) * 1e9:.2f} ns per weight, "
        f"{out['memory_bound']['share_of_step']:.0%} of the population's {largest.seconds_per_step * 1e3:.2f} ms step",
        flush=True,
    )
    out["padding_efficiency"] = bm.table_iv_padding_efficiency(
        members[: FLAGS.table_iv_models], FLAGS.max_buckets, 256, jax.device_count()
    )
    out["input_wait_fraction"] = largest.input_wait_fraction
    if not FLAGS.tiny:
        seqs = FLAGS.table_iv_models * 25 * 30_000
        out["table_iv_estimate_s"] = seqs / largest.model_sequences_per_s
    print(
        f"padding efficiency (Table IV sampler, {FLAGS.max_buckets} buckets): {out['padding_efficiency']:.1%}; "
        f"input wait {out['input_wait_fraction']:.2%}; FLOP utilization {out['flop_utilization']:.0%} (median of "
        f"{len(ratios)}, each against a peak timed just before: {', '.join(f'{r:.0%}' for r in ratios)})",
        flush=True,
    )
    if "table_iv_estimate_s" in out:
        print(
            f"Table IV ({FLAGS.table_iv_models} models x 25 epochs x 30,000 sequences) at this throughput: "
            f"{out['table_iv_estimate_s'] / 3600:.1f} h",
            flush=True,
        )
    values = {
        "flop_utilization_float32": out["flop_utilization_float32"],
        "speedup_vs_reference_style": out["speedup_vs_reference_style"],
        "padding_efficiency": out["padding_efficiency"],
    }
    if "float32_comparison" in out:
        values["bfloat16_speedup"] = out["float32_comparison"]["speedup"]
    out["guard"] = bm.regression_guard(values)
    for name, g in out["guard"].items():
        verdict = "not measured" if g["ok"] is None else "ok" if g["ok"] else "BELOW THE BAR"
        value = "-" if g["value"] is None else f"{g['value']:.3g}"
        print(f"guard {name}: {value} (bar {g['bar']:g}): {verdict}", flush=True)
    from sparse_rnn_jax.engine.workdir import write_json_atomic

    write_json_atomic(out, FLAGS.json)
    print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
    common.run(main)
