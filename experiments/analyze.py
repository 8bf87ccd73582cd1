"""Analyses sweep workdirs: the paper's tables and figures, environment scores, and the parent network.

  python -m experiments.analyze --results=runs/rad_sweep --out=runs/rad_sweep/analysis
  python -m experiments.analyze --results=runs/a,runs/b --out=analysis --trees=200 --nomlp

Writes OUT/report.md (and report.html), OUT/figures/*.png, OUT/tables/*.csv and the fitted parent
network under OUT/predictor/<task>/ (see sparse_rnn_jax/analysis/report.py). Other files in OUT are kept.
"""

from __future__ import annotations

import sys

from absl import flags

from experiments import common
from sparse_rnn_jax.analysis.defaults import DEFAULT_FOLDS, PAPER_MAX_DEPTH, PAPER_TREES

FLAGS = flags.FLAGS
flags.DEFINE_list("results", None, "Sweep workdir(s) holding results.parquet (and scores.parquet), comma-separated.")
flags.DEFINE_string("out", None, "Output folder for report.md, figures/, tables/, predictor/ (created if needed).")
flags.DEFINE_integer("trees", PAPER_TREES, "Random forest trees (the paper: 1000); fewer is faster.")
flags.DEFINE_integer("max_depth", PAPER_MAX_DEPTH, "Random forest max depth (the paper: 10).")
flags.DEFINE_integer("folds", DEFAULT_FOLDS, "Cross-validation folds of the parent network.")
flags.DEFINE_integer("seed", 0, "Seed of the fold split, forest and MLP.")
flags.DEFINE_bool("mlp", True, "Also fit the Flax MLP parent network.")
flags.DEFINE_list(
    "failure_loss",
    [],
    "Given failure thresholds per task, e.g. ah=0.2 (default: the rule in sparse_rnn_jax/analysis/convergence.py).",
)
common.help_group("results and output", ["results", "out"])
common.help_group("parent network (random forest and MLP)", ["trees", "max_depth", "folds", "seed", "mlp"])
common.help_group("failed models", ["failure_loss"])


def _failure_losses() -> dict[str, float]:
    out = {}
    for item in FLAGS.failure_loss:
        task, sep, value = item.partition("=")
        try:
            out[task] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task or not out[task] > 0:
            common.fail(f"--failure_loss entries must be TASK=POSITIVE_NUMBER, got {item!r}")
    return out


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.results:
        common.fail("--results is required (one or more workdirs, comma-separated)")
    if not FLAGS.out:
        common.fail("--out is required")
    common.expand_user("results", "out")
    common.check_path("out", FLAGS.out, "dir")
    if FLAGS.trees < 1:
        common.fail(f"--trees must be >= 1, got {FLAGS.trees}")
    if FLAGS.max_depth < 1:
        common.fail(f"--max_depth must be >= 1, got {FLAGS.max_depth}")
    if FLAGS.folds < 2:
        common.fail(f"--folds must be >= 2, got {FLAGS.folds}")
    failure_loss = _failure_losses()
    from sparse_rnn_jax.analysis.report import AnalysisInputError, AnalysisOptions, analyze

    options = AnalysisOptions(
        trees=FLAGS.trees,
        max_depth=FLAGS.max_depth,
        folds=FLAGS.folds,
        seed=FLAGS.seed,
        mlp=FLAGS.mlp,
        failure_loss=failure_loss,
    )
    try:
        result = analyze(FLAGS.results, FLAGS.out, options, log=lambda s: print(s, file=sys.stderr, flush=True))
    except AnalysisInputError as e:
        common.fail(str(e))
    print(result.report)


if __name__ == "__main__":
    common.run(main)
