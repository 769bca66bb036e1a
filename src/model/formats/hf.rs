//! Hugging Face `config.json` and `generation_config.json`, as written, turned
//! into the validated [`ModelConfig`] and [`GenerationDefaults`].
//!
//! Both the pre-5.0 layout (`rope_theta` and `rope_scaling` at the top level)
//! and the transformers 5 layout (`rope_parameters { rope_theta, rope_type,
//! … }`) are read. Every failure is a [`LoadError::BadField`] naming the file
//! and the field.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::json::kind;
use crate::model::{Arch, DmsConfig, DmsDecision, LoadError, ModelConfig, RopeScaling};

/// Reads one JSON object file.
fn read_object(path: &Path) -> Result<Map<String, Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(LoadError::Format {
            path: path.to_path_buf(),
            detail: format!("expected a JSON object, found {}", kind(&other)),
        }),
        Err(e) => Err(LoadError::Format {
            path: path.to_path_buf(),
            detail: format!("invalid JSON: {e}"),
        }),
    }
}

/// Typed access to the fields of one JSON object, with errors that name the
/// file and the (dotted) field.
struct Fields<'a> {
    path: &'a Path,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The top-level object `map` of the file at `path`.
    fn top(path: &'a Path, map: &'a Map<String, Value>) -> Self {
        Self {
            path,
            prefix: String::new(),
            map,
        }
    }

    fn bad(&self, field: &str, reason: impl Into<String>) -> LoadError {
        LoadError::BadField {
            path: self.path.to_path_buf(),
            field: format!("{}{field}", self.prefix),
            reason: reason.into(),
        }
    }

    /// The value of `field`, `None` when absent or null.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn opt_usize(&self, field: &str) -> Result<Option<usize>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    self.bad(field, format!("expected a non-negative integer, found {v}"))
                }),
        }
    }

    /// A required integer ≥ 1.
    fn positive(&self, field: &str) -> Result<usize, LoadError> {
        match self.opt_usize(field)? {
            None => Err(self.bad(field, "missing")),
            Some(0) => Err(self.bad(field, "must be at least 1")),
            Some(n) => Ok(n),
        }
    }

    fn opt_f64(&self, field: &str) -> Result<Option<f64>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("expected a number, found {v}"))),
        }
    }

    fn opt_bool(&self, field: &str) -> Result<Option<bool>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("expected a boolean, found {v}"))),
        }
    }

    fn opt_str(&self, field: &str) -> Result<Option<&'a str>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("expected a string, found {v}"))),
        }
    }

    fn opt_object(&self, field: &str) -> Result<Option<Fields<'a>>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                path: self.path,
                prefix: format!("{}{field}.", self.prefix),
                map,
            })),
            Some(v) => Err(self.bad(field, format!("expected an object, found {}", kind(v)))),
        }
    }

    /// A positive, finite float.
    fn positive_f64(&self, field: &str, default: Option<f64>) -> Result<f64, LoadError> {
        match self.opt_f64(field)?.or(default) {
            None => Err(self.bad(field, "missing")),
            Some(x) if x > 0.0 && x.is_finite() => Ok(x),
            Some(x) => Err(self.bad(field, format!("must be positive and finite, found {x}"))),
        }
    }
}

