"""Trains a sweep on Adroit Hammer expert data (behaviour cloning), then scores every model in the environment
(the paper's Table III task): ``experiments.sweep --task=ah``.

python -m experiments.ah_sweep --flagfile=experiments/flags/ah_smoke.flags
"""

from __future__ import annotations

from absl import flags

from experiments import common, sweep, sweep_flags

flags.adopt_module_key_flags(sweep_flags)
sweep_flags.define_task_flags(["ah"])

if __name__ == "__main__":
    common.run(lambda argv: sweep.run_task("ah", argv))
