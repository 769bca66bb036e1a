#!/usr/bin/env python3
"""Tiny DMS checkpoints, one per decision variant, derived from tiny-qwen3.

Writes tests/fixtures/models/<name>/ from tests/fixtures/models/tiny-qwen3/
(written by make_model_fixtures.py): the same weights, tokenizer and
templates, with the DMS fields and tensors of the official checkpoints.

    tiny-qwen3-dms-neuron   NVIDIA's released layout (Qwen3-8B-DMS-8x):
                            config.json gains dms_alpha_scale,
                            dms_initial_alpha_offset, dms_window_size, dms_cr;
                            no extra tensor (the decision is q_proj's last
                            channel of each GQA group's first head).
    tiny-qwen3-dms-adapter  MO's trained layout: dms_separate_alpha = true and
                            model.layers.{i}.self_attn.dms_proj_alpha.weight
                            [kv_heads, hidden] plus dms_proj_alpha_norm.weight
                            [hidden], in bf16 like the rest.

The window is 4 so eviction happens within a short prompt. Adapter weights
are drawn with an explicit seed (random.Random(20260519)), std 0.02, so
logits `100 * w·norm(h) - 5` spread on both sides of 0. Standard library
only (safetensors read and written by hand):

    python3 scripts/make_dms_fixtures.py

Re-running reproduces the committed files byte for byte.
"""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "fixtures" / "models"
BASE = MODELS / "tiny-qwen3"
COPIED = [
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
]
DMS_FIELDS = {
    "dms_alpha_scale": 100.0,
    "dms_initial_alpha_offset": 5.0,
    "dms_window_size": 4,
    "dms_cr": 2,
}


def read_safetensors(path: pathlib.Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return header, raw[8 + n :]


def write_safetensors(path: pathlib.Path, tensors: dict[str, tuple[str, list, bytes]]) -> None:
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16(values: list[float]) -> bytes:
    """Round-to-nearest-even f32 -> bf16, little endian."""
    out = bytearray()
    for v in values:
        (bits,) = struct.unpack("<I", struct.pack("<f", v))
        bits += 0x7FFF + ((bits >> 16) & 1)
        out += struct.pack("<H", (bits >> 16) & 0xFFFF)
    return bytes(out)


def base_tensors() -> dict[str, tuple[str, list, bytes]]:
    header, data = read_safetensors(BASE / "model.safetensors")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[a:b])
    return tensors


def write(name: str, extra_config: dict, extra_tensors: dict) -> None:
    out = MODELS / name
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((BASE / "config.json").read_text())
    config.update(extra_config)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for f in COPIED:
        shutil.copyfile(BASE / f, out / f)
    tensors = base_tensors()
    tensors.update(extra_tensors)
    write_safetensors(out / "model.safetensors", tensors)
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    config = json.loads((BASE / "config.json").read_text())
    hidden, kv_heads = config["hidden_size"], config["num_key_value_heads"]
    write("tiny-qwen3-dms-neuron", DMS_FIELDS, {})
    rng = random.Random(20260519)
    adapter = {}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn.dms_proj_alpha"
        w = [rng.gauss(0.0, 0.02) for _ in range(kv_heads * hidden)]
        norm = [1.0 + rng.gauss(0.0, 0.1) for _ in range(hidden)]
        adapter[f"{p}.weight"] = ("BF16", [kv_heads, hidden], bf16(w))
        adapter[f"{p}_norm.weight"] = ("BF16", [hidden], bf16(norm))
    write("tiny-qwen3-dms-adapter", {**DMS_FIELDS, "dms_separate_alpha": True}, adapter)


if __name__ == "__main__":
    main()