impl ModelConfig {
    /// Reads and validates a Hugging Face `config.json`.
    ///
    /// Supported `model_type`s: `llama` (incl. Llama 3.x `rope_scaling` of
    /// type `llama3`), `qwen2` (q/k/v biases) and `qwen3` (q/k RMSNorm,
    /// `head_dim` from the config). Errors are [`LoadError::BadField`]
    /// naming the file and the field (`num_attention_heads`,
    /// `rope_scaling.factor`, …), or [`LoadError::Io`] / [`LoadError::Format`]
    /// when the file cannot be read or is not a JSON object.
    pub fn from_hf_json(path: &Path) -> Result<Self, LoadError> {
        let map = read_object(path)?;
        let f = Fields::top(path, &map);
        let arch = match f.opt_str("model_type")? {
            Some("llama") => Arch::Llama,
            Some("qwen2") => Arch::Qwen2,
            Some("qwen3") => Arch::Qwen3,
            Some(other) => {
                return Err(f.bad(
                    "model_type",
                    format!("unsupported architecture `{other}` (expected llama, qwen2 or qwen3)"),
                ));
            }
            None => return Err(f.bad("model_type", "missing")),
        };
        if let Some(act) = f.opt_str("hidden_act")?
            && act != "silu"
        {
            return Err(f.bad("hidden_act", format!("unsupported activation `{act}`")));
        }
        if f.opt_bool("mlp_bias")? == Some(true) {
            return Err(f.bad("mlp_bias", "MLP biases are not supported"));
        }
        if f.opt_bool("use_sliding_window")? == Some(true) {
            return Err(f.bad(
                "use_sliding_window",
                "sliding-window attention is not supported",
            ));
        }

        let hidden_size = f.positive("hidden_size")?;
        let num_heads = f.positive("num_attention_heads")?;
        let head_dim = match f.opt_usize("head_dim")? {
            Some(d) => d,
            None if hidden_size % num_heads != 0 => {
                return Err(f.bad(
                    "num_attention_heads",
                    format!("{num_heads} does not divide hidden_size = {hidden_size}"),
                ));
            }
            None => hidden_size / num_heads,
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(f.bad(
                "head_dim",
                format!("must be even and positive, found {head_dim}"),
            ));
        }
        let num_kv_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(num_heads);
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(f.bad(
                "num_key_value_heads",
                format!("{num_kv_heads} does not divide num_attention_heads = {num_heads}"),
            ));
        }

        // transformers 5 nests rope settings in `rope_parameters`; older files
        // have `rope_theta` and `rope_scaling` at the top level.
        let rope_params = f.opt_object("rope_parameters")?;
        let rope_theta = match &rope_params {
            Some(p) if p.get("rope_theta").is_some() => p.positive_f64("rope_theta", None)?,
            _ => f.positive_f64("rope_theta", Some(10_000.0))?,
        };
        let rope_scaling = match (f.opt_object("rope_scaling")?, rope_params) {
            (Some(s), _) => rope_scaling(&s)?,
            (None, Some(p)) => rope_scaling(&p)?,
            (None, None) => None,
        };

        let attention_bias = match arch {
            Arch::Qwen2 => true,
            Arch::Llama | Arch::Qwen3 => f.opt_bool("attention_bias")?.unwrap_or(false),
        };
        let config = ModelConfig {
            arch,
            vocab_size: f.positive("vocab_size")?,
            hidden_size,
            intermediate_size: f.positive("intermediate_size")?,
            num_layers: f.positive("num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: f.positive_f64("rms_norm_eps", Some(1e-6))?,
            rope_theta,
            rope_scaling,
            max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(4096),
            tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            attention_bias,
            qk_norm: arch == Arch::Qwen3,
            dms: dms_config(&f)?,
        };
        Ok(config)
    }
}

