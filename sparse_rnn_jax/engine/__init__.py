"""The population engine: the task protocol, populations (buckets, chunks), the train and evaluate programs with
the one padded step loop, sweeps with checkpoints and resume, the results table and the workdir's files."""
