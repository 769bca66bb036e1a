#!/usr/bin/env python3
"""Dequantization fixtures for tests/model/gguf.rs, from gguf-py's reference
implementation (`gguf.quants.dequantize`).

    pip install gguf numpy
    python scripts/make_quant_fixtures.py [--smollm2 models/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes tests/fixtures/quant/blocks.json: for each ggml type the Rust side
dequantizes, a few blocks of seeded random data (raw bytes in base64, with
every f16 scale field set to a finite value) and the f32 values gguf-py
gives for them.

With --smollm2 it also writes tests/fixtures/quant/smollm2_tensors.json:
SHA-256 digests of the little-endian f32 data of a few real tensors,
dequantized by gguf-py, both in GGUF layout and (for attn_q / attn_k) in
the Hugging Face layout obtained by undoing llama.cpp's permutation with
numpy's reshape/swapaxes.
"""

import argparse
import base64
import hashlib
import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "quant"
SEED = 20261128

# Byte offsets of the f16 scale fields inside one block of each type.
F16_FIELDS = {
    T.Q8_0: [0],
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q4_K: [0, 2],
    T.Q6_K: [208],
}


def random_blocks(rng, qtype, n_blocks):
    block, size = GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        return rng.normal(0, 3, n_blocks).astype("<f4").tobytes()
    if qtype == T.F16:
        return rng.normal(0, 3, n_blocks).astype("<f2").tobytes()
    if qtype == T.BF16:
        bits = rng.normal(0, 3, n_blocks).astype("<f4").view("<u4") >> 16
        return bits.astype("<u2").tobytes()
    raw = bytearray(rng.integers(0, 256, n_blocks * size, dtype=np.uint8).tobytes())
    for b in range(n_blocks):
        for at in F16_FIELDS[qtype]:
            scale = np.float16(rng.uniform(-0.05, 0.05) if at == 0 or qtype == T.Q6_K else rng.uniform(-1, 1))
            raw[b * size + at : b * size + at + 2] = scale.tobytes()
    return bytes(raw)


def blocks_fixture():
    rng = np.random.default_rng(SEED)
    cases = []
    for qtype in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q4_K, T.Q6_K]:
        block, _ = GGML_QUANT_SIZES[qtype]
        n_blocks = 6 if block > 1 else 64
        raw = random_blocks(rng, qtype, n_blocks)
        values = dequantize(np.frombuffer(raw, dtype=np.uint8), qtype).astype(np.float32)
        assert values.size == n_blocks * block and np.isfinite(values).all()
        cases.append({
            "type": qtype.name,
            "type_id": int(qtype),
            "n_values": int(values.size),
            "bytes_b64": base64.b64encode(raw).decode(),
            "values": [float(v) for v in values.ravel()],
        })
    doc = {"generator": "scripts/make_quant_fixtures.py", "seed": SEED, "cases": cases}
    (OUT / "blocks.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(cases)} types to tests/fixtures/quant/blocks.json")


def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def unpermute(w, n_head):
    # Inverse of llama.cpp convert_hf_to_gguf.py's permute of the q/k rows (RoPE pair order).
    rows = w.shape[0]
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def smollm2_fixture(path):
    reader = GGUFReader(path)
    n_head = int(reader.fields["llama.attention.head_count"].contents())
    n_kv = int(reader.fields["llama.attention.head_count_kv"].contents())
    wanted = {
        "token_embd.weight": None,
        "blk.0.attn_q.weight": n_head,
        "blk.0.attn_k.weight": n_kv,
        "blk.0.attn_v.weight": None,
        "blk.17.ffn_gate.weight": None,
        "blk.29.ffn_down.weight": None,
        "blk.29.attn_norm.weight": None,
        "output_norm.weight": None,
    }
    tensors = []
    for t in reader.tensors:
        if t.name not in wanted:
            continue
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = [int(d) for d in reversed(t.shape)]
        w = w.reshape(shape)
        entry = {
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": shape,
            "sha256": digest(w),
            "sum": float(w.astype(np.float64).sum()),
        }
        if wanted[t.name] is not None:
            entry["hf_sha256"] = digest(unpermute(w, wanted[t.name]))
        tensors.append(entry)
    doc = {"generator": "scripts/make_quant_fixtures.py", "file": Path(path).name, "tensors": tensors}
    (OUT / "smollm2_tensors.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(tensors)} tensors to tests/fixtures/quant/smollm2_tensors.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smollm2", metavar="GGUF")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    blocks_fixture()
    if args.smollm2:
        smollm2_fixture(args.smollm2)


if __name__ == "__main__":
    main()
