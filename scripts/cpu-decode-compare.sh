#!/usr/bin/env bash
# Side-by-side CPU decode speed: llama.cpp's llama-bench against
# `hyperscale bench decode` (the exact `quantized` path and `q8act`) on the
# same GGUF files, in alternated rounds; prints medians and ratios and
# writes them as JSON (docs/cpu-kernels.md).
#
#   scripts/cpu-decode-compare.sh --build-llama /tmp/llama.cpp-build   # once: builds llama-bench
#   LLAMA_BENCH=/tmp/llama.cpp-build/bin/llama-bench scripts/cpu-decode-compare.sh
#
# Options (all optional):
#   --rounds N        alternated rounds (default 3; medians need ≥ 3)
#   --threads N       threads for both engines (default 2)
#   --contexts LIST   comma-separated contexts (default 128,1024)
#   --steps N         timed decode steps per hyperscale point (default 32)
#   --gen N           tokens llama-bench generates per point (default 64)
#   --models LIST     comma-separated GGUF files (default: SmolLM2 Q4_1, and
#                     the Qwen2.5 Q4_K_M of scripts/fetch-qwen-q4km.sh if present)
#   --out DIR         where raw results and summary.json go
#                     (default results/cpu-compare-<UTC time>)
#   --build-llama DIR download llama-cpp-python 0.3.36's sdist from PyPI
#                     (it vendors llama.cpp), build llama-bench into DIR
#                     (Release, GGML_NATIVE=ON) and exit
#
# Environment: LLAMA_BENCH (default: llama-bench on PATH), HYPERSCALE
# (default: target/release/hyperscale; build it with
# `cargo build --release --features wgpu`), LLAMA_EXTRA (more llama-bench
# arguments, e.g. `--repack 0`: llama.cpp 0.3.36's AMX path crashes on
# CPUs with AMX when a context is prefilled), LLAMA_FA (llama-bench's
# flash attention, default 0: its default, auto, picks flash attention on
# the CPU, which decoded SmolLM2 at context 1024 at half the tokens/s of
# `-fa 0` on the 2-core CI box; the comparison is against llama.cpp's
# faster setting).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
THREADS=2
CONTEXTS=128,1024
STEPS=32
GEN=64
MODELS=""
OUT=""
BUILD_LLAMA=""
LLAMA_VERSION=0.3.36

die() {
  echo "error: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
  --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
  --contexts) CONTEXTS=${2:?--contexts needs a value}; shift 2 ;;
  --steps) STEPS=${2:?--steps needs a value}; shift 2 ;;
  --gen) GEN=${2:?--gen needs a value}; shift 2 ;;
  --models) MODELS=${2:?--models needs a value}; shift 2 ;;
  --out) OUT=${2:?--out needs a value}; shift 2 ;;
  --build-llama) BUILD_LLAMA=${2:?--build-llama needs a directory}; shift 2 ;;
  -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
  *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in ROUNDS THREADS STEPS GEN; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer, got '${!v}'"
