#!/usr/bin/env python3
"""Expected chat-template renders for tests/model/chat_template.rs.

Renders every tests/fixtures/chat/*.jinja the way Hugging Face transformers'
`apply_chat_template` does (jinja2 ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks, loopcontrols, `raise_exception`, `strftime_now`
and a `tojson` that is `json.dumps(ensure_ascii=False)`), for a fixed set of
conversations, and writes tests/fixtures/chat/expected.json.

    pip install jinja2
    python scripts/make_chat_fixtures.py

With --extract-smollm2 MODEL.gguf (needs `pip install gguf`) it also
rewrites smollm2.jinja from the GGUF's `tokenizer.chat_template`. The other
templates' provenance is in tests/fixtures/chat/README.md.
"""

import argparse
import json
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
CHAT = ROOT / "tests" / "fixtures" / "chat"

DEEPSEEK = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}
# (template file, special tokens as the tokenizer's special_tokens_map has them)
TEMPLATES = {
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "qwen2_5_instruct": {"eos_token": "<|im_end|>"},
    "qwen3": {"eos_token": "<|im_end|>"},
    "deepseek_r1_distill_qwen": DEEPSEEK,
    "deepseek_r1_distill_qwen_2025_01": DEEPSEEK,
    "features": {"eos_token": "</s>"},
}

THINK = "<think>\nThe user wants 2+2. That is 4.\n</think>\n\nThe answer is **4**."
CONVERSATIONS = {
    "single_user": [
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You are a careful math tutor."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": THINK},
        {"role": "user", "content": "And 3+3? Explain briefly."},
    ],
    "ends_with_assistant": [
        {"role": "system", "content": "You are a careful math tutor."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": THINK},
    ],
    "multi_turn_no_system": [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a prime number."},
    ],
    "unicode_and_braces": [
        {"role": "system", "content": "Réponds en français. 用中文也可以。"},
        {"role": "user", "content": "  Spaces, tabs\tand {{ braces }} {% raw %} 🙂\n\nnew lines  "},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nD'accord — 好的 🙂"},
        {"role": "user", "content": "STOP here?"},
    ],
}


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers.utils.chat_template_utils: tojson
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(format):
    return datetime.now().strftime(format)


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extract-smollm2", metavar="GGUF")
    args = parser.parse_args()
    if args.extract_smollm2:
        import gguf

        reader = gguf.GGUFReader(args.extract_smollm2)
        template = reader.fields["tokenizer.chat_template"].contents()
        (CHAT / "smollm2.jinja").write_text(template, encoding="utf-8", newline="")

    env = environment()
    cases = []
    for name, special in TEMPLATES.items():
        source = (CHAT / f"{name}.jinja").read_text(encoding="utf-8")
        compiled = env.from_string(source)
        variants = [(conv, gen, None) for conv in CONVERSATIONS for gen in (True, False)]
        if name == "qwen3":
            variants += [("single_user", True, False), ("system_multi_turn", True, True)]
        for conv, gen, thinking in variants:
            extra = dict(special)
            if thinking is not None:
                extra["enable_thinking"] = thinking
            rendered = compiled.render(
                messages=CONVERSATIONS[conv], tools=None, documents=None,
                add_generation_prompt=gen, **extra,
            )
            cases.append({
                "template": name,
                "conversation": conv,
                "add_generation_prompt": gen,
                "vars": extra,
                "expected": rendered,
            })
    doc = {
        "generator": "scripts/make_chat_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    path = CHAT / "expected.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
