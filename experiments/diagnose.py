"""Per-lag gradient scales of every model of a sweep: how fast ∂h_T/∂h_{T-k} decays with the lag k.

  python -m experiments.diagnose --workdir=runs/w --out=runs/w/diagnostics [--max_lag=50] [--sequences=32]
  python -m experiments.diagnose --workdir=runs/w --out=DIR --init_only     # initial weights only

The members, task data and chunks are re-created from the workdir's run.json (``experiments/recorded_run.py``).
Each model is measured at its initial weights (drawn from its seed, as the sweep drew them) and, unless
``--init_only``, at its trained weights (the sweep must have run with ``--save_final_params``); the inputs
are the first ``--sequences`` validation sequences (a padded sequence, per the task's step mask, ends at its
own last valid step). With ``--init_only`` the sweep need not have finished
(its run.json is enough). Writes into --out:

  gradient_scales.parquet   model_id, weights ("initial" | "trained"), lag, scale  (sparse_rnn_jax/diagnostics.py)
  gradient_summary.csv      per model and weights: config, family, leak, hidden size and proportion, s_1,
                            decay_rate, tau_1e (the lag where the scale falls below 1/e of lag 1)
  gradient_scales.png       scale against lag, one thin line per model, the geometric mean per family
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from absl import flags

from experiments import common, recorded_run  # (recorded_run imports sweep_cli, which defines --workdir)

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output folder (required).")
flags.DEFINE_integer("max_lag", 50, "Largest lag K (at most the sequence length).")
flags.DEFINE_integer("sequences", 32, "Validation sequences the scales are averaged over.")
flags.DEFINE_bool("init_only", False, "Only the initial weights (no saved final weights needed).")
flags.DEFINE_integer("max_models_per_program", 16, "Models measured together in one compiled program (memory: "
                     "each holds hidden x sequences x state cotangents).")


def sequence_lengths(val: dict, idx: np.ndarray, steps: int) -> np.ndarray | None:
    """Each chosen validation sequence's valid length, from the task's ``step_mask`` (or ``lengths``) arrays;
    None when every sequence has all ``steps`` steps."""
    if "step_mask" in val:
        lengths = np.asarray(val["step_mask"])[idx].sum(axis=1)
    elif "lengths" in val:
        lengths = np.asarray(val["lengths"])[idx]
    else:
        return None
    lengths = np.clip(lengths.astype(np.int32), 1, steps)
    return None if np.all(lengths == steps) else lengths


def _validate() -> None:
    if not FLAGS.workdir:
        common.fail("--workdir is required (a sweep's workdir)")
    if not FLAGS.out:
        common.fail("--out is required")
    for name in ("max_lag", "sequences", "max_models_per_program"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")


def main(argv):
    _validate()
    run = recorded_run.recreate_run(FLAGS.workdir, argv, require_complete=not FLAGS.init_only)
    if not FLAGS.init_only:
        missing = [c.key for c in run.chunks if not (run.workdir / "final_params" / c.key).exists()]
        if missing:
            common.fail(f"--workdir {run.workdir}: no saved final weights for chunk(s) {', '.join(missing[:3])}; "
                        "rerun the sweep with --save_final_params, or use --init_only")
    print(run.describe(), file=sys.stderr)
    import jax
    import jax.numpy as jnp

    from sparse_rnn_jax.diagnostics import gradient_scales, scales_figure, scales_frame, summarise
    from sparse_rnn_jax.population import stack_chunk
    from sparse_rnn_jax.results import spec_columns, write_parquet_atomic
    from sparse_rnn_jax.sweep import load_final_params

    data = run.task_data()
    n_val = int(np.shape(next(iter(data.val.values())))[0])
    idx = jnp.arange(min(FLAGS.sequences, n_val), dtype=jnp.int32)
    x = np.asarray(jax.jit(data.task.make_batch)({k: jnp.asarray(v) for k, v in data.val.items()}, idx).x)
    lengths = sequence_lengths(data.val, np.asarray(idx), x.shape[1])
    print(f"inputs: {x.shape[0]} validation sequences of {x.shape[1]} steps"
          + (f" (each ends at its own last valid step, {lengths.min()}-{lengths.max()})" if lengths is not None else "")
          + f"; lags 1..{min(FLAGS.max_lag, x.shape[1] if lengths is None else int(lengths.max()))}", flush=True)
    kinds = ["initial"] if FLAGS.init_only else ["initial", "trained"]
    out = Path(FLAGS.out)
    frames, info = [], []
    t0 = time.time()
    for i, chunk in enumerate(run.chunks):
        n = len(chunk.members)
        arrays = {"initial": tuple({k: v[:n] for k, v in tree.items()} for tree in stack_chunk(chunk, run.cfg.mask_mode)[:2])}
        if "trained" in kinds:
            arrays["trained"] = load_final_params(run.workdir, chunk, run.cfg.mask_mode)
        hidden = np.asarray([m.spec.hidden_dim for m in chunk.members])
        for kind in kinds:
            params, masks = arrays[kind]
            scales = np.zeros((n, min(FLAGS.max_lag, x.shape[1])))
            size = math.ceil(n / math.ceil(n / FLAGS.max_models_per_program))
            for start in range(0, n, size):  # equal pieces (the last padded with repeats): one compile
                take = np.minimum(np.arange(start, start + size), n - 1)
                part = gradient_scales(chunk.family, chunk.activation, {k: v[take] for k, v in params.items()},
                                       {k: np.asarray(v)[take] for k, v in masks.items()}, x, hidden[take], FLAGS.max_lag,
                                       lengths)
                scales[start:start + size] = part[: min(size, n - start)]
            frame = scales_frame([m.model_id for m in chunk.members], scales)
            frames.append(frame[frame["scale"].notna()].assign(weights=kind))  # NaN: longer than every sequence
        for m in chunk.members:
            cols = spec_columns(m.spec)
            info.append({"model_id": m.model_id, "config": m.config, "family": m.spec.family, "leak_mode": cols.get("leak_mode"),
                         "leak_alpha": cols.get("leak_alpha"), "hidden_dim": m.spec.hidden_dim,
                         "hidden_proportion": cols["hidden_proportion"], "activation": m.spec.activation})
        print(f"chunk {i + 1}/{len(run.chunks)} ({chunk.family}, {n} models) measured", flush=True)
    scales = pd.concat(frames, ignore_index=True)[["model_id", "weights", "lag", "scale"]]
    info = pd.DataFrame(info)
    summary = pd.concat([summarise(scales[scales["weights"] == k].drop(columns="weights")).assign(weights=k) for k in kinds],
                        ignore_index=True)
    summary = info.merge(summary, on="model_id").sort_values(["weights", "model_id"]).reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(scales, out / "gradient_scales.parquet")
    summary.to_csv(out / "gradient_summary.csv", index=False)
    groups = info.set_index("model_id")["family"]
    fig = scales_figure(scales.assign(group=scales["model_id"].map(groups)), out / "gradient_scales.png",
                        f"{run.record.get('task')}: per-lag gradient scale, {x.shape[0]} validation sequences")
    print(f"measured {len(info)} models in {time.time() - t0:.0f} s")
    cols = ["scale_lag1", "decay_rate", "tau_1e"]
    censored_inf = summary.assign(tau_1e=summary["tau_1e"].where(~summary["tau_censored"], np.inf))
    table = censored_inf.groupby(["weights", "family"])[cols].median()
    table["models"] = summary.groupby(["weights", "family"]).size()
    table["tau_censored"] = summary.groupby(["weights", "family"])["tau_censored"].mean()
    print("median per family (tau_1e: lag where the scale falls below 1/e of lag 1, inf where it never does within "
          "the lags; tau_censored: the share of models where it never does):")
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"written: {out / 'gradient_scales.parquet'}, {out / 'gradient_summary.csv'}, {fig}", file=sys.stderr)


if __name__ == "__main__":
    recorded_run.run(main)
