"""Trains a sweep on the embedded Reber grammar (next-symbol sets or classification):
``experiments.sweep --task=reber``.

python -m experiments.reber_sweep --flagfile=experiments/flags/reber_smoke.flags
"""

from __future__ import annotations

from absl import flags

from experiments import common, sweep, sweep_flags

flags.adopt_module_key_flags(sweep_flags)
sweep_flags.define_task_flags(["reber"])

if __name__ == "__main__":
    common.run(lambda argv: sweep.run_task("reber", argv))
