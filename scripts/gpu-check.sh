#!/usr/bin/env bash
# GPU check for an NVIDIA machine without Rust or network access, in stages
# under one global deadline.
#
# Build here (any machine with the repository and Rust):
#   CUDARC_CUDA_VERSION=13000 cargo build --release --no-default-features --features cuda
#   strip -o hyperscale target/release/hyperscale && xz -T0 -9 -c hyperscale > hyperscale.xz
# Carry hyperscale.xz with the repository's scripts/ and tests/fixtures/
# (all well under 64 MiB), then run
#   bash scripts/gpu-check.sh [BINARY(.xz)] [OUT_DIR]
#
# Every stage runs under `timeout`, capped by what is left of DEADLINE_S
# (default 540 s, under one 600 s command), and writes OUT_DIR/<stage>.log,
# its own results OUT_DIR/<stage>.json (the binary's --json) and
# OUT_DIR/<stage>.status.json as it finishes, so a kill loses only the stage
# it interrupts. OUT_DIR/gpu-check.json gathers them at the end.
#
# Stages: environment (driver, libraries, the binary's highest glibc symbol
# against this machine's glibc); probe (the binary's own device probe:
# driver, NVRTC against the driver, CUDA headers, compute capability);
# parity against the CPU (synthetic SmolLM2-135M shape in f32 and bf16, the
# R1-Distill-Qwen-1.5B shape in bf16, the tiny Qwen2 fixture in f32 and
# bf16; in the rehearsal f16 for bf16); a warm-up that fills the persistent kernel cache; decode tokens/s
# (with --profile) of the 1.5B shape at W ∈ {1,16,64} × {4k,16k}, dense and
# DMS, one process per context; when torch + transformers import, HF
# transformers on the same shapes as the peer; and the throughput benchmark
# at equal KV memory (dense against TOVA CR 8 and against DMS, in one dense
# sequence's memory) at 16k and 32k positions.
#
# ONLY=name,prefix,... runs just the stages whose names start with one of
# them (environment and probe always run), e.g. ONLY=throughput for a rerun
# that spends its minutes where the first run's deadline cut.
#
# DEVICE=wgpu rehearses the whole script on burn's wgpu backend (Mesa's
# lavapipe on a CI box) with small shapes in a few minutes; BIN defaults to
# the cargo-built binary there. JSON is written by jq or python3, never echo.
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
if [[ "$DEVICE" == wgpu ]]; then
  default_bin="${CARGO_TARGET_DIR:-target}/release/hyperscale"
else
  default_bin=hyperscale.xz
fi
BIN=${1:-$default_bin}
OUT=${2:-gpu-check}
DEADLINE_S=${DEADLINE_S:-540}
START=$SECONDS
mkdir -p "$OUT" || exit 1
log() { echo "[gpu-check +$(( SECONDS - START ))s] $*" >&2; }
status=0

