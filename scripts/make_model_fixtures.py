#!/usr/bin/env python3
"""Tiny random Hugging Face checkpoints and their reference logits.

Writes tests/fixtures/models/<name>/ for three architectures, each a complete
Hugging Face model directory (config.json, generation_config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) plus expected.json:
the logits transformers computes (f32, eager attention) for every position of
a prompt and for a few greedy decode steps with the KV cache.

    tiny-llama   llama, tied embeddings, Llama-3 rope scaling, GQA 4/2, f32
    tiny-qwen2   qwen2, q/k/v biases, untied head, GQA 4/2, f32
    tiny-qwen3   qwen3, q/k RMSNorm, head_dim 32 != hidden/heads, GQA 4/2,
                 stored in bf16 (reference computed from the same
                 bf16-rounded weights in f32)

Weights are drawn with explicit seeds at a larger scale than the models'
default init (and norms/biases are randomized too) so logits spread over
several units and every weight matters to the comparison.

Run (CPU only; any recent torch/transformers from PyPI):

    python -m venv .venv && .venv/bin/pip install torch transformers tokenizers safetensors
    .venv/bin/python scripts/make_model_fixtures.py

Re-running reproduces the committed files (up to library-version drift in
the reference logits, far below the 1e-4 tolerance).
"""

from __future__ import annotations

import json
import pathlib

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "models"

VOCAB = 512  # model vocab; the tokenizer uses the first TOKENIZER_VOCAB ids
TOKENIZER_VOCAB = 480
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
DECODE_STEPS = 6
PROMPT = "<|im_start|>user\nWhat is the sum of 12 and 30?<|im_end|>\n<|im_start|>assistant\n"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.",
    "What is the sum of 12 and 30? The sum of 12 and 30 is 42.",
    "def add(a, b):\n    return a + b\n\nprint(add(12, 30))\n",
    "A key-value cache stores the keys and values of every past token, per layer and head.",
    "Rotary position embeddings rotate pairs of query and key channels by position.",
    "Question: which planet is the largest? Answer: Jupiter is the largest planet.",
    "for i in range(10):\n    total += i * i\n",
    "Attention weights are a softmax over scaled dot products of queries and keys.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14159 2.71828",
    "Café, naïve, résumé: accents are bytes too; so are 東京 and 🙂.",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    attn_implementation="eager",
)

FIXTURES = {
    "tiny-llama": dict(
        seed=11,
        bf16=False,
        model=LlamaForCausalLM,
        config=LlamaConfig(
            **COMMON,
            rms_norm_eps=1e-5,
            tie_word_embeddings=True,
            rope_theta=10000.0,
            # Scaled so that head_dim 16 has kept, smoothed and slowed bands.
            rope_scaling=dict(
                rope_type="llama3",
                factor=4.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=32,
            ),
        ),
    ),
    "tiny-qwen2": dict(
        seed=22,
        bf16=False,
        model=Qwen2ForCausalLM,
        config=Qwen2Config(
            **COMMON, rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=1000000.0
        ),
    ),
    "tiny-qwen3": dict(
        seed=33,
        bf16=True,
        model=Qwen3ForCausalLM,
        config=Qwen3Config(
            **COMMON,
            head_dim=32,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            rope_theta=1000000.0,
        ),
    ),
}


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn from an explicit seed: matrices N(0, 0.15²),
    norm weights 1 + N(0, 0.2²), biases N(0, 0.3²)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.3 * noise)
            else:
                p.copy_(0.15 * noise)


def reference(model: torch.nn.Module, ids: list[int]) -> dict:
    """Prompt logits at every position, then greedy decode with the cache."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=True)
        prompt_logits = out.logits[0]
        past = out.past_key_values
        token = int(prompt_logits[-1].argmax())
        greedy, decode_logits = [], []
        for _ in range(DECODE_STEPS):
            greedy.append(token)
            out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            step = out.logits[0, -1]
            decode_logits.append(step)
            token = int(step.argmax())
    # Six decimals: a rounding error of 5e-7, far inside the 1e-4 tolerance.
    rows = lambda t: [[round(float(x), 6) for x in r] for r in t]  # noqa: E731
    return {
        "prompt_ids": ids,
        "prompt_logits": rows(prompt_logits),
        "greedy_ids": greedy,
        "decode_logits": rows(decode_logits),
    }


def main() -> None:
    torch.set_num_threads(2)
    tokenizer = build_tokenizer()
    for name, spec in FIXTURES.items():
        dest = OUT / name
        dest.mkdir(parents=True, exist_ok=True)
        config = spec["config"]
        model = spec["model"](config).float().eval()
        randomize(model, spec["seed"])
        if spec["bf16"]:
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(torch.bfloat16).to(torch.float32))
        # Tied weights appear once in the checkpoint, as HF writes them.
        state = {
            k: (v.to(torch.bfloat16) if spec["bf16"] else v).contiguous()
            for k, v in model.state_dict().items()
            if not (config.tie_word_embeddings and k == "lm_head.weight")
        }
        save_file(state, dest / "model.safetensors", metadata={"format": "pt"})
        config.save_pretrained(dest)
        GenerationConfig(bos_token_id=1, eos_token_id=2, do_sample=False).save_pretrained(dest)
        tokenizer.save_pretrained(dest)

        ids = tokenizer(PROMPT)["input_ids"]
        expected = reference(model, ids)
        expected.update(
            {
                "fixture": name,
                "prompt": PROMPT,
                "dtype": "bf16" if spec["bf16"] else "f32",
                "note": "transformers f32 eager attention; logits of every prompt "
                "position, then one row per greedy decode step (the logits after "
                "feeding greedy_ids[i])",
            }
        )
        (dest / "expected.json").write_text(json.dumps(expected, indent=None) + "\n")
        spread = float(torch.tensor(expected["prompt_logits"]).std())
        size = sum(f.stat().st_size for f in dest.iterdir())
        print(f"{name}: {len(ids)} prompt ids, greedy {expected['greedy_ids']}, "
              f"logit std {spread:.2f}, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
