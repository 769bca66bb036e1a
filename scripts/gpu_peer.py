"""The peer for scripts/gpu-check.sh: decode tokens/s of an
R1-Distill-Qwen-1.5B-shaped model with random weights through HF transformers
(SDPA attention, bf16, static shapes of the hyperscale benchmark: W parallel
sequences sharing a prompt of `context` tokens), timed per step after warm-up,
median reported. Needs torch + transformers and a CUDA device; no download
(the config is written out here)."""

import argparse
import json
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from transformers.cache_utils import DynamicCache

CONFIG = dict(
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=131072,
    rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
)


def bench(model, batch, context, steps, warmup):
    ids = torch.randint(1, CONFIG["vocab_size"], (1, context), device="cuda")
    with torch.no_grad():
        out = model(ids, use_cache=True)
        cache = out.past_key_values
        # W sequences share the prompt: the cache repeated along the batch.
        cache.batch_repeat_interleave(batch)
        tok = torch.randint(1, CONFIG["vocab_size"], (batch, 1), device="cuda")
        times = []
        for step in range(warmup + steps):
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = model(tok, past_key_values=cache, use_cache=True)
            torch.cuda.synchronize()
            if step >= warmup:
                times.append(time.perf_counter() - t)
            cache = out.past_key_values
    step_s = statistics.median(times)
    return dict(batch=batch, context=context, step_ms=step_s * 1e3, decode_tokens_per_second=batch / step_s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**CONFIG, attn_implementation="sdpa")).to("cuda", torch.bfloat16).eval()
    points = []
    for context in (4096, 16384):
        for batch in (1, 16, 64):
            try:
                points.append(bench(model, batch, context, args.steps, 3))
            except torch.OutOfMemoryError as e:  # report, keep going
                points.append(dict(batch=batch, context=context, error=str(e)[:200]))
            torch.cuda.empty_cache()
            print(points[-1], flush=True)
    doc = dict(peer="transformers", version=__import__("transformers").__version__, torch=torch.__version__,
               dtype="bfloat16", attention="sdpa", gpu=torch.cuda.get_device_name(), points=points)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
