"""Trains a sweep on any Minari dataset, then scores every model in its environment: the former name of
``experiments.minari_sweep``, kept so that existing commands and launch scripts work unchanged.

python -m experiments.ah_sweep --flagfile=experiments/flags/ah_smoke.flags
"""

from __future__ import annotations

from experiments import minari_sweep

if __name__ == "__main__":
    minari_sweep.main()
