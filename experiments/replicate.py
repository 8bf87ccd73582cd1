"""The paper's findings beside ours (docs/replication.md): a Table IV run's cells beside the published ones, the
CPU-scale Fig. 1 ordering of the named configurations on RAD, the Adroit Hammer named configurations, each with
seeds and 95 % intervals.

  python -m experiments.replicate --table_iv=runs/table_iv_lite --fig1=runs/fig1_cpu --ah=runs/ah_named \\
      --out=runs/replication

Writes OUT/replication.md, CSVs of every table and OUT/figures/*.png. Any of the three runs may be left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from experiments import common

FLAGS = flags.FLAGS
flags.DEFINE_string("table_iv", None, "A finished Table IV sweep (e.g. experiments/flags/table_iv_lite.flags).")
flags.DEFINE_string("fig1", None, "A finished Fig. 1 sweep (named configurations, several seeds; fig1_cpu.flags).")
flags.DEFINE_string("ah", None, "A finished Adroit Hammer named-configuration sweep (ah_named.flags).")
flags.DEFINE_string("out", None, "Output folder (required).")
flags.DEFINE_integer("folds", 5, "Cross-validation folds of the parent network.")
flags.DEFINE_integer("trees", 1000, "Trees of the parent network's random forest (the paper's 1,000).")
flags.DEFINE_integer("seed", 0, "Seed of the folds and the forest.")
common.help_group("runs", ["table_iv", "fig1", "ah", "out"])
common.help_group("parent network", ["folds", "trees", "seed"])


def main(argv):
    common.check_no_positional(argv)
    if not FLAGS.out:
        common.fail("--out is required")
    common.expand_user("out", "table_iv", "fig1", "ah")
    common.check_path("out", FLAGS.out, "dir")
    runs = {name: FLAGS[name].value for name in ("table_iv", "fig1", "ah") if FLAGS[name].value}
    if not runs:
        common.fail("give at least one of --table_iv, --fig1, --ah")
    for name, path in runs.items():
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