# JSON from key/value string pairs: `json_file FILE k1 v1 k2 v2 ...`.
json_file() {
  local file=$1; shift
  if command -v jq >/dev/null; then
    local args=()
    while (( $# >= 2 )); do args+=(--arg "$1" "$2"); shift 2; done
    jq -n "${args[@]}" '$ARGS.named' > "$file"
  elif command -v python3 >/dev/null; then
    python3 -c 'import json, sys; a = sys.argv[2:]; json.dump(dict(zip(a[::2], a[1::2])), open(sys.argv[1], "w"), indent=1)' "$file" "$@"
  else
    log "neither jq nor python3: $file not written"; return 1
  fi
}

# The binary is unpacked outside OUT_DIR (OUT_DIR holds results only).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
if [[ "$BIN" == *.xz ]]; then
  xz -dc "$BIN" > "$WORK/hyperscale" && chmod +x "$WORK/hyperscale" || { log "cannot unpack $BIN"; exit 1; }
  BIN="$WORK/hyperscale"
fi
[[ -x "$BIN" ]] || { log "no executable binary at $BIN"; exit 1; }

# Whether ONLY selects stage NAME (the probe always runs).
selected() {
  [[ -z "${ONLY:-}" || $1 == probe ]] && return 0
  local p picks
  IFS=, read -ra picks <<< "$ONLY"
  for p in "${picks[@]}"; do [[ -n "$p" && $1 == "$p"* ]] && return 0; done
  return 1
}

# Run one stage: `stage NAME CAP_S CMD...`, CMD capped by the deadline.
STAGES=()
stage() {
  local name=$1 cap=$2; shift 2
  local left=$(( DEADLINE_S - (SECONDS - START) )) t0=$SECONDS rc result
  selected "$name" || return 0
  STAGES+=("$name")
  if (( left < 10 )); then
    log "skip $name: the global deadline (${DEADLINE_S}s) is reached"
    json_file "$OUT/$name.status.json" stage "$name" result skipped seconds 0 cap_s 0
    status=1; return
  fi
  (( cap > left )) && cap=$left
  log "$name (at most ${cap}s)"
  timeout --kill-after=5 "$cap" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) result=ok ;;
    124|137) result=timeout; status=1 ;;
    *) result=failed; status=1 ;;
  esac
  json_file "$OUT/$name.status.json" stage "$name" result "$result" exit_code "$rc" \
    seconds "$(( SECONDS - t0 ))" cap_s "$cap"
  log "$name: $result (rc $rc, $(( SECONDS - t0 ))s)"
  [[ $result == ok ]] || tail -n 5 "$OUT/$name.log" >&2
}

# 1. Environment: driver, libraries, glibc. A binary needing a newer glibc
# than this machine's cannot start: say so in one line and stop.
need=$(grep -ao 'GLIBC_[0-9][0-9.]*' "$BIN" | sed 's/GLIBC_//' | sort -uV | tail -n 1)
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
json_file "$OUT/environment.json" \
  date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  device "$DEVICE" \
  gpu "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)" \
  libcuda "$(ldconfig -p 2>/dev/null | grep -m1 -o '/[^ ]*libcuda\.so[^ ]*')" \
  libnvrtc "$(ldconfig -p 2>/dev/null | grep -m1 -o '/[^ ]*libnvrtc\.so[^ ]*')" \
  cuda_path "${CUDA_PATH:-}" \
  binary "$("$BIN" --version 2>&1 | head -n 1)" \
  binary_glibc "$need" \
  machine_glibc "$have"
log "environment: binary needs glibc $need, this machine has ${have:-unknown}"
if [[ -n "$need" && -n "$have" && "$(printf '%s\n%s\n' "$need" "$have" | sort -V | tail -n 1)" != "$have" ]]; then
  log "error: the binary needs glibc $need but this machine has $have; build it on an older distribution"
  exit 1
fi

# Shapes: the mission's on a GPU, small ones in the rehearsal.
if [[ "$DEVICE" == wgpu ]]; then
  SMALL=tests/fixtures/models/tiny-qwen2
  # f16 stands in for CUDA's bf16 (WGSL has no bf16): the same
  # half-precision projections and fused kernels.
  PARITY=("$SMALL f32" "$SMALL f16" "tests/fixtures/models/tiny-llama f32")
  BIG=tests/fixtures/models/tiny-qwen3
  BIG_DMS=tests/fixtures/models/tiny-qwen3-dms-neuron
  BATCH=1,4 CONTEXTS=(64 192) STEPS=4 WARMUP=1 LONG=(192)
else
  PARITY=("synthetic:smollm2-135m f32" "synthetic:smollm2-135m bf16"
          "synthetic:r1-distill-qwen-1.5b bf16"
          "tests/fixtures/models/tiny-qwen2 f32" "tests/fixtures/models/tiny-qwen2 bf16")
  BIG=synthetic:r1-distill-qwen-1.5b
  BIG_DMS=synthetic:r1-distill-qwen-1.5b+dms
  BATCH=1,16,64 CONTEXTS=(4096 16384) STEPS=16 WARMUP=3 LONG=(16384 32768)
