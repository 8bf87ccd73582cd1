"""Trains a sweep on Random Anomaly Detection (the paper's Table IV task): ``experiments.sweep --task=rad``.

python -m experiments.rad_sweep --flagfile=experiments/flags/rad_smoke.flags
"""

from __future__ import annotations

from absl import flags

from experiments import common, sweep, sweep_flags

flags.adopt_module_key_flags(sweep_flags)
sweep_flags.define_task_flags(["rad"])

if __name__ == "__main__":
    common.run(lambda argv: sweep.run_task("rad", argv))
