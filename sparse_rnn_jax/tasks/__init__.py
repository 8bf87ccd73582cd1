"""Tasks: one package per task (its data, config and ``TaskDef``), the registry, and the run config."""
