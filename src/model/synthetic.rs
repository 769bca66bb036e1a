//! Seeded random weights of a named shape: models for speed benchmarks on
//! machines that hold no checkpoint (the GPU check runs an
//! R1-Distill-Qwen-1.5B-shaped model with nothing downloaded).
//!
//! `synthetic:<preset>[+dms]` names one (see [`SyntheticSpec::parse`]).
//! Linear weights are uniform in `±1/√in` (activations stay bounded through
//! any depth), norms are 1, biases 0, so decoding runs real arithmetic on
//! finite numbers; the tokens mean nothing. With `+dms` every layer gets a
//! DMS adapter whose decisions evict [`SyntheticSpec::DMS_EVICT`] of the
//! tokens leaving the window: the decision logit is `w·x̂ + 1.15` with
//! `w·x̂ ~ N(0, 1)` over the RMS-normalised input `x̂`, so
//! `P(evict) = Φ(1.15) ≈ 7/8`, i.e. ≈ 8× compression beyond the window.
//! With `+q4_1` the weights are stored as SmolLM2's GGUF stores them —
//! linear weights in Q4_1 blocks, the embedding in Q8_0 — so CPU decode
//! streams blocks ([`super::kernels::block_gemv`]); the f32 values are those blocks
//! dequantized.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::formats::gguf::GgmlType;
use super::kernels::block_gemv::BlockWeight;
use super::layers::dms::{DmsConfig, DmsDecision};
use super::{HostTensor, LoadError, ModelConfig, WeightSource};

/// A named synthetic model.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub preset: String,
    pub config: ModelConfig,
    pub dms: bool,
    /// `+q4_1`: weights stored in ggml blocks, as in SmolLM2's GGUF.
    pub q4_1: bool,
}

impl SyntheticSpec {
    /// Fraction of tokens leaving the window that `+dms` evicts.
    pub const DMS_EVICT: f64 = 0.875;
    /// The DMS window of `+dms` models: short, so the achieved CR at 4k–16k
    /// positions is close to 8.
    pub const DMS_WINDOW: usize = 64;
    /// `Φ⁻¹(7/8)`: the logit shift that makes `P(evict) = 7/8`.
    const DMS_SHIFT: f64 = 1.150_349_4;

    /// Presets by name.
    pub const PRESETS: [&str; 5] = [
        "smollm2-135m",
        "qwen2.5-1.5b",
        "r1-distill-qwen-1.5b",
        "r1-distill-qwen-7b",
        "qwen3-8b",
    ];

    /// `synthetic:<preset>[+dms][+q4_1]` → the spec; `None` when `spec`
    /// does not start with `synthetic:`, an error naming the presets when
    /// the rest is not one.
    pub fn parse(spec: &str) -> Option<Result<Self, String>> {
        let rest = spec.strip_prefix("synthetic:")?;
        let (rest, q4_1) = match rest.strip_suffix("+q4_1") {
            Some(p) => (p, true),
            None => (rest, false),
        };
        let (preset, dms) = match rest.strip_suffix("+dms") {
            Some(p) => (p, true),
            None => (rest, false),
        };
        let config = match preset {
            "smollm2-135m" => ModelConfig::smollm2_135m(),
            "qwen2.5-1.5b" => ModelConfig::qwen2_5_1_5b(),
            "r1-distill-qwen-1.5b" => ModelConfig::r1_distill_qwen_1_5b(),
            "r1-distill-qwen-7b" => ModelConfig::r1_distill_qwen_7b(),
            "qwen3-8b" => ModelConfig::qwen3_8b(),
            other => {
                return Some(Err(format!(
                    "unknown synthetic preset `{other}` (expected one of {}, optionally with `+dms`, then `+q4_1`)",
                    Self::PRESETS.join(", ")
                )));
            }
        };
        let config = if dms {
            ModelConfig {
                dms: Some(DmsConfig {
                    alpha_scale: 1.0,
                    // The logit is `scale · proj − offset`.
                    alpha_offset: -Self::DMS_SHIFT,
                    window: Self::DMS_WINDOW,
                    cr: Some(1.0 / (1.0 - Self::DMS_EVICT)),
                    decision: DmsDecision::Adapter,
                    shifted: true,
                    per_layer: false,
                }),
                ..config
            }
        } else {
            config
        };
        Some(Ok(Self {
            preset: preset.to_string(),
            config,
            dms,
            q4_1,
        }))
    }
}

/// The tensors of a synthetic model, generated on request.
#[derive(Debug, Clone)]
pub struct RandomWeights {
    origin: PathBuf,
    seed: u64,
    shapes: BTreeMap<String, Vec<usize>>,
    q4_1: bool,
}

/// How a tensor is filled.
enum Fill {
    /// Uniform in `±bound`.
    Uniform(f32),
    Const(f32),
}

