#!/usr/bin/env bash
# GPU check for an NVIDIA machine without Rust or network access.
#
# Build here (any machine with the repository and Rust):
#   CUDARC_CUDA_VERSION=13000 cargo build --release --no-default-features --features cuda
#   xz -T0 -9 -c target/release/hyperscale > hyperscale.xz
# Carry hyperscale.xz, scripts/gpu-check.sh, scripts/gpu_peer.py and
# models/SmolLM2-135M-Instruct.Q4_1.gguf (from scripts/setup.sh), then run
#   bash scripts/gpu-check.sh [BINARY(.xz)] [OUT_DIR]
# It takes under 8 minutes and writes OUT_DIR/gpu-check.json (default
# OUT_DIR=gpu-check): driver and libraries, CUDA-vs-CPU logit parity,
# decode tokens/s of an R1-Distill-Qwen-1.5B-shaped model with seeded random
# weights (bf16 projections, CUDA's default `--decode-weights auto`; generated
# on the host, no download) at W ∈ {1,16,64} and 4k/16k
# positions, dense and DMS (≈8× beyond a 64-token window), against the
# device's measured read bandwidth, and, when torch + transformers import,
# the same shapes through HF transformers (SDPA, bf16) as the peer.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-hyperscale.xz}
OUT=${2:-gpu-check}
mkdir -p "$OUT"
if [[ "$BIN" == *.xz ]]; then
  xz -dc "$BIN" > "$OUT/hyperscale" && chmod +x "$OUT/hyperscale" || { echo "cannot unpack $BIN" >&2; exit 1; }
  BIN="$OUT/hyperscale"
fi
START=$(date +%s)
log() { echo "[gpu-check +$(( $(date +%s) - START ))s] $*" >&2; }
status=0

# 1. Driver and the libraries cudarc opens at run time.
log "driver and libraries"
{
  echo '{'
  echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "\"gpu\": \"$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)\","
  echo "\"libcuda\": \"$(ldconfig -p | grep -m1 -o '/[^ ]*libcuda\.so[^ ]*')\","
  echo "\"libnvrtc\": \"$(ldconfig -p | grep -m1 -o '/[^ ]*libnvrtc\.so[^ ]*')\","
  echo "\"binary\": \"$("$BIN" --version 2>&1)\""
  echo '}'
} > "$OUT/driver.json"
cat "$OUT/driver.json" >&2
if ! ldconfig -p | grep -q libnvrtc; then
  log "warning: libnvrtc not in the linker cache; cudarc may fail to compile kernels"
fi

# 2. Parity: the same weights on CUDA and on the CPU. The CPU reference runs
# the candidate's weight form: bf16 (CUDA's default; tolerance 3e-2, the
# rounding of each projection's output to bf16 compounds over the layers)
# and f32 (tolerance 1e-3).
SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf
for m in "$SMOL" synthetic:r1-distill-qwen-1.5b; do
  name=$(basename "${m#synthetic:}" .gguf)
  if [[ "$m" == models/* && ! -f "$m" ]]; then log "skip parity on $m (not carried)"; continue; fi
  for w in bf16 f32; do
    # The 1.5B model's f32 parity adds nothing the small ones don't check.
    [[ "$m" == synthetic:* && "$w" == f32 ]] && continue
    log "parity $m ($w weights)"
    timeout 180 "$BIN" bench parity --model "$m" --device cuda --decode-weights "$w" --steps 8 \
      --json "$OUT/parity-$name-$w.json" || status=1
  done
done

# 3. Decode speed: dense and DMS, W × context, with the device bandwidth.
for variant in "synthetic:r1-distill-qwen-1.5b --policy dense" "synthetic:r1-distill-qwen-1.5b+dms --policy dms"; do
  set -- $variant
  log "bench decode $variant"
  timeout 240 "$BIN" bench decode --model "$1" --device cuda "${@:2}" --batch 1,16,64 --context 4096,16384 \
    --steps 16 --warmup 3 --json "$OUT/decode-${1#synthetic:}.json" || status=1
done

# 4. The peer: HF transformers on the same shapes, when it is installed.
if python3 -c "import torch, transformers" 2>/dev/null; then
  log "peer: transformers"
  timeout 150 python3 scripts/gpu_peer.py --out "$OUT/peer-transformers.json" || status=1
else
  log "peer skipped: torch/transformers not importable"
fi

# 4b. Throughput at equal KV memory (scripts/gpu-throughput.sh): a separate
# stage (up to 10 more minutes), guarded so it cannot stop the rest; its
# failure only sets status.
if [[ -f scripts/gpu-throughput.sh ]]; then
  log "bench throughput (dense vs TOVA / DMS CR 8 at 16k, 32k)"
  timeout 600 bash scripts/gpu-throughput.sh "$BIN" "$OUT" || status=1
fi

# 5. One file.
python3 - "$OUT" <<'PY' 2>/dev/null || log "python3 missing: results stay in $OUT/*.json"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
doc = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "gpu-check.json"}
(out / "gpu-check.json").write_text(json.dumps(doc, indent=1))
PY
log "done (status $status); results in $OUT/"
exit $status
