"""The paper's findings beside ours (docs/replication.md): Table IV runs' cells beside the published ones (a
stratified run's weighted to its drawn population), Table III seed sets, the Fig. 1 questions asked of one
or more seed sets of the named configurations on RAD, and of the Adroit Hammer named configurations, each with seeds,
95 % intervals and Holm-corrected tests.

  python -m experiments.replicate --table_iv=runs/table_iv_strat \\
      --table_iii=runs/table_iii_cpu,runs/table_iii_cpu_seed1 --fig1=runs/fig1_cpu,runs/fig1_cpu_seed1 \\
      --fig1_sensitivity=runs/fig1_cpu_lr1e-3 \\
      --ah=runs/ah_named,runs/ah_named_seed1 --out=runs/replication

Writes OUT/replication.md, CSVs of every table and OUT/figures/*.png. Any of the runs may be left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "table_iv", [], "Finished Table IV sweeps, comma-separated (table_iv_strat.flags, table_iv_lite.flags)."
)
flags.DEFINE_list(
    "table_iii",
    [],
    "Finished Table III sweeps (Adroit Hammer), comma-separated seed sets of one flagfile (table_iii_cpu.flags "
    "with --seed=0, 1, ...): each run's table, and each step's verdict over the sets.",
)
flags.DEFINE_list(
    "fig1",
    [],
    "Finished Fig. 1 sweeps, one per seed set, comma-separated (fig1_cpu.flags, then with --seed=1 ...): a finding "
    "reproduces only when it holds on every set.",
)
flags.DEFINE_string("fig1_sensitivity", None, "A Fig. 1 sweep reported as a sensitivity result (fig1_cpu_lr1e-3).")
flags.DEFINE_list(
    "ah",
    None,
    "Finished Adroit Hammer named-configuration sweeps, one per seed set (ah_named.flags, then --seed=1): a "
    "finding reproduces only when it holds on every set.",
)
flags.DEFINE_string("out", None, "Output folder (required).")
flags.DEFINE_integer("folds", 5, "Cross-validation folds of the parent network.")
flags.DEFINE_integer("trees", 1000, "Trees of the parent network's random forest (the paper's 1,000).")
flags.DEFINE_integer("seed", 0, "Seed of the folds and the forest.")
common.help_group("runs", ["table_iv", "table_iii", "fig1", "fig1_sensitivity", "ah", "out"])
common.help_group("parent network", ["folds", "trees", "seed"])


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.out:
        common.fail("--out is required")
    common.expand_user("out", "table_iv", "table_iii", "fig1", "fig1_sensitivity", "ah")
    common.check_path("out", FLAGS.out, "dir")
    names = ("table_iv", "table_iii", "fig1", "fig1_sensitivity", "ah")
    runs = {name: FLAGS[name].value for name in names if FLAGS[name].value}
    if not runs:
        common.fail("give at least one of --table_iv, --table_iii, --fig1, --fig1_sensitivity, --ah")
    for name, value in runs.items():
        for path in value if isinstance(value, list) else [value]:
            if not (Path(path) / "results.parquet").is_file():
                common.fail(f"--{name}: no results.parquet in {path}")
    if FLAGS.folds < 2 or FLAGS.trees < 1:
        common.fail("--folds must be >= 2 and --trees >= 1")
    from sparse_rnn_jax.analysis.replication import write_report

    path = write_report(
        FLAGS.out,
        folds=FLAGS.folds,
        trees=FLAGS.trees,
        seed=FLAGS.seed,
        log=lambda s: print(s, file=sys.stderr, flush=True),
        **runs,
    )
    print(f"written: {path}")


if __name__ == "__main__":
    common.run(main)