done
[[ $CONTEXTS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--contexts must be comma-separated integers, got '$CONTEXTS'"

if [ -n "$BUILD_LLAMA" ]; then
  mkdir -p "$BUILD_LLAMA"
  src="$BUILD_LLAMA/src"
  if [ ! -d "$src/llama_cpp_python-$LLAMA_VERSION" ]; then
    mkdir -p "$src"
    # --no-build-isolation: only the sdist is wanted, not its build backend's
    # dependencies built from source (needs scikit-build-core installed).
    python3 -m pip install --quiet scikit-build-core cmake ninja
    python3 -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
      "llama-cpp-python==$LLAMA_VERSION" -d "$src"
    tar xzf "$src/llama_cpp_python-$LLAMA_VERSION.tar.gz" -C "$src"
  fi
  nice -n 10 cmake -S "$src/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp" -B "$BUILD_LLAMA" \
    -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
  nice -n 10 ninja -C "$BUILD_LLAMA" llama-bench
  echo "built $BUILD_LLAMA/bin/llama-bench"
  exit 0
fi

LLAMA_BENCH=${LLAMA_BENCH:-llama-bench}
HYPERSCALE=${HYPERSCALE:-target/release/hyperscale}
command -v "$LLAMA_BENCH" >/dev/null || die "llama-bench not found ($LLAMA_BENCH): set LLAMA_BENCH or run --build-llama DIR"
[ -x "$HYPERSCALE" ] || die "$HYPERSCALE is not an executable: cargo build --release --features wgpu, or set HYPERSCALE"
if [ -z "$MODELS" ]; then
  MODELS=models/SmolLM2-135M-Instruct.Q4_1.gguf
  qwen=models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
  [ -f "$qwen" ] && MODELS="$MODELS,$qwen"
fi
IFS=, read -r -a models <<<"$MODELS"
IFS=, read -r -a contexts <<<"$CONTEXTS"
for m in "${models[@]}"; do [ -f "$m" ] || die "--models: $m is not a file"; done
OUT=${OUT:-results/cpu-compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/raw"

echo "cpu-decode-compare: $ROUNDS rounds, $THREADS threads, contexts $CONTEXTS; results in $OUT"
for round in $(seq 1 "$ROUNDS"); do
  for m in "${models[@]}"; do
    tag=$(basename "$m" .gguf)
    for ctx in "${contexts[@]}"; do
      echo "round $round: $tag context $ctx: llama.cpp"
      # shellcheck disable=SC2086 # LLAMA_EXTRA is a word list
      "$LLAMA_BENCH" -m "$m" -p 0 -n "$GEN" -d "$ctx" -t "$THREADS" -fa "${LLAMA_FA:-0}" -r 1 -o jsonl ${LLAMA_EXTRA:-} \
        >"$OUT/raw/llama-$tag-c$ctx-r$round.jsonl" 2>"$OUT/raw/llama-$tag-c$ctx-r$round.log"
      for form in quantized q8act; do
        echo "round $round: $tag context $ctx: hyperscale $form"
        RAYON_NUM_THREADS=$THREADS "$HYPERSCALE" bench decode --model "$m" \
          --decode-weights "$form" --batch 1,16 --context "$ctx" --steps "$STEPS" \
          --json "$OUT/raw/hs-$tag-$form-c$ctx-r$round.json" \
          >"$OUT/raw/hs-$tag-$form-c$ctx-r$round.log" 2>&1
      done
    done
  done
done

python3 - "$OUT" <<'PY'
import glob, json, os, re, statistics, sys

out = sys.argv[1]
runs = {}  # (model, engine, batch, context) -> [tok/s per round]
for path in glob.glob(f"{out}/raw/llama-*.jsonl"):
    model, ctx = re.match(r".*/llama-(.+)-c(\d+)-r\d+\.jsonl$", path).groups()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rec = json.loads(line)
                if rec.get("n_gen", 0) > 0:
                    runs.setdefault((model, "llama.cpp", 1, int(ctx)), []).append(rec["avg_ts"])
for path in glob.glob(f"{out}/raw/hs-*.json"):
    model, form, ctx = re.match(r".*/hs-(.+)-(quantized|q8act)-c(\d+)-r\d+\.json$", path).groups()
    with open(path) as f:
        rep = json.load(f)
    for p in rep["points"]:
        key = (model, f"hyperscale {form}", p["batch"], p["context"])
        runs.setdefault(key, []).append(p["decode_tokens_per_second"])

rows = []
for (model, engine, batch, ctx), v in sorted(runs.items()):
    rows.append(dict(model=model, engine=engine, batch=batch, context=ctx,
                     rounds=len(v), median_tok_s=statistics.median(v),
                     min_tok_s=min(v), max_tok_s=max(v)))
med = {(r["model"], r["engine"], r["batch"], r["context"]): r["median_tok_s"] for r in rows}
ratios = []
for (model, engine, batch, ctx), m in sorted(med.items()):
    base = med.get((model, "llama.cpp", 1, ctx))
    if engine != "llama.cpp" and batch == 1 and base:
        ratios.append(dict(model=model, context=ctx, what=f"{engine} / llama.cpp (batch 1)",
                           ratio=m / base))
    one = med.get((model, engine, 1, ctx))
    if batch == 16 and one:
        ratios.append(dict(model=model, context=ctx, what=f"{engine} W=16 / W=1", ratio=m / one))

print(f"\n{'model':<40} {'engine':<22} {'batch':>5} {'ctx':>5} {'median tok/s':>12} {'range':>17}")
for r in rows:
    rng = f"{r['min_tok_s']:.1f}–{r['max_tok_s']:.1f}"
    print(f"{r['model']:<40} {r['engine']:<22} {r['batch']:>5} {r['context']:>5} "
          f"{r['median_tok_s']:>12.1f} {rng:>17}")
print()
for r in ratios:
    print(f"{r['model']:<40} ctx {r['context']:>5}  {r['what']:<40} {r['ratio']:.2f}×")
summary = dict(rows=rows, ratios=ratios)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(f"\n{out}/summary.json")
PY
