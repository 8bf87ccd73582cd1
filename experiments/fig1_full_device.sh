#!/usr/bin/env bash
# Fig. 1 at the paper's full length on one accelerator: both seed sets of experiments/flags/fig1_full.flags side by
# side (seed 0 -> runs/fig1_full, seed 1 -> runs/fig1_full_seed1), each process taking 40 % of the device memory.
# Then each run's small outputs (results.parquet, run.json, manifest.json, sweep.log; no checkpoints) are packed
# into $OUT/fig1_full{,_seed1}.tar.gz for `python -m experiments.replicate --fig1=...`. Digits: MNIST_SOURCE, else
# ../shared/data/mnist or .device/mnist.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/device_fig1}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.4
if [ -z "${MNIST_SOURCE:-}" ]; then
  for d in ../shared/data/mnist .device/mnist; do
    if [ -d "$d" ]; then MNIST_SOURCE="idx:$d"; break; fi
  done
fi
run() {  # seed workdir
  timeout "${RUN_S:-520}" "$PY" -m experiments.rad_sweep --flagfile=experiments/flags/fig1_full.flags \
    --mnist_source="$MNIST_SOURCE" --tensorboard=false --seed="$1" --workdir="$2" > "$OUT/$(basename "$2").log" 2>&1
  echo "$(basename "$2"): exit $?"
  tar -czf "$OUT/$(basename "$2").tar.gz" -C "$(dirname "$2")" \
    "$(basename "$2")/results.parquet" "$(basename "$2")/run.json" "$(basename "$2")/manifest.json" \
    "$(basename "$2")/sweep.log" 2>/dev/null
}
run 0 runs/fig1_full & run 1 runs/fig1_full_seed1 & wait
tail -n 3 "$OUT"/*.log
