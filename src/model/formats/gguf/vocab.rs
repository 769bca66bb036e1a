//! A Hugging Face `tokenizer.json` document rebuilt from GGUF tokenizer
//! metadata (`tokenizer.ggml.*`), so the `tokenizers` crate can run it.
//!
//! Only byte-level BPE (`tokenizer.ggml.model = gpt2`) is supported. The
//! `tokenizer.ggml.pre` type picks the pre-tokenizer exactly as the
//! model's own Hugging Face `tokenizer.json` has it (llama.cpp's
//! `llama-vocab.cpp` maps the same names to the same regexes).

use serde_json::{Value, json};

use super::reader::GgufFile;
use crate::model::LoadError;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The `tokenizer.ggml.pre` values this module knows.
pub const SUPPORTED_PRE: [&str; 5] = ["smollm", "qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3"];

/// Qwen2's split regex, as in its `tokenizer.json`.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split regex: as Qwen2's, but digits go in runs of up to three.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What a GGUF says about its tokenizer.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    /// A complete `tokenizer.json` document.
    pub tokenizer_json: Value,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (false when absent).
    pub add_bos: bool,
    /// `tokenizer.chat_template`, if present.
    pub chat_template: Option<String>,
}

/// Builds the tokenizer description of `file`.
///
/// Errors: `BadField` naming the key for a missing or ill-typed tokenizer
/// field, an unsupported `tokenizer.ggml.model` or an unknown
/// `tokenizer.ggml.pre`.
pub fn from_gguf(file: &GgufFile) -> Result<GgufVocab, LoadError> {
    let bad = |field: &str, reason: String| LoadError::BadField {
        path: file.path().to_path_buf(),
        field: field.to_owned(),
        reason,
    };
    let model = file.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(bad(
            "tokenizer.ggml.model",
            format!("tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"),
        ));
    }
    let pre = file.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let tokens = file.get_array("tokenizer.ggml.tokens", "strings", |v| v.as_str())?;
    let merges = file.get_array("tokenizer.ggml.merges", "strings", |v| v.as_str())?;
    let types = match file.get("tokenizer.ggml.token_type") {
        Some(_) => file.get_array("tokenizer.ggml.token_type", "integers", |v| v.as_i64())?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(bad(
            "tokenizer.ggml.token_type",
            format!("{} types for {} tokens", types.len(), tokens.len()),
        ));
    }
    let id_of = |key: &str| -> Result<Option<u32>, LoadError> {
        match file.opt_u64(key)? {
            Some(id) if (id as usize) < tokens.len() => Ok(Some(id as u32)),
            Some(id) => Err(bad(key, format!("token id {id} is outside the vocabulary"))),
            None => Ok(None),
        }
    };
    let bos_id = id_of("tokenizer.ggml.bos_token_id")?;
    let eos_id = id_of("tokenizer.ggml.eos_token_id")?;
    let add_bos = file
        .opt_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);

    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added_tokens = Vec::new();
    for (id, (&token, &ty)) in tokens.iter().zip(&types).enumerate() {
        // A duplicated string keeps its first id, as a JSON vocab must.
        vocab.entry(token.to_owned()).or_insert(json!(id));
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            added_tokens.push(json!({
                "id": id,
                "content": token,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": ty == TOKEN_TYPE_CONTROL,
            }));
        }
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        // llama.cpp splits at the first space after the first character.
        let split = merge
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(at, _)| at)
            .ok_or_else(|| {
                bad(
                    "tokenizer.ggml.merges",
                    format!("merge #{i} `{merge}` has no space"),
                )
            })?;
        merge_pairs.push(json!([&merge[..split], &merge[split + 1..]]));
    }

    let parts = pre_tokenizer_parts(pre).ok_or_else(|| {
        bad(
            "tokenizer.ggml.pre",
            format!(
                "pre-tokenizer `{pre}` is not supported (supported: {})",
                SUPPORTED_PRE.join(", ")
            ),
        )
    })?;
    let post_processor = match bos_id {
        Some(bos) if add_bos => bos_template(tokens[bos as usize], bos),
        _ => parts.post_processor,
    };
    let tokenizer_json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": parts.normalizer,
        "pre_tokenizer": parts.pre_tokenizer,
        "post_processor": post_processor,
        "decoder": parts.decoder,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": parts.ignore_merges,
            "vocab": vocab,
            "merges": merge_pairs,
        },
    });
    Ok(GgufVocab {
        tokenizer_json,
        bos_id,
        eos_id,
        add_bos,
        chat_template: file.opt_str("tokenizer.chat_template")?.map(str::to_owned),
    })
}

/// The parts of `tokenizer.json` that depend on the pre-tokenizer type.
struct PreTokenizerParts {
    normalizer: Value,
    pre_tokenizer: Value,
    post_processor: Value,
    decoder: Value,
    ignore_merges: bool,
}

fn byte_level(add_prefix_space: bool, trim_offsets: bool, use_regex: bool) -> Value {
    json!({
        "type": "ByteLevel",
        "add_prefix_space": add_prefix_space,
        "trim_offsets": trim_offsets,
        "use_regex": use_regex,
    })
}

fn split_then_byte_level(regex: &str, trim_offsets: bool) -> Value {
    json!({
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": { "Regex": regex },
                "behavior": "Isolated",
                "invert": false,
            },
            byte_level(false, trim_offsets, false),
        ],
    })
}

/// Pre-tokenizer, normalizer and decoder as in each model family's
/// Hugging Face `tokenizer.json`.
fn pre_tokenizer_parts(pre: &str) -> Option<PreTokenizerParts> {
    match pre {
        // SmolLM / SmolLM2: single digits, then GPT-2's ByteLevel regex.
        "smollm" => Some(PreTokenizerParts {
            normalizer: Value::Null,
            pre_tokenizer: json!({
                "type": "Sequence",
                "pretokenizers": [
                    { "type": "Digits", "individual_digits": true },
                    byte_level(false, true, true),
                ],
            }),
            post_processor: Value::Null,
            decoder: byte_level(true, true, true),
            ignore_merges: false,
        }),
        // Qwen2 / Qwen2.5 / Qwen3, and DeepSeek-R1-Distill-Qwen (same BPE).
        "qwen2" | "deepseek-r1-qwen" => Some(PreTokenizerParts {
            normalizer: json!({ "type": "NFC" }),
            pre_tokenizer: split_then_byte_level(QWEN2_REGEX, false),
            post_processor: byte_level(false, false, false),
            decoder: byte_level(false, false, false),
            ignore_merges: false,
        }),
        // Llama 3.x.
        "llama-bpe" | "llama3" => Some(PreTokenizerParts {
            normalizer: Value::Null,
            pre_tokenizer: split_then_byte_level(LLAMA3_REGEX, true),
            post_processor: byte_level(true, false, true),
            decoder: byte_level(true, true, true),
            ignore_merges: true,
        }),
        _ => None,
    }
}

/// A post-processor that prepends the BOS token (`add_bos_token`).
fn bos_template(bos: &str, bos_id: u32) -> Value {
    let special = |type_id: u32| json!({ "SpecialToken": { "id": bos, "type_id": type_id } });
    let seq = |id: &str, type_id: u32| json!({ "Sequence": { "id": id, "type_id": type_id } });
    json!({
        "type": "TemplateProcessing",
        "single": [special(0), seq("A", 0)],
        "pair": [special(0), seq("A", 0), special(1), seq("B", 1)],
        "special_tokens": { bos: { "id": bos, "ids": [bos_id], "tokens": [bos] } },
    })
}
