"""Describes a block RNN's weight space: per-block dims, density and trainable weights (paper Fig. 3-5).

  python -m experiments.describe --input_dim=2500 --output_dim=10 --config=balanced --budget=100000
  python -m experiments.describe --input_dim=2500 --output_dim=10 --config=dense --hidden_dim=29 --json
  python -m experiments.describe --input_dim=46 --output_dim=26 --config=custom \
      --densities=1,0.2,0.2,1,1,0.2 --budget=100000
"""

from __future__ import annotations

import json

from absl import flags

from experiments import common
from sparse_rnn_jax.accounting import describe_dict, format_table
from sparse_rnn_jax.configs import NAMED_CONFIGS, named_spec
from sparse_rnn_jax.solvers import hidden_dim_for_budget
from sparse_rnn_jax.spec import BLOCKS, make_spec

FLAGS = flags.FLAGS
flags.DEFINE_integer("input_dim", None, "|x|, e.g. 2500 for RAD, 46 for Adroit Hammer.")
flags.DEFINE_integer("output_dim", None, "|y|, e.g. 10 for RAD, 26 for Adroit Hammer.")
flags.DEFINE_string("config", "balanced", f"One of {NAMED_CONFIGS + ('custom',)}.")
flags.DEFINE_float("density", 0.2, "Density of every block for --config=uniform.")
flags.DEFINE_list("densities", None, "hx,hh,hy,yx,yh,yy densities for --config=custom.")
flags.DEFINE_integer("hidden_dim", None, "Hidden size |h| (or give --budget).")
flags.DEFINE_float("budget", None, "Trainable-weight budget (biases excluded); |h| is solved from it.")
flags.DEFINE_float("balance_target", 0.5, "Target hidden proportion of --config=balanced.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of the table.")


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
        hidden = FLAGS.hidden_dim or hidden_dim_for_budget(dens, FLAGS.input_dim, FLAGS.output_dim, FLAGS.budget)
        return make_spec(FLAGS.input_dim, hidden, FLAGS.output_dim, dens, name="custom")
    if FLAGS.config not in NAMED_CONFIGS:
        common.fail(f"--config must be one of {NAMED_CONFIGS + ('custom',)}, got {FLAGS.config!r}")
    if FLAGS.config == "balanced" and FLAGS.budget is None:
        common.fail("--config=balanced is defined by a --budget, not a --hidden_dim")
    return named_spec(
        FLAGS.config, FLAGS.input_dim, FLAGS.output_dim, hidden_dim=FLAGS.hidden_dim, budget=FLAGS.budget,
        density=FLAGS.density, balance_target=FLAGS.balance_target,
    )


def main(argv):
    common.check_no_positional(argv)
    try:
        spec = build_spec()
    except ValueError as e:
        common.fail(str(e))
    d = describe_dict(spec)
    print(json.dumps(d, indent=2) if FLAGS.json else format_table(d))


if __name__ == "__main__":
    common.run(main)