/// The `dms_*` fields of a DMS checkpoint (`None` when it has none): the
/// released NVIDIA config's `dms_alpha_scale`, `dms_initial_alpha_offset`,
/// `dms_window_size`, `dms_cr`; MO's `dms_separate_alpha`, `dms_alpha_per`;
/// and hyperscale's `dms_shifted` (default true, NVIDIA's convention).
/// Adapter tensors without these fields are detected at load time.
fn dms_config(f: &Fields<'_>) -> Result<Option<DmsConfig>, LoadError> {
    const FIELDS: [&str; 7] = [
        "dms_alpha_scale",
        "dms_initial_alpha_offset",
        "dms_window_size",
        "dms_cr",
        "dms_separate_alpha",
        "dms_alpha_per",
        "dms_shifted",
    ];
    if FIELDS.iter().all(|k| f.get(k).is_none()) {
        return Ok(None);
    }
    let window = match f.opt_usize("dms_window_size")? {
        Some(0) => return Err(f.bad("dms_window_size", "must be at least 1")),
        Some(w) => w,
        None => DmsConfig::DEFAULT_WINDOW,
    };
    let per_layer = match f.opt_str("dms_alpha_per")? {
        None | Some("head") => false,
        Some("layer") => true,
        Some(other) => {
            return Err(f.bad(
                "dms_alpha_per",
                format!("expected head or layer, found `{other}`"),
            ));
        }
    };
    Ok(Some(DmsConfig {
        alpha_scale: f.positive_f64("dms_alpha_scale", Some(DmsConfig::DEFAULT_ALPHA_SCALE))?,
        alpha_offset: f
            .opt_f64("dms_initial_alpha_offset")?
            .unwrap_or(DmsConfig::DEFAULT_ALPHA_OFFSET),
        window,
        cr: f.opt_f64("dms_cr")?,
        decision: if f.opt_bool("dms_separate_alpha")? == Some(true) {
            DmsDecision::Adapter
        } else {
            DmsDecision::QueryNeuron
        },
        shifted: f.opt_bool("dms_shifted")?.unwrap_or(true),
        per_layer,
    }))
}

/// Reads a `rope_scaling` / `rope_parameters` object: `None` for the default
/// (unscaled) rope, the llama3 parameters, or an error for other types.
fn rope_scaling(s: &Fields<'_>) -> Result<Option<RopeScaling>, LoadError> {
    let (field, rope_type) = match (s.opt_str("rope_type")?, s.opt_str("type")?) {
        (Some(t), _) => ("rope_type", t),
        (None, Some(t)) => ("type", t),
        (None, None) => return Ok(None),
    };
    match rope_type {
        "default" => Ok(None),
        "llama3" => {
            let scaling = RopeScaling {
                factor: s.positive_f64("factor", None)?,
                low_freq_factor: s.positive_f64("low_freq_factor", None)?,
                high_freq_factor: s.positive_f64("high_freq_factor", None)?,
                original_max_position_embeddings: s.positive("original_max_position_embeddings")?,
            };
            if scaling.high_freq_factor <= scaling.low_freq_factor {
                return Err(s.bad("high_freq_factor", "must be greater than low_freq_factor"));
            }
            Ok(Some(scaling))
        }
        other => Err(s.bad(
            field,
            format!("unsupported rope type `{other}` (expected default or llama3)"),
        )),
    }
}

/// Default sampling settings and special ids from `generation_config.json`.
///
/// Every field is optional; absent means "not said by the checkpoint".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationDefaults {
    pub bos_token_id: Option<u32>,
    /// End-of-sequence ids (the file may hold one id or a list).
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    pub do_sample: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub max_new_tokens: Option<usize>,
}

impl GenerationDefaults {
    /// Reads a `generation_config.json`; errors name the file and field.
    pub fn from_hf_json(path: &Path) -> Result<Self, LoadError> {
        let map = read_object(path)?;
        let f = Fields::top(path, &map);
        let id = |field: &str| -> Result<Option<u32>, LoadError> {
            f.opt_usize(field)?
                .map(|n| u32::try_from(n).map_err(|_| f.bad(field, "token id out of range")))
                .transpose()
        };
        let eos_token_ids = match f.get("eos_token_id") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| f.bad("eos_token_id", format!("invalid token id {v}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => id("eos_token_id")?.into_iter().collect(),
        };
        Ok(Self {
            bos_token_id: id("bos_token_id")?,
            eos_token_ids,
            pad_token_id: id("pad_token_id")?,
            do_sample: f.opt_bool("do_sample")?,
            temperature: f.opt_f64("temperature")?,
            top_p: f.opt_f64("top_p")?,
            top_k: f.opt_usize("top_k")?,
            max_new_tokens: f.opt_usize("max_new_tokens")?,
        })
    }
}

/// The files of a Hugging Face model directory that this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfFiles {
    pub config: PathBuf,
    /// `generation_config.json`, when present.
    pub generation_config: Option<PathBuf>,
    pub tokenizer: PathBuf,
    /// `tokenizer_config.json` (chat template, special tokens), when present.
    pub tokenizer_config: Option<PathBuf>,
}