fi

# 2. The binary's own probe (driver, NVRTC vs driver, headers, compute
# capability; each failure one line): a two-step parity on the smallest model.
stage probe 60 "$BIN" bench parity --model tests/fixtures/models/tiny-qwen2 --device "$DEVICE" \
  --steps 1 --json "$OUT/probe.json"
if [[ $(jq -r .result "$OUT/probe.status.json" 2>/dev/null || python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"])' "$OUT/probe.status.json" 2>/dev/null) != ok ]]; then
  log "error: the device probe failed (see $OUT/probe.log); nothing else can run"
  exit 1
fi

# 3. Parity against the CPU running the same weight form: bf16 (f16 in the
# rehearsal) tolerance 3e-2 (each side rounds every projection's output to
# the half dtype), f32 1e-3.
for p in "${PARITY[@]}"; do
  set -- $p
  name=$(basename "${1#synthetic:}")
  stage "parity-$name-$2" 120 "$BIN" bench parity --model "$1" --device "$DEVICE" \
    --decode-weights "$2" --steps 8 --json "$OUT/parity-$name-$2.json"
done

# 4. Warm-up: compile and autotune the decode kernels once into the
# persistent kernel cache, so the timed stages start warm.
stage warmup 120 "$BIN" bench decode --model "$BIG" --device "$DEVICE" --policy dense \
  --batch "$BATCH" --context "${CONTEXTS[0]}" --steps 1 --warmup 1

# 5. Decode speed with the step profile: dense and DMS, one process per
# context (a timeout loses one context, not the sweep).
for ctx in "${CONTEXTS[@]}"; do
  stage "decode-dense-$ctx" 150 "$BIN" bench decode --model "$BIG" --device "$DEVICE" --policy dense \
    --batch "$BATCH" --context "$ctx" --steps "$STEPS" --warmup "$WARMUP" --profile \
    --json "$OUT/decode-dense-$ctx.json"
  stage "decode-dms-$ctx" 150 "$BIN" bench decode --model "$BIG_DMS" --device "$DEVICE" --policy dms \
    --batch "$BATCH" --context "$ctx" --steps "$STEPS" --warmup "$WARMUP" --profile \
    --json "$OUT/decode-dms-$ctx.json"
done

# 6. The peer: HF transformers on the same shapes, when it is installed.
if [[ "$DEVICE" == cuda ]] && python3 -c "import torch, transformers" 2>/dev/null; then
  stage peer-transformers 150 python3 scripts/gpu_peer.py --out "$OUT/peer-transformers.json"
else
  log "peer skipped (a rehearsal, or torch/transformers not importable)"
fi

# 7. Throughput at equal KV memory: dense against TOVA CR 8 and against
# DMS, each in the memory of one dense sequence of the context, side by side
# in one process (medians of 3 alternated rounds).
for ctx in "${LONG[@]}"; do
  stage "throughput-tova-$ctx" 150 "$BIN" bench throughput --model "$BIG" --device "$DEVICE" \
    --policy tova --cr 8 --context "$ctx" --json "$OUT/throughput-tova-$ctx.json"
  stage "throughput-dms-$ctx" 150 "$BIN" bench throughput --model "$BIG_DMS" --device "$DEVICE" \
    --policy dms --context "$ctx" --json "$OUT/throughput-dms-$ctx.json"
done

# 8. One file: every stage's status and results.
if command -v python3 >/dev/null; then
  python3 - "$OUT" "${STAGES[@]}" <<'PY' || status=1
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
load = lambda p: json.loads(p.read_text()) if p.exists() else None
doc = {"environment": load(out / "environment.json"), "stages": {}}
for name in sys.argv[2:]:
    doc["stages"][name] = {"status": load(out / f"{name}.status.json"), "results": load(out / f"{name}.json")}
(out / "gpu-check.json").write_text(json.dumps(doc, indent=1))
PY
else
  log "python3 missing: results stay in $OUT/*.json"
fi
log "done (status $status); results in $OUT/"
exit $status
