//! Named shapes of the models the benchmarks use, as [`ModelConfig`]
//! constructors. Each matches the checkpoint's `config.json`; loading a real
//! checkpoint should still go through [`ModelConfig::from_hf_json`] or the
//! GGUF metadata; presets are for synthetic benchmarks and tests.

use super::{Arch, ModelConfig};

impl ModelConfig {
    /// SmolLM2-135M(-Instruct): llama, 30 layers, 9 heads / 3 KV heads, tied.
    pub fn smollm2_135m() -> Self {
        Self {
            arch: Arch::Llama,
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_layers: 30,
            num_heads: 9,
            num_kv_heads: 3,
            head_dim: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            rope_scaling: None,
            max_position_embeddings: 8192,
            tie_word_embeddings: true,
            attention_bias: false,
            qk_norm: false,
            dms: None,
        }
    }

    /// Qwen2.5-1.5B(-Instruct): qwen2, 28 layers, 12 heads / 2 KV heads, tied.
    pub fn qwen2_5_1_5b() -> Self {
        Self {
            arch: Arch::Qwen2,
            vocab_size: 151_936,
            hidden_size: 1536,
            intermediate_size: 8960,
            num_layers: 28,
            num_heads: 12,
            num_kv_heads: 2,
            head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_scaling: None,
            max_position_embeddings: 32768,
            tie_word_embeddings: true,
            attention_bias: true,
            qk_norm: false,
            dms: None,
        }
    }

    /// DeepSeek-R1-Distill-Qwen-1.5B: the Qwen2.5-Math-1.5B shape with an
    /// untied head, rope theta 1e4 and 128k positions.
    pub fn r1_distill_qwen_1_5b() -> Self {
        Self {
            rope_theta: 10_000.0,
            max_position_embeddings: 131_072,
            tie_word_embeddings: false,
            ..Self::qwen2_5_1_5b()
        }
    }

    /// DeepSeek-R1-Distill-Qwen-7B: qwen2, 28 layers, 28 heads / 4 KV heads.
    pub fn r1_distill_qwen_7b() -> Self {
        Self {
            vocab_size: 152_064,
            hidden_size: 3584,
            intermediate_size: 18944,
            num_heads: 28,
            num_kv_heads: 4,
            ..Self::r1_distill_qwen_1_5b()
        }
    }

    /// Qwen3-8B (and `nvidia/Qwen3-8B-DMS-8x`): qwen3, 36 layers, 32 heads /
    /// 8 KV heads, q/k norm, untied.
    pub fn qwen3_8b() -> Self {
        Self {
            arch: Arch::Qwen3,
            vocab_size: 151_936,
            hidden_size: 4096,
            intermediate_size: 12288,
            num_layers: 36,
            num_heads: 32,
            num_kv_heads: 8,
            head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_scaling: None,
            max_position_embeddings: 40960,
            tie_word_embeddings: false,
            attention_bias: false,
            qk_norm: true,
            dms: None,
        }
    }

    /// Bytes of f32 weights (embedding counted once when tied).
    pub fn f32_weight_bytes(&self) -> u64 {
        let h = self.hidden_size as u64;
        let q = (self.num_heads * self.head_dim) as u64;
        let kv = (self.num_kv_heads * self.head_dim) as u64;
        let inter = self.intermediate_size as u64;
        let mut per_layer = h * (q + 2 * kv) + q * h + 3 * h * inter + 2 * h;
        if self.attention_bias {
            per_layer += q + 2 * kv;
        }
        if self.qk_norm {
            per_layer += 2 * self.head_dim as u64;
        }
        let embed = self.vocab_size as u64 * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        4 * (embed + head + h + self.num_layers as u64 * per_layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_published_sizes() {
        // Published parameter counts: SmolLM2 134.5M, R1-Distill-1.5B 1.777B,
        // R1-Distill-7B 7.616B, Qwen3-8B 8.19B.
        let params = |c: ModelConfig| c.f32_weight_bytes() as f64 / 4.0 / 1e9;
        assert!((params(ModelConfig::smollm2_135m()) - 0.1345).abs() < 0.001);
        assert!((params(ModelConfig::r1_distill_qwen_1_5b()) - 1.777).abs() < 0.01);
        assert!((params(ModelConfig::r1_distill_qwen_7b()) - 7.616).abs() < 0.01);
        assert!((params(ModelConfig::qwen3_8b()) - 8.19).abs() < 0.01);
    }

    /// `config.json` as published with each checkpoint parses to its preset.
    #[test]
    fn presets_equal_the_published_configs() {
        let cases = [
            (
                r#"{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,
                "bos_token_id":151643,"eos_token_id":151643,"hidden_act":"silu",
                "hidden_size":1536,"initializer_range":0.02,"intermediate_size":8960,
                "max_position_embeddings":131072,"max_window_layers":21,"model_type":"qwen2",
                "num_attention_heads":12,"num_hidden_layers":28,"num_key_value_heads":2,
                "rms_norm_eps":1e-06,"rope_theta":10000,"sliding_window":4096,
                "tie_word_embeddings":false,"torch_dtype":"bfloat16",
                "transformers_version":"4.44.0","use_cache":true,"use_mrope":false,
                "use_sliding_window":false,"vocab_size":151936}"#,
                ModelConfig::r1_distill_qwen_1_5b(),
            ),
            (
                r#"{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,
                "attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151645,
                "head_dim":128,"hidden_act":"silu","hidden_size":4096,
                "initializer_range":0.02,"intermediate_size":12288,
                "max_position_embeddings":40960,"max_window_layers":36,"model_type":"qwen3",
                "num_attention_heads":32,"num_hidden_layers":36,"num_key_value_heads":8,
                "rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,
                "sliding_window":null,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
                "use_cache":true,"use_sliding_window":false,"vocab_size":151936}"#,
                ModelConfig::qwen3_8b(),
            ),
            (
                r#"{"architectures":["LlamaForCausalLM"],"attention_bias":false,
                "bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":576,
                "initializer_range":0.041666666666666664,"intermediate_size":1536,
                "max_position_embeddings":8192,"mlp_bias":false,"model_type":"llama",
                "num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,
                "pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":null,
                "rope_theta":100000,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
                "use_cache":true,"vocab_size":49152}"#,
                ModelConfig::smollm2_135m(),
            ),
        ];
        for (json, preset) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("config.json");
            std::fs::write(&path, json).expect("write");
            assert_eq!(ModelConfig::from_hf_json(&path).expect("parses"), preset);
        }
    }
}
