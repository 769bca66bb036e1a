//! Writing a trained student as a loadable DMS model directory.
//!
//! - Hugging Face base: a full checkpoint: the base's files (tokenizer,
//!   generation config, …), `config.json` = the base's plus the `dms_*`
//!   fields, and `model.safetensors` with every tensor under its official
//!   name (f32), the decision tensors included.
//! - GGUF (or wheel) base, whose weights are too large to ship: an adapter
//!   directory ([`crate::model::adapter`]): `model.safetensors` with only the
//!   decision tensors, `config.json` with the base's hyperparameters, the
//!   `dms_*` fields and `dms_base` (file name and sha256).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{Value, json};

use super::{DecisionParams, TrainConfig, TrainError, Variant};
use crate::model::adapter::{BASE_KEY, BaseRef, sha256_file};
use crate::model::{Arch, HostTensor, ModelConfig, ModelFormat, WeightSource};

/// The base a run started from.
#[derive(Debug, Clone)]
pub struct BaseModel {
    /// As given on the command line.
    pub path: PathBuf,
    pub format: ModelFormat,
    /// sha256 of a GGUF / wheel base file (recorded by adapters).
    pub sha256: Option<String>,
}

impl BaseModel {
    /// Describes the base at `path`, hashing it when it is a file.
    pub fn describe(path: &Path, format: ModelFormat) -> Result<Self, TrainError> {
        let sha256 = match format {
            ModelFormat::HfDir => None,
            ModelFormat::Gguf | ModelFormat::Wheel => Some(sha256_file(path)?),
        };
        Ok(Self {
            path: path.to_path_buf(),
            format,
            sha256,
        })
    }
}

/// What a checkpoint records about training (the `hyperscale_train` object
/// of its `config.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointInfo<'a> {
    pub step: usize,
    /// CR the schedule had reached.
    pub cr: f64,
    pub config: &'a TrainConfig,
}

/// The `dms_*` fields of a student.
fn dms_fields(cfg: &TrainConfig, cr: f64) -> Vec<(&'static str, Value)> {
    let d = &cfg.dms;
    vec![
        ("dms_alpha_scale", json!(d.alpha_scale)),
        ("dms_initial_alpha_offset", json!(d.alpha_offset)),
        ("dms_window_size", json!(d.window)),
        ("dms_cr", json!(cr)),
        ("dms_separate_alpha", json!(d.variant == Variant::Adapter)),
        ("dms_alpha_per", json!("head")),
        ("dms_shifted", json!(true)),
    ]
}

/// A Hugging Face style `config.json` for `c` (what
/// [`ModelConfig::from_hf_json`] reads back).
fn hf_config(c: &ModelConfig) -> serde_json::Map<String, Value> {
    let arch = match c.arch {
        Arch::Llama => "llama",
        Arch::Qwen2 => "qwen2",
        Arch::Qwen3 => "qwen3",
    };
    let mut m = serde_json::Map::new();
    m.insert("model_type".into(), json!(arch));
    m.insert("vocab_size".into(), json!(c.vocab_size));
    m.insert("hidden_size".into(), json!(c.hidden_size));
    m.insert("intermediate_size".into(), json!(c.intermediate_size));
    m.insert("num_hidden_layers".into(), json!(c.num_layers));
    m.insert("num_attention_heads".into(), json!(c.num_heads));
    m.insert("num_key_value_heads".into(), json!(c.num_kv_heads));
    m.insert("head_dim".into(), json!(c.head_dim));
    m.insert("rms_norm_eps".into(), json!(c.rms_norm_eps));
    m.insert("rope_theta".into(), json!(c.rope_theta));
    m.insert(
        "max_position_embeddings".into(),
        json!(c.max_position_embeddings),
    );
    m.insert("tie_word_embeddings".into(), json!(c.tie_word_embeddings));
    m.insert("attention_bias".into(), json!(c.attention_bias));
    m.insert("hidden_act".into(), json!("silu"));
    if let Some(s) = &c.rope_scaling {
        m.insert(
            "rope_scaling".into(),
            json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            }),
        );
    }
    m
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `tensors` (f32) as one safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[(String, HostTensor)]) -> Result<(), TrainError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| {
            let b = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (n.clone(), b, t.shape.clone())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| TrainError::Serialize {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| TrainError::Serialize {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes the student to `dir` (created; existing files replaced).
pub fn save_checkpoint<B: Backend>(
    dir: &Path,
    base: &BaseModel,
    model: &ModelConfig,
    weights: &dyn WeightSource,
    params: &DecisionParams<B>,
    info: &CheckpointInfo<'_>,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let trained = params.export(info.config.dms.variant, model, weights)?;
    let mut config = match base.format {
        ModelFormat::HfDir => {
            let src = base.path.join("config.json");
            let text = std::fs::read_to_string(&src).map_err(|source| TrainError::ReadData {
                path: src.clone(),
                source,
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|e| TrainError::Serialize {
                path: src.clone(),
                reason: e.to_string(),
            })?;
            v.as_object().cloned().unwrap_or_default()
        }
        ModelFormat::Gguf | ModelFormat::Wheel => hf_config(model),
    };
    for (k, v) in dms_fields(info.config, info.cr) {
        config.insert(k.into(), v);
    }
    config.insert(
        "hyperscale_train".into(),
        serde_json::to_value(info).unwrap_or(Value::Null),
    );
    match base.format {
        ModelFormat::HfDir => {
            copy_side_files(&base.path, dir)?;
            let mut all: Vec<(String, HostTensor)> = Vec::new();
            for name in weights.names() {
                if trained.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                all.push((name.clone(), weights.load(&name)?));
            }
            all.extend(trained);
            write_safetensors(&dir.join("model.safetensors"), &all)?;
        }
        ModelFormat::Gguf | ModelFormat::Wheel => {
            let file = base
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let base_ref = BaseRef {
                file,
                sha256: base.sha256.clone().unwrap_or_default(),
            };
            config.insert(
                BASE_KEY.into(),
                serde_json::to_value(base_ref).unwrap_or(Value::Null),
            );
            write_safetensors(&dir.join("model.safetensors"), &trained)?;
        }
    }
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&Value::Object(config)).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(write_err(&path))
}

/// Copies a Hugging Face directory's files other than its config and
/// weights (tokenizer, generation config, chat template).
fn copy_side_files(from: &Path, to: &Path) -> Result<(), TrainError> {
    let entries = std::fs::read_dir(from).map_err(|source| TrainError::ReadData {
        path: from.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let skip = name == "config.json"
            || name.ends_with(".safetensors")
            || name.ends_with(".safetensors.index.json")
            || !e.path().is_file();
        if !skip {
            let dst = to.join(&name);
            std::fs::copy(e.path(), &dst).map_err(write_err(&dst))?;
        }
    }
    Ok(())
}
