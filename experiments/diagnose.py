"""Per-lag gradient scales of every model of a sweep: how fast ∂h_T/∂h_{T-k} decays with the lag k.

  python -m experiments.diagnose --workdir=runs/w --out=runs/w/diagnostics [--max_lag=50] [--sequences=32]
  python -m experiments.diagnose --workdir=runs/w --out=DIR --init_only     # initial weights only

The run's config, task data and chunks are reloaded from its run.json (``run.train.load_run``). Each model is
measured at its initial weights (drawn from its seed, as the sweep drew them) and, unless ``--init_only``, at its
trained weights (each chunk's final checkpoint, which every sweep keeps); the inputs are the first ``--sequences``
validation sequences (a padded sequence, per the task's step mask, ends at its own last valid step). With
``--init_only`` the sweep need not have finished (its run.json is enough). Writes into --out:
  gradient_scales.parquet   model_id, weights ("initial" | "trained"), lag, scale
  gradient_summary.csv      per model and weights: config, family, leak, hidden size and proportion, s_1,
                            decay_rate, tau_1e (the lag where the scale falls below 1/e of lag 1)
  gradient_scales.png       scale against lag, one thin line per model, the geometric mean per family
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A sweep's workdir (required).")
flags.DEFINE_string("out", None, "Output folder (required).")
flags.DEFINE_integer(
    "max_lag", 50, "Largest lag K; at most the sequence length (the default stops there, a larger value is refused)."
)
flags.DEFINE_integer("sequences", 32, "Validation sequences the scales are averaged over.")
flags.DEFINE_bool("init_only", False, "Only the initial weights (no saved final weights needed).")
flags.DEFINE_integer(
    "max_models_per_program",
    16,
    "Models measured together in one compiled program (memory: each holds hidden x sequences x state cotangents).",
)
flags.DEFINE_string("cache_dir", None, "Data cache of the task, when it differs from the sweep's (RAD).")
common.help_group("the run and output", ["workdir", "out", "cache_dir"])
common.help_group("measurement", ["max_lag", "sequences", "init_only", "max_models_per_program"])


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.workdir:
        common.fail("--workdir is required (a sweep's workdir)")
    if not FLAGS.out:
        common.fail("--out is required")
    common.expand_user("workdir", "out", "cache_dir")
    common.check_path("out", FLAGS.out, "dir")
    common.check_path("cache_dir", FLAGS.cache_dir, "dir")
    for name in ("max_lag", "sequences", "max_models_per_program"):
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    import numpy as np

    from sparse_rnn_jax.analysis.figures import gradient_scales_figure
    from sparse_rnn_jax.engine.workdir import write_parquet_atomic
    from sparse_rnn_jax.run.train import RunError, load_run
    from sparse_rnn_jax.studies.gradient_scales import input_steps, measure_run
    from sparse_rnn_jax.studies.pruning.run import missing_final_params

    try:
        run = load_run(
            FLAGS.workdir,
            require_complete=not FLAGS.init_only,
            data_overrides={"cache_dir": FLAGS.cache_dir} if FLAGS.cache_dir else None,
        )
        data = run.task_data()
        missing = [] if FLAGS.init_only else missing_final_params(run)
    except RunError as e:
        common.fail(str(e))
    if missing:
        common.fail(
            f"--workdir {run.workdir}: its manifest names no final checkpoint (trained weights) for chunk(s) "
            f"{', '.join(missing[:3])}; rerun the sweep to finish them, or use --init_only"
        )
    steps = input_steps(data)
    if FLAGS["max_lag"].present and FLAGS.max_lag > steps:  # the default stops at the sequence's end
        common.fail(f"--max_lag must be at most the {steps} steps of the run's sequences, got {FLAGS.max_lag}")
    print(run.describe(), file=sys.stderr)
    kinds = ("initial",) if FLAGS.init_only else ("initial", "trained")
    t0 = time.time()
    scales, summary, (n_seq, _) = measure_run(
        run,
        data,
        kinds,
        FLAGS.max_lag,
        FLAGS.sequences,
        FLAGS.max_models_per_program,
        log=lambda s: print(s, flush=True),
    )
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(scales, out / "gradient_scales.parquet")
    summary.to_csv(out / "gradient_summary.csv", index=False)
    groups = summary.drop_duplicates("model_id").set_index("model_id")["family"]
    fig = gradient_scales_figure(
        scales.assign(group=scales["model_id"].map(groups)),
        out / "gradient_scales.png",
        f"{run.record.get('task')}: per-lag gradient scale, {n_seq} validation sequences",
    )
    print(f"measured {summary['model_id'].nunique()} models in {time.time() - t0:.0f} s")
    cols = ["scale_lag1", "decay_rate", "tau_1e"]
    censored_inf = summary.assign(tau_1e=summary["tau_1e"].where(~summary["tau_censored"], np.inf))
    table = censored_inf.groupby(["weights", "family"])[cols].median()
    table["models"] = summary.groupby(["weights", "family"]).size()
    table["tau_censored"] = summary.groupby(["weights", "family"])["tau_censored"].mean()
    print(
        "median per family (tau_1e: lag where the scale falls below 1/e of lag 1, inf where it never does within "
        "the lags; tau_censored: the share of models where it never does):"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"written: {out / 'gradient_scales.parquet'}, {out / 'gradient_summary.csv'}, {fig}", file=sys.stderr)


if __name__ == "__main__":
    common.run(main)
