"""Studies on top of the engine and tasks: pruning, per-lag gradient scales, the benchmark."""
