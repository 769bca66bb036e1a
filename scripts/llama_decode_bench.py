#!/usr/bin/env python3
"""Single-sequence decode speed of llama.cpp (llama-cpp-python) on a GGUF.

Prefills `--context` tokens, then times `--steps` one-token decode steps
(each feeds a fixed token; no sampling) and prints tok/s, the figure that
`hyperscale bench decode --batch 1 --context N` reports for the same file.

    python3 scripts/llama_decode_bench.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --context 128 --steps 64 --threads 2
"""

import argparse
import time

import llama_cpp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=args.context + args.steps + 8,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    # A fixed, ordinary token stream (ids 100..), as long as the context.
    prompt = [100 + (i * 37) % 5000 for i in range(args.context)]
    llm.eval(prompt)
    llm.eval([42])  # one warm-up step
    start = time.perf_counter()
    for i in range(args.steps):
        llm.eval([100 + i])
    secs = time.perf_counter() - start
    print(f"llama.cpp context {args.context}: {args.steps / secs:.1f} tok/s")


if __name__ == "__main__":
    main()
