//! `ModelConfig` from GGUF metadata (`{arch}.block_count`, ...).

use super::reader::GgufFile;
use crate::model::{Arch, LoadError, ModelConfig};

impl ModelConfig {
    /// Reads the hyperparameters of a `llama`, `qwen2` or `qwen3` GGUF.
    ///
    /// `head_dim` is `{arch}.attention.key_length` if present, else
    /// `hidden / heads`; the vocabulary size is the length of
    /// `tokenizer.ggml.tokens` (else `{arch}.vocab_size`, else the
    /// embedding's rows); embeddings are tied when there is no
    /// `output.weight`; `attention_bias` and `qk_norm` follow the presence
    /// of `blk.0.attn_q.bias` and `blk.0.attn_q_norm.weight`.
    ///
    /// Errors: `BadField` naming the key that is missing, ill-typed or
    /// inconsistent.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, LoadError> {
        let arch_name = file.architecture()?;
        let bad = |field: &str, reason: String| LoadError::BadField {
            path: file.path().to_path_buf(),
            field: field.to_owned(),
            reason,
        };
        let arch = match arch_name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            other => {
                return Err(bad(
                    "general.architecture",
                    format!("unsupported architecture `{other}` (expected llama, qwen2 or qwen3)"),
                ));
            }
        };
        let key = |suffix: &str| format!("{arch_name}.{suffix}");
        let usize_of = |k: &str| file.get_u64(k).map(|v| v as usize);

        let hidden_size = usize_of(&key("embedding_length"))?;
        let num_heads = usize_of(&key("attention.head_count"))?;
        let num_kv_heads = match file.opt_u64(&key("attention.head_count_kv"))? {
            Some(n) => n as usize,
            None => num_heads,
        };
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(bad(
                &key("attention.head_count_kv"),
                format!("{num_kv_heads} kv heads do not divide {num_heads} heads"),
            ));
        }
        let head_dim = match file.opt_u64(&key("attention.key_length"))? {
            Some(d) => d as usize,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(bad(
                    &key("attention.head_count"),
                    format!("{num_heads} heads do not divide hidden size {hidden_size}"),
                ));
            }
        };

        let vocab_size = match file.get("tokenizer.ggml.tokens") {
            Some(v) => v
                .as_array()
                .ok_or_else(|| bad("tokenizer.ggml.tokens", "expected an array".into()))?
                .len(),
            None => match file.opt_u64(&key("vocab_size"))? {
                Some(n) => n as usize,
                None => file
                    .tensor("token_embd.weight")
                    .and_then(|t| t.dims.get(1).copied())
                    .ok_or_else(|| {
                        bad(
                            "tokenizer.ggml.tokens",
                            "missing, and no vocab_size or token_embd.weight to infer it".into(),
                        )
                    })? as usize,
            },
        };

        // llama.cpp stores Llama 3.x frequency scaling as a precomputed
        // `rope_freqs.weight` tensor, not as the factors RopeScaling holds.
        if file.tensor("rope_freqs.weight").is_some() {
            return Err(LoadError::Format {
                path: file.path().to_path_buf(),
                detail: "rope scaling stored as `rope_freqs.weight` (Llama 3.x) is not supported"
                    .into(),
            });
        }
        let rope_scaling = match file.opt_str(&key("rope.scaling.type"))? {
            None | Some("none") => None,
            Some(other) => {
                return Err(bad(
                    &key("rope.scaling.type"),
                    format!("rope scaling `{other}` is not supported"),
                ));
            }
        };

        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: usize_of(&key("feed_forward_length"))?,
            num_layers: usize_of(&key("block_count"))?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: file.get_f64(&key("attention.layer_norm_rms_epsilon"))?,
            rope_theta: file.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: usize_of(&key("context_length"))?,
            tie_word_embeddings: file.tensor("output.weight").is_none(),
            attention_bias: file.tensor("blk.0.attn_q.bias").is_some(),
            qk_norm: file.tensor("blk.0.attn_q_norm.weight").is_some(),
            dms: None,
        })
    }
}