impl HfFiles {
    /// The well-known file names inside `dir`; `config.json` and
    /// `tokenizer.json` must exist.
    pub fn in_dir(dir: &Path) -> Result<Self, LoadError> {
        let need = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(LoadError::Io {
                    path: p,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
                })
            }
        };
        let maybe = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Ok(Self {
            config: need("config.json")?,
            generation_config: maybe("generation_config.json"),
            tokenizer: need("tokenizer.json")?,
            tokenizer_config: maybe("tokenizer_config.json"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.json");
        std::fs::write(&p, json).expect("write");
        (dir, p)
    }

    const LLAMA3: &str = r#"{
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "max_position_embeddings": 131072, "tie_word_embeddings": true,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"}
    }"#;

    #[test]
    fn llama3_rope_scaling_is_read() {
        let (_d, p) = write(LLAMA3);
        let c = ModelConfig::from_hf_json(&p).expect("valid");
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!(c.head_dim, 64);
        assert_eq!(c.group_size(), 4);
        assert!(c.tie_word_embeddings && !c.attention_bias && !c.qk_norm);
        let s = c.rope_scaling.expect("scaling");
        assert_eq!((s.factor, s.original_max_position_embeddings), (32.0, 8192));
    }

    #[test]
    fn transformers5_rope_parameters_are_read() {
        let (_d, p) = write(
            r#"{"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "head_dim": 32, "vocab_size": 512,
                "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}"#,
        );
        let c = ModelConfig::from_hf_json(&p).expect("valid");
        assert_eq!((c.arch, c.head_dim, c.rope_theta), (Arch::Qwen3, 32, 1e6));
        assert!(c.qk_norm && c.rope_scaling.is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (r#""num_attention_heads": 5"#, "num_attention_heads"),
            (r#""hidden_size": "64""#, "hidden_size"),
            (r#""num_key_value_heads": 3"#, "num_key_value_heads"),
            (r#""model_type": "gpt2""#, "model_type"),
            (
                r#""rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#,
                "rope_scaling.rope_type",
            ),
            (
                r#""rope_scaling": {"rope_type": "llama3", "factor": 8.0}"#,
                "rope_scaling.low_freq_factor",
            ),
        ];
        for (patch, field) in cases {
            let json = format!(
                r#"{{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                    "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "vocab_size": 512, {patch}}}"#
            );
            // Later keys win in serde_json maps, so `patch` overrides.
            let (_d, p) = write(&json);
            match ModelConfig::from_hf_json(&p) {
                Err(LoadError::BadField {
                    field: got, path, ..
                }) => {
                    assert_eq!(got, field, "{patch}");
                    assert_eq!(path, p);
                }
                other => panic!("{patch}: expected BadField({field}), got {other:?}"),
            }
        }
    }

    #[test]
    fn generation_config_accepts_one_or_many_eos() {
        let (_d, p) = write(r#"{"bos_token_id": 1, "eos_token_id": [2, 7], "temperature": 0.6}"#);
        let g = GenerationDefaults::from_hf_json(&p).expect("valid");
        assert_eq!(g.eos_token_ids, vec![2, 7]);
        assert_eq!((g.bos_token_id, g.temperature), (Some(1), Some(0.6)));
        let (_d, p) = write(r#"{"eos_token_id": 2}"#);
        assert_eq!(
            GenerationDefaults::from_hf_json(&p).unwrap().eos_token_ids,
            vec![2]
        );
    }
}
