#!/usr/bin/env bash
# One short check of the engine on an accelerator (about 8 minutes on one GPU), run from the repository root:
#   bash experiments/device_check.sh                 # writes runs/device_check/{bench.json,table_iv_plan.json}
# 1. the benchmark: populations of 1, 8, 64 and 512 Table IV models, the loop baseline, the matmul peak, padding
#    efficiency and input wait (experiments.bench, JSON);
# 2. a timed slice of the Table IV sweep: experiments/flags/table_iv.flags with --plan, which times every bucket's
#    compiled train step and evaluation on this device (full-size chunks on an accelerator) and extrapolates the
#    whole sweep (3,254 models x 25 epochs x 30,000 sequences);
# 3. one line: the extrapolated Table IV wall time, and the population's speed-up over a loop.
# Runs without installing anything when JAX, Flax, Optax, Orbax, pandas and scikit-learn are importable (as on the
# accelerator images this project is measured on); digits: MNIST_SOURCE (idx:DIR or embedded), else
# ../shared/data/mnist or .device/mnist when present, else the embedded set. SIZES=1,8 tries it out on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/device_check}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${MNIST_SOURCE:-}" ]; then
  for d in ../shared/data/mnist .device/mnist; do
    if [ -d "$d" ]; then MNIST_SOURCE="idx:$d"; break; fi
  done
fi
MNIST_SOURCE="${MNIST_SOURCE:-embedded}"
"$PY" -c "import jax; print('devices:', jax.devices())"
timeout 330 "$PY" -m experiments.bench --sizes="${SIZES:-1,8,64,512}" --loop_sample=8 --json="$OUT/bench.json"
timeout 300 "$PY" -m experiments.rad_sweep --flagfile=experiments/flags/table_iv.flags --mnist_source="$MNIST_SOURCE" \
  --cache_dir="$OUT/cache" --tensorboard=false --plan --json > "$OUT/table_iv_plan.json"
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
bench = json.load(open(f"{out}/bench.json"))
plan = json.load(open(f"{out}/table_iv_plan.json"))
s = plan["estimated_seconds"]
print(f"{bench['device_kind']}: Table IV ({plan['models']} models, {plan['epochs']} epochs) estimated at "
      f"{s / 60:.1f} min ({s / 3600:.2f} h) from the calibrated plan; the bench's throughput gives "
      f"{bench.get('table_iv_estimate_s', float('nan')) / 60:.1f} min; population of "
      f"{bench['loop']['population']} is {bench['population_speedup_vs_loop']:.1f}x a loop; "
      f"FLOP utilization {bench['flop_utilization']:.0%}")
PY
