#!/usr/bin/env bash
# `bench throughput` on CUDA: decode tokens/s of dense, TOVA CR 8 and DMS
# (≈ CR 8) at equal KV memory — the memory of one dense sequence — for an
# R1-Distill-Qwen-1.5B-shaped model (seeded random weights, `+dms` adds
# decisions that evict 7/8 of the tokens leaving a 64-token window) at 16k
# and 32k positions. A stage of scripts/gpu-check.sh, runnable alone:
#   bash scripts/gpu-throughput.sh BINARY OUT_DIR
# Writes OUT_DIR/throughput-<policy>-<context>.json; exit 1 if any run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?binary}
OUT=${2:?output folder}
mkdir -p "$OUT"
status=0
for context in 16384 32768; do
  for variant in "synthetic:r1-distill-qwen-1.5b tova" "synthetic:r1-distill-qwen-1.5b+dms dms"; do
    set -- $variant
    echo "[gpu-throughput] $2 CR 8 vs dense at $context positions" >&2
    timeout 150 "$BIN" bench throughput --model "$1" --device cuda --policy "$2" --cr 8 \
      --context "$context" --rounds 3 --steps 8 --warmup 2 \
      --json "$OUT/throughput-$2-$context.json" || status=1
  done
done
exit $status
