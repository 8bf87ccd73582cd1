#!/usr/bin/env bash
# One short check of the engine on an accelerator (about 15 minutes on one GPU), run from the repository root:
#   bash experiments/device_check.sh     # writes runs/device_check/{bench,table_iv_plan}{,_bfloat16}.json
# Steps 1 and 2 run twice: float32 operands, then bfloat16 operands with float32 accumulation (--compute_dtype).
# 1. the benchmark: populations of 1, 8, 64 and 512 Table IV models, the loop baseline, the matmul peak, padding
#    efficiency and input wait (experiments.bench, JSON);
# 2. a timed slice of the Table IV sweep: experiments/flags/table_iv.flags with --plan, which times every bucket's
#    compiled train step and evaluation on this device (full-size chunks on an accelerator) and extrapolates the
#    whole sweep (3,254 models x 25 epochs x 30,000 sequences);
# 3. one line per dtype: the extrapolated Table IV wall time, the population's speed-up over a loop (and bf16's over
#    float32).
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
for DT in float32 bfloat16; do  # bf16 operands with f32 accumulation: the tensor-core path (--compute_dtype)
  SUFFIX=$([ "$DT" = float32 ] && echo "" || echo "_$DT")
  timeout 330 "$PY" -m experiments.bench --sizes="${SIZES:-1,8,64,512}" --loop_sample=8 --compute_dtype="$DT" \
    --json="$OUT/bench$SUFFIX.json"
  timeout 300 "$PY" -m experiments.rad_sweep --flagfile=experiments/flags/table_iv.flags --mnist_source="$MNIST_SOURCE" \
    --cache_dir="$OUT/cache" --tensorboard=false --compute_dtype="$DT" --plan --json > "$OUT/table_iv_plan$SUFFIX.json"
done
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for suffix in ("", "_bfloat16"):
    bench = json.load(open(f"{out}/bench{suffix}.json"))
    plan = json.load(open(f"{out}/table_iv_plan{suffix}.json"))
    s = plan["estimated_seconds"]
    vs = bench.get("float32_comparison")
    print(f"{bench['device_kind']}, {bench['compute_dtype']} operands: Table IV ({plan['models']} models, "
          f"{plan['epochs']} epochs) estimated at {s / 60:.1f} min ({s / 3600:.2f} h) from the calibrated plan; "
          f"the bench's throughput gives {bench.get('table_iv_estimate_s', float('nan')) / 60:.1f} min; population "
          f"of {bench['loop']['population']} is {bench['population_speedup_vs_loop']:.1f}x a loop; FLOP utilization "
          f"{bench['flop_utilization']:.0%}" + (f"; {vs['speedup']:.2f}x the float32 population" if vs else ""))
PY
