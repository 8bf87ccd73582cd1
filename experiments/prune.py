"""Magnitude-prunes every trained model of a finished sweep, evaluates it, fine-tunes it briefly, evaluates again.

  python -m experiments.rad_sweep --flagfile=experiments/flags/rad_smoke.flags --workdir=runs/w
  python -m experiments.prune --workdir=runs/w [--fractions=0.1,0.2,...,1.0] [--scopes=global,per_block,hidden] \\
      [--finetune_steps=200] [--out=runs/w]

The trained weights are each chunk's final checkpoint, which every sweep keeps. Its
config, task data, members and chunks are reloaded from the workdir's run.json (``run.train.load_run``). Every model
is pruned one-shot at every (scope, fraction) (``sparse_rnn_jax/studies/pruning``); all variants of a chunk train as
one vmapped population. Writes into --out (default: the workdir, where ``experiments.analyze`` finds it):
  pruning.parquet           one row per (model, scope, fraction), scope "none" = the unpruned control
  pruning_summary.csv       per family and scope: the largest fraction that keeps validation accuracy within
                            1 percentage point, and loss within 5 %, of the unpruned model, without and with fine-tune
  pruning.md                that table and the figure, as the analysis report shows them
  figures/pruning_<task>.png  mean validation accuracy (or loss) against the fraction pruned
A rerun with the same settings skips the models already in pruning.parquet (it is rewritten after every chunk).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from absl import flags

from experiments import common

SCOPES: tuple[str, ...] = ("global", "per_block", "hidden")
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
"""The scopes and fractions of ``sparse_rnn_jax.studies.pruning.masks``, repeated here so that ``--help`` and a bad
flag answer before JAX loads (a test checks they are the library's)."""

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished sweep's workdir (required).")
flags.DEFINE_string("out", None, "Output folder (default: --workdir).")
flags.DEFINE_list(
    "fractions", [f"{f:g}" for f in DEFAULT_FRACTIONS], "Fractions of each model's trainable weights to prune."
)
flags.DEFINE_list("scopes", list(SCOPES), f"Pruning scopes: any of {SCOPES}.")
flags.DEFINE_integer("finetune_steps", 200, "Minibatch Adam steps after pruning (0: evaluate only).")
flags.DEFINE_integer(
    "finetune_batch_size", None, "Sequences per fine-tune minibatch (default: the sweep's batch_size)."
)
flags.DEFINE_integer("finetune_seed", 0, "Seed of the fine-tune's minibatch order.")
flags.DEFINE_integer(
    "max_models_per_program",
    None,
    "Most (model, variant) rows per compiled program (default: the sweep's models per chunk).",
)
flags.DEFINE_string("cache_dir", None, "Data cache of the task, when it differs from the sweep's (RAD).")
common.help_group("the run to prune", ["workdir", "out", "cache_dir"])
common.help_group("pruning", ["fractions", "scopes"])
common.help_group(
    "fine-tuning after pruning", ["finetune_steps", "finetune_batch_size", "finetune_seed", "max_models_per_program"]
)


def _validate() -> tuple[list[float], list[str]]:
    if not FLAGS.workdir:
        common.fail("--workdir is required (a finished sweep's workdir)")
    common.expand_user("workdir", "out", "cache_dir")
    common.check_path("out", FLAGS.out, "dir")
    if FLAGS.out is None and (Path(FLAGS.workdir) / "run.json").is_file():
        common.check_path("workdir", FLAGS.workdir, "dir")  # the outputs' default folder
    common.check_path("cache_dir", FLAGS.cache_dir, "dir")
    try:
        fractions = sorted({float(f) for f in FLAGS.fractions})
    except ValueError:
        common.fail(f"--fractions must be numbers, got {FLAGS.fractions}")
    if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
        common.fail(f"--fractions must be in (0, 1], got {FLAGS.fractions}")
    bad = [s for s in FLAGS.scopes if s not in SCOPES]
    if bad or not FLAGS.scopes:
        common.fail(f"--scopes must be among {SCOPES}, got {FLAGS.scopes}")
    if FLAGS.finetune_steps < 0:
        common.fail(f"--finetune_steps must be >= 0, got {FLAGS.finetune_steps}")
    for name in ("finetune_batch_size", "max_models_per_program"):
        if FLAGS[name].value is not None and FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    return fractions, [s for s in SCOPES if s in FLAGS.scopes]


def main(argv):
    common.check_no_positional(argv)
    fractions, scopes = _validate()
    from sparse_rnn_jax.analysis.pruning_report import write_pruning_outputs
    from sparse_rnn_jax.run.train import RunError, load_run
    from sparse_rnn_jax.studies.pruning.finetune import FinetuneConfig
    from sparse_rnn_jax.studies.pruning.run import missing_final_params, prune_run

    try:
        run = load_run(FLAGS.workdir, data_overrides={"cache_dir": FLAGS.cache_dir} if FLAGS.cache_dir else None)
        missing = missing_final_params(run)
    except RunError as e:
        common.fail(str(e))
    if missing:
        common.fail(
            f"--workdir {run.workdir}: its manifest names no final checkpoint (trained weights) for chunk(s) "
            f"{', '.join(missing[:3])}; rerun the sweep to finish them"
        )
    print(run.describe(), file=sys.stderr)
    train = run.config.train
    ft = FinetuneConfig(
        steps=FLAGS.finetune_steps,
        batch_size=FLAGS.finetune_batch_size or train.batch_size,
        eval_batch_size=train.eval_batch_size,
        seed=FLAGS.finetune_seed,
        max_models=FLAGS.max_models_per_program or run.chunk_models,
        steps_per_call=train.steps_per_call,
        unroll=train.unroll,
    )
    out = Path(FLAGS.out or FLAGS.workdir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    df = prune_run(run, out, ft, scopes, fractions, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(f"pruned {df['model_id'].nunique()} models in {time.time() - t0:.0f} s")
    print(write_pruning_outputs(df, out))


if __name__ == "__main__":
    common.run(main)
