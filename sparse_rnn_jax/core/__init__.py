"""Network specs, weight-space accounting, budget solving, named configurations and samplers (numpy only)."""
