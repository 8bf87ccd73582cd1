"""Describes a block RNN's weight space: per-block dims, density and trainable weights (paper Fig. 3-5),
or a baseline cell's trainable counts (weights + biases, exactly as trained).

  python -m experiments.describe --input_dim=2500 --output_dim=10 --config=balanced --budget=100000
  python -m experiments.describe --input_dim=2500 --output_dim=10 --config=dense --hidden_dim=29 --json
  python -m experiments.describe --input_dim=46 --output_dim=26 --config=custom \
      --densities=1,0.2,0.2,1,1,0.2 --budget=100000
  python -m experiments.describe --input_dim=2500 --output_dim=10 --config=lstm --budget=110000
"""

from __future__ import annotations

import json

from absl import flags

from experiments import common
from sparse_rnn_jax.analysis.accounting_table import format_table
from sparse_rnn_jax.core.accounting import describe_dict, rounded
from sparse_rnn_jax.core.cell_spec import CELLS, GATES, CellSpec, cell_counts, cell_spec
from sparse_rnn_jax.core.configs import NAMED_CONFIGS, named_spec
from sparse_rnn_jax.core.solvers import hidden_dim_for_budget
from sparse_rnn_jax.core.spec import BLOCKS, make_spec

FLAGS = flags.FLAGS
flags.DEFINE_integer("input_dim", None, "|x|, e.g. 2500 for RAD, 46 for Adroit Hammer.")
flags.DEFINE_integer("output_dim", None, "|y|, e.g. 10 for RAD, 26 for Adroit Hammer.")
flags.DEFINE_string("config", "balanced", f"One of {NAMED_CONFIGS + ('custom',) + CELLS}.")
flags.DEFINE_float("density", 0.2, "Density of every block for --config=uniform.")
flags.DEFINE_list("densities", None, "hx,hh,hy,yx,yh,yy densities for --config=custom.")
flags.DEFINE_integer("hidden_dim", None, "Hidden size |h| (or give --budget).")
flags.DEFINE_float("budget", None, "Trainable-weight budget (biases excluded); |h| is solved from it.")
flags.DEFINE_float("balance_target", 0.5, "Target hidden proportion of --config=balanced.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of the table.")
common.help_group("dimensions", ["input_dim", "output_dim"])
common.help_group("configuration", ["config", "density", "densities", "balance_target"])
common.help_group("size: give one", ["hidden_dim", "budget"])
common.help_group("output", ["json"])


def build_spec():
    for name in ("input_dim", "output_dim"):
        if FLAGS[name].value is None:
            common.fail(f"--{name} is required")
        if FLAGS[name].value < 1:
            common.fail(f"--{name} must be >= 1, got {FLAGS[name].value}")
    if (FLAGS.hidden_dim is None) == (FLAGS.budget is None):
        common.fail("give exactly one of --hidden_dim and --budget")
    if FLAGS.hidden_dim is not None and FLAGS.hidden_dim < 1:
        common.fail(f"--hidden_dim must be >= 1, got {FLAGS.hidden_dim}")
    if FLAGS.budget is not None and not FLAGS.budget > 0:
        common.fail(f"--budget must be > 0, got {FLAGS.budget}")
    if FLAGS.config == "custom":
        if not FLAGS.densities or len(FLAGS.densities) != 6:
            common.fail("--config=custom needs --densities=hx,hh,hy,yx,yh,yy (six numbers)")
        try:
            dens = {b: float(v) for b, v in zip(BLOCKS, FLAGS.densities)}
        except ValueError:
            common.fail(f"--densities must be six numbers, got {','.join(FLAGS.densities)}")
        if not all(0.0 <= d <= 1.0 for d in dens.values()):
            common.fail(f"--densities must be six numbers in [0, 1], got {','.join(FLAGS.densities)}")
        hidden = FLAGS.hidden_dim or hidden_dim_for_budget(dens, FLAGS.input_dim, FLAGS.output_dim, FLAGS.budget)
        return make_spec(FLAGS.input_dim, hidden, FLAGS.output_dim, dens, name="custom")
    if FLAGS.config in CELLS:
        return cell_spec(
            FLAGS.config, FLAGS.input_dim, FLAGS.output_dim, hidden_dim=FLAGS.hidden_dim, budget=FLAGS.budget
        )
    if FLAGS.config not in NAMED_CONFIGS:
        common.fail(f"--config must be one of {NAMED_CONFIGS + ('custom',) + CELLS}, got {FLAGS.config!r}")
    if FLAGS.config == "balanced" and FLAGS.budget is None:
        common.fail("--config=balanced is defined by a --budget, not a --hidden_dim")
    return named_spec(
        FLAGS.config,
        FLAGS.input_dim,
        FLAGS.output_dim,
        hidden_dim=FLAGS.hidden_dim,
        budget=FLAGS.budget,
        density=FLAGS.density,
        balance_target=FLAGS.balance_target,
    )


def main(argv):
    common.check_no_positional(argv)
    try:
        spec = build_spec()
    except ValueError as e:
        common.fail(str(e))
    if isinstance(spec, CellSpec):
        d = describe_cell(spec)
        print(json.dumps(rounded(d), indent=2) if FLAGS.json else format_cell(d))
        return
    d = describe_dict(spec)
    print(json.dumps(rounded(d), indent=2) if FLAGS.json else format_table(d))


def describe_cell(spec: CellSpec) -> dict:
    c = cell_counts(spec.cell, spec.input_dim, spec.hidden_dim, spec.output_dim)
    return {
        "config": spec.cell,
        "input_dim": spec.input_dim,
        "hidden_dim": spec.hidden_dim,
        "output_dim": spec.output_dim,
        "gates": GATES[spec.cell],
        "input_weights": c.input_weights,
        "hidden_weights": c.hidden_weights,
        "readout_weights": c.readout_weights,
        "trainable_weights": c.weights,
        "biases": c.biases,
        "trainable_params": c.total,
        "hidden_proportion": c.hidden_proportion,
    }


def format_cell(d: dict) -> str:
    return "\n".join(
        [
            f"config={d['config']}  |x|={d['input_dim']}  |h|={d['hidden_dim']}  |y|={d['output_dim']}  "
            f"gates={d['gates']}",
            f"input weights  W_i  ({d['gates']} x {d['hidden_dim']} x {d['input_dim']}) : {d['input_weights']:,}",
            f"hidden weights W_h  ({d['gates']} x {d['hidden_dim']} x {d['hidden_dim']}) : {d['hidden_weights']:,}",
            f"readout        W_yh ({d['output_dim']} x {d['hidden_dim']}) : {d['readout_weights']:,}",
            f"trainable weights : {d['trainable_weights']:,}   biases: {d['biases']:,}   "
            f"total trainable: {d['trainable_params']:,}",
            f"hidden proportion : {d['hidden_proportion']:.4f}   (W_h / (W_i + W_h))",
        ]
    )


if __name__ == "__main__":
    common.run(main)