impl RandomWeights {
    /// Every tensor `config` calls for (DMS adapters when `config.dms` is
    /// set), seeded by `seed`.
    pub fn new(spec: &SyntheticSpec, seed: u64) -> Self {
        let c = &spec.config;
        let (h, inter) = (c.hidden_size, c.intermediate_size);
        let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let mut shapes = BTreeMap::new();
        let mut put = |name: String, shape: &[usize]| {
            shapes.insert(name, shape.to_vec());
        };
        put("model.embed_tokens.weight".into(), &[c.vocab_size, h]);
        put("model.norm.weight".into(), &[h]);
        if !c.tie_word_embeddings {
            put("lm_head.weight".into(), &[c.vocab_size, h]);
        }
        for i in 0..c.num_layers {
            let p = format!("model.layers.{i}");
            for (n, out) in [("q", q), ("k", kv), ("v", kv)] {
                put(format!("{p}.self_attn.{n}_proj.weight"), &[out, h]);
                if c.attention_bias {
                    put(format!("{p}.self_attn.{n}_proj.bias"), &[out]);
                }
            }
            put(format!("{p}.self_attn.o_proj.weight"), &[h, q]);
            if c.qk_norm {
                put(format!("{p}.self_attn.q_norm.weight"), &[c.head_dim]);
                put(format!("{p}.self_attn.k_norm.weight"), &[c.head_dim]);
            }
            put(format!("{p}.mlp.gate_proj.weight"), &[inter, h]);
            put(format!("{p}.mlp.up_proj.weight"), &[inter, h]);
            put(format!("{p}.mlp.down_proj.weight"), &[h, inter]);
            put(format!("{p}.input_layernorm.weight"), &[h]);
            put(format!("{p}.post_attention_layernorm.weight"), &[h]);
            if c.dms.is_some() {
                let a = format!("{p}.self_attn.dms_proj_alpha");
                put(format!("{a}_norm.weight"), &[h]);
                put(format!("{a}.weight"), &[c.num_kv_heads, h]);
                if c.attention_bias {
                    put(format!("{a}.bias"), &[c.num_kv_heads]);
                }
            }
        }
        Self {
            origin: PathBuf::from(format!(
                "synthetic:{}{}{}",
                spec.preset,
                if spec.dms { "+dms" } else { "" },
                if spec.q4_1 { "+q4_1" } else { "" }
            )),
            seed,
            shapes,
            q4_1: spec.q4_1,
        }
    }

    fn fill(name: &str, shape: &[usize]) -> Fill {
        let last = |s: &str| name.ends_with(s);
        if last("norm.weight") || last("layernorm.weight") {
            Fill::Const(1.0)
        } else if last(".bias") {
            Fill::Const(0.0)
        } else if name.contains("dms_proj_alpha") {
            // `w·x̂ ~ N(0, 1)` for unit-RMS `x̂`: Var = in · bound² / 3 = 1.
            Fill::Uniform((3.0 / shape[1] as f32).sqrt())
        } else if name == "model.embed_tokens.weight" {
            Fill::Uniform(1.0)
        } else {
            Fill::Uniform(1.0 / (shape[1] as f32).sqrt())
        }
    }
}

impl WeightSource for RandomWeights {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn contains(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
    }

    fn names(&self) -> Vec<String> {
        self.shapes.keys().cloned().collect()
    }

    fn load(&self, name: &str) -> Result<HostTensor, LoadError> {
        if let Some(blocks) = self.load_blocks(name)? {
            return Ok(HostTensor {
                shape: vec![blocks.rows, blocks.cols],
                data: blocks.dequantize(),
            });
        }
        self.load_f32(name)
    }

    fn load_blocks(&self, name: &str) -> Result<Option<BlockWeight>, LoadError> {
        let kind = match self.block_kind(name) {
            Some(kind) => kind,
            None => return Ok(None),
        };
        let t = self.load_f32(name)?;
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let bytes = quantize(kind, &t.data);
        BlockWeight::new(kind, rows, cols, bytes)
            .map(Some)
            .map_err(|detail| LoadError::Format {
                path: self.origin.clone(),
                detail: format!("tensor `{name}`: {detail}"),
            })
    }
}

impl RandomWeights {
    /// The block format `name` is stored in under `+q4_1` (SmolLM2's GGUF:
    /// Q8_0 embedding and lm head, Q4_1 projections); `None` for f32.
    fn block_kind(&self, name: &str) -> Option<GgmlType> {
        let shape = self.shapes.get(name)?;
        let whole_blocks = shape.len() == 2 && shape[1].is_multiple_of(32);
        if !self.q4_1 || !whole_blocks || name.contains("dms_proj_alpha") {
            return None;
        }
        match name {
            "model.embed_tokens.weight" | "lm_head.weight" => Some(GgmlType::Q8_0),
            _ if name.ends_with("_proj.weight") => Some(GgmlType::Q4_1),
            _ => None,
        }
    }

