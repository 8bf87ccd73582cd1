#!/usr/bin/env bash
# One short check of the engine on an accelerator (about 7 minutes on one GPU), run from the repository root:
#   bash experiments/device_check.sh     # writes runs/device_check/{bench_bfloat16,table_iv_plan,table_iv_plan_bfloat16}.json
# 1. the benchmark with bfloat16 operands (--compute_dtype=bfloat16), which also times the largest population with
#    float32 operands back to back: populations of 1, 8, 64 and 512 Table IV models, the loop baseline, both matmul
#    peaks, padding efficiency and input wait (experiments.bench, JSON);
# 2. a timed slice of the Table IV sweep, once per dtype: experiments/flags/table_iv.flags with --plan --plan_quick,
#    which compiles and times the narrowest and widest hidden-size buckets on this device (full-size chunks on an
#    accelerator), interpolates the others by FLOPs and extrapolates the whole sweep (3,254 models x 25 epochs x
#    30,000 sequences);
# 3. one line per dtype: the extrapolated Table IV wall time, the population's speed-up over a loop, bf16's over
#    float32.
# Every step has its own time limit (BENCH_S, PLAN_S seconds) so that a slow step leaves the others' results; the
# summary reports what finished. Runs without installing anything when JAX, Flax, Optax, Orbax, pandas and
# scikit-learn are importable (as on the accelerator images this project is measured on); digits: MNIST_SOURCE
# (idx:DIR or embedded), else ../shared/data/mnist or .device/mnist when present, else the embedded set.
# SIZES=1,8 tries it out on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/device_check}"
CACHE_DIR="${CACHE_DIR:-$OUT/cache}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${MNIST_SOURCE:-}" ]; then
  for d in ../shared/data/mnist .device/mnist; do
    if [ -d "$d" ]; then MNIST_SOURCE="idx:$d"; break; fi
  done
fi
MNIST_SOURCE="${MNIST_SOURCE:-embedded}"
"$PY" -c "import jax; print('jax', jax.__version__, 'devices:', jax.devices())" || exit 1
timeout "${BENCH_S:-240}" "$PY" -m experiments.bench --sizes="${SIZES:-1,8,64,512}" --loop_sample=8 \
  --compute_dtype=bfloat16 --json="$OUT/bench_bfloat16.json" || echo "bench: exit $? (a timeout is 124)"
for DT in float32 bfloat16; do
  SUFFIX=$([ "$DT" = float32 ] && echo "" || echo "_$DT")
  timeout "${PLAN_S:-100}" "$PY" -m experiments.rad_sweep --flagfile=experiments/flags/table_iv.flags \
    --mnist_source="$MNIST_SOURCE" --cache_dir="$CACHE_DIR" --tensorboard=false --compute_dtype="$DT" \
    --plan --plan_quick --json > "$OUT/table_iv_plan$SUFFIX.json" || echo "plan $DT: exit $? (a timeout is 124)"
done
"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None


bench = load("bench_bfloat16.json")
if bench:
    cmp = bench.get("float32_comparison") or {}
    peaks = bench.get("matmul_peak_flops_by_dtype", {})
    print(f"{bench['device_kind']}: population of {bench['loop']['population']} is "
          f"{bench['population_speedup_vs_loop']:.1f}x a loop (bfloat16 operands); bf16 is "
          f"{cmp.get('speedup', float('nan')):.2f}x the float32 population; matmul peaks "
          + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in peaks.items())
          + f"; FLOP utilisation {bench['flop_utilization']:.0%}")
else:
    print("bench: no result")
for suffix, dt in (("", "float32"), ("_bfloat16", "bfloat16")):
    plan = load(f"table_iv_plan{suffix}.json")
    if plan and plan.get("estimated_seconds"):
        s = plan["estimated_seconds"]
        print(f"{dt} operands: Table IV ({plan['models']} models, {plan['epochs']} epochs) estimated at "
              f"{s / 60:.1f} min ({s / 3600:.2f} h) from the calibrated quick plan")
    else:
        print(f"{dt} plan: no result")
PY