    fn load_f32(&self, name: &str) -> Result<HostTensor, LoadError> {
        let shape = self
            .shapes
            .get(name)
            .ok_or_else(|| LoadError::MissingTensor {
                path: self.origin.clone(),
                name: name.to_string(),
            })?
            .clone();
        let numel: usize = shape.iter().product();
        let data = match Self::fill(name, &shape) {
            Fill::Const(v) => vec![v; numel],
            Fill::Uniform(bound) => {
                // One ChaCha stream per 64k-element chunk: parallel and the
                // same values whatever the thread count.
                let key: [u8; 32] = Sha256::digest(format!("{}:{name}", self.seed)).into();
                let mut data = vec![0.0f32; numel];
                data.par_chunks_mut(1 << 16)
                    .enumerate()
                    .for_each(|(i, chunk)| {
                        let mut rng = ChaCha8Rng::from_seed(key);
                        rng.set_stream(i as u64);
                        chunk
                            .iter_mut()
                            .for_each(|v| *v = rng.random_range(-bound..bound));
                    });
                data
            }
        };
        Ok(HostTensor { shape, data })
    }
}

/// ggml's reference quantizers (`quantize_row_q4_1_ref`,
/// `quantize_row_q8_0_ref`) over whole blocks of 32 values.
fn quantize(kind: GgmlType, data: &[f32]) -> Vec<u8> {
    let f16 = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
    let mut out = Vec::with_capacity(data.len() / 32 * kind.type_size());
    for b in data.chunks_exact(32) {
        match kind {
            GgmlType::Q4_1 => {
                let min = b.iter().copied().fold(f32::INFINITY, f32::min);
                let max = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16(d));
                out.extend(f16(min));
                let q = |x: f32| (((x - min) * id + 0.5) as u8).min(15);
                out.extend((0..16).map(|j| q(b[j]) | (q(b[j + 16]) << 4)));
            }
            GgmlType::Q8_0 => {
                let amax = b.iter().fold(0.0f32, |a, x| a.max(x.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16(d));
                out.extend(b.iter().map(|x| ((x * id).round() as i8) as u8));
            }
            other => unreachable!("no quantizer for {other}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Transformer;
    use burn::backend::flex::Flex;

    #[test]
    fn parses_presets_and_rejects_unknown_ones() {
        assert!(SyntheticSpec::parse("models/x.gguf").is_none());
        let s = SyntheticSpec::parse("synthetic:r1-distill-qwen-1.5b+dms")
            .unwrap()
            .unwrap();
        assert!(s.dms && !s.config.tie_word_embeddings);
        assert_eq!(
            s.config.dms.as_ref().unwrap().window,
            SyntheticSpec::DMS_WINDOW
        );
        let err = SyntheticSpec::parse("synthetic:gpt5").unwrap().unwrap_err();
        assert!(err.contains("qwen3-8b"), "{err}");
    }

    #[test]
    fn seeded_values_independent_of_threads_and_loadable() {
        let spec = SyntheticSpec::parse("synthetic:smollm2-135m+dms")
            .unwrap()
            .unwrap();
        let w = RandomWeights::new(&spec, 3);
        let a = w.load("model.layers.0.mlp.up_proj.weight").unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| w.load("model.layers.0.mlp.up_proj.weight").unwrap());
        assert_eq!(a, b);
        assert_eq!(a.shape, vec![1536, 576]);
        let bound = 1.0 / 576f32.sqrt();
        assert!(a.data.iter().all(|v| v.abs() <= bound));
        assert_ne!(
            a,
            RandomWeights::new(&spec, 4)
                .load("model.layers.0.mlp.up_proj.weight")
                .unwrap()
        );
        // Every tensor the transformer asks for exists with its shape.
        let mut small = spec.clone();
        small.config.num_layers = 2;
        let w = RandomWeights::new(&small, 3);
        Transformer::<Flex>::load(&small.config, &w, &Default::default()).unwrap();
    }

    #[test]
    fn q4_1_weights_are_blocks_whose_values_load_returns() {
        let spec = SyntheticSpec::parse("synthetic:smollm2-135m+dms+q4_1")
            .unwrap()
            .unwrap();
        assert!(spec.dms && spec.q4_1);
        let w = RandomWeights::new(&spec, 3);
        let name = "model.layers.0.mlp.up_proj.weight";
        let blocks = w.load_blocks(name).unwrap().unwrap();
        assert_eq!(
            (blocks.kind, blocks.rows, blocks.cols),
            (GgmlType::Q4_1, 1536, 576)
        );
        let t = w.load(name).unwrap();
        assert_eq!(t.data, blocks.dequantize());
        // Within half a quantization step of the f32 draw.
        let f = w.load_f32(name).unwrap();
        let bound = 1.0 / 576f32.sqrt();
        let step = 2.0 * bound / 15.0;
        assert!(
            t.data
                .iter()
                .zip(&f.data)
                .all(|(q, x)| (q - x).abs() <= 0.51 * step + 1e-3)
        );
        let embed = w.load_blocks("model.embed_tokens.weight").unwrap().unwrap();
        assert_eq!(embed.kind, GgmlType::Q8_0);
        assert!(w.load_blocks("model.norm.weight").unwrap().is_none());
        assert!(
            w.load_blocks("model.layers.0.self_attn.dms_proj_alpha.weight")
                .unwrap()
                .is_none()
        );
    }
}
