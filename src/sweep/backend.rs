//! Who decodes a sweep: this process ([`Backend::Local`]) or an
//! OpenAI-compatible server ([`Backend::OpenAi`]: vLLM, SGLang,
//! TensorRT-LLM, llama.cpp, Ollama), validated from the `[model]` section.
//!
//! A remote engine runs its own KV cache, so only `dense` can be asked of it
//! and its budgets are computed from token counts with the closed form of
//! dense attention (records say `budget_source = "computed"`); see
//! [`super::wiring::remote`].

use std::time::Duration;

use super::ConfigError;
use super::config::{BackendKind, MethodSection, ModelSection, PromptFormat};
use crate::limits;

/// The model's attention shape, for computed budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// A validated `backend = "openai"` model section.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSpec {
    /// API root without a trailing `/` (`…/v1`); requests go to
    /// `{base_url}/completions`.
    pub base_url: String,
    /// Served model name.
    pub model: String,
    pub api_key_env: Option<String>,
    /// `None`: read from the local model files at `path`.
    pub shape: Option<ModelShape>,
    pub concurrency: usize,
    pub max_n: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub prompt_format: PromptFormat,
    /// `prompt_format = "text"`: the server prepends BOS; `None`: as the
    /// model's tokenizer does.
    pub server_adds_bos: Option<bool>,
}

/// Who decodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Local,
    OpenAi(RemoteSpec),
}

/// Validate the backend keys of `[model]` against the methods.
pub(crate) fn backend_plan(
    m: &ModelSection,
    methods: &[MethodSection],
    file: &str,
) -> Result<Backend, ConfigError> {
    let err = |key: &str, message: String| ConfigError {
        file: file.to_string(),
        key: key.to_string(),
        message,
    };
    let remote_only = [
        ("model.base_url", m.base_url.is_some()),
        ("model.model", m.model.is_some()),
        ("model.api_key_env", m.api_key_env.is_some()),
        ("model.shape", m.shape.is_some()),
        ("model.concurrency", m.concurrency.is_some()),
        ("model.max_n", m.max_n.is_some()),
        ("model.timeout_seconds", m.timeout_seconds.is_some()),
        ("model.retries", m.retries.is_some()),
        ("model.backoff_seconds", m.backoff_seconds.is_some()),
        ("model.prompt_format", m.prompt_format.is_some()),
        ("model.server_adds_bos", m.server_adds_bos.is_some()),
    ];
    if m.backend == BackendKind::Local {
        return match remote_only.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(err(key, "only applies to backend = \"openai\"".into())),
            None => Ok(Backend::Local),
        };
    }
    let base_url = m
        .base_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            err(
                "model.base_url",
                "backend \"openai\" needs the server's API root (e.g. http://localhost:8000/v1)"
                    .into(),
            )
        })?;
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(err(
            "model.base_url",
            format!("`{base_url}` is not an http(s) URL"),
        ));
    }
    let model = m
        .model
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            err(
                "model.model",
                "backend \"openai\" needs the served model name".into(),
            )
        })?;
    if m.dtype == "quantized" {
        return Err(err(
            "model.dtype",
            "`quantized` is this process's CPU weight form; a server keeps its own weights (give the KV dtype: f32, bf16 or f16)".into(),
        ));
    }
    if !m.dms.is_empty() {
        return Err(err(
            "model.dms",
            "DMS checkpoints run locally only; backend \"openai\" runs dense".into(),
        ));
    }
    for (i, method) in methods.iter().enumerate() {
        if !matches!(method, MethodSection::Dense { .. }) {
            return Err(err(
                &format!("grid.methods[{i}].policy"),
                "backend \"openai\" runs only policy \"dense\" (the server keeps its own KV cache)"
                    .into(),
            ));
        }
    }
    let shape = match m.shape {
        Some(s) if s.layers == 0 || s.kv_heads == 0 || s.head_dim == 0 => {
            return Err(err(
                "model.shape",
                "layers, kv_heads and head_dim must be at least 1".into(),
            ));
        }
        Some(s) => Some(ModelShape {
            layers: s.layers,
            kv_heads: s.kv_heads,
            head_dim: s.head_dim,
        }),
        None => None,
    };
    let positive = |key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(err(key, "must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    // Bounded before `Duration::from_secs_f64`, which panics on 1e20.
    let seconds = |key: &str, v: Option<f64>, default: f64, max: f64| {
        limits::seconds(v.unwrap_or(default), max).map_err(|e| err(key, e.to_string()))
    };
    let bounded = |key: &str, v: usize, max: usize| {
        limits::at_most(v as u64, max as u64, "the most a sweep may ask")
            .map(|_| v)
            .map_err(|e| err(key, e.to_string()))
    };
    let concurrency = positive("model.concurrency", m.concurrency, 8)?;
    let retries = m.retries.unwrap_or(5);
    let prompt_format = m.prompt_format.unwrap_or_default();
    if m.server_adds_bos.is_some() && prompt_format != PromptFormat::Text {
        return Err(err(
            "model.server_adds_bos",
            "only applies to prompt_format = \"text\"".into(),
        ));
    }
    Ok(Backend::OpenAi(RemoteSpec {
        base_url,
        model,
        api_key_env: m.api_key_env.clone(),
        shape,
        // tokio's semaphore panics beyond 2^61 permits.
        concurrency: bounded("model.concurrency", concurrency, limits::MAX_CONCURRENCY)?,
        max_n: positive("model.max_n", m.max_n, 64)?,
        timeout: seconds(
            "model.timeout_seconds",
            m.timeout_seconds,
            600.0,
            limits::MAX_TIMEOUT_S,
        )?,
        retries: bounded(
            "model.retries",
            retries as usize,
            limits::MAX_RETRIES as usize,
        )? as u32,
        backoff: seconds(
            "model.backoff_seconds",
            m.backoff_seconds,
            1.0,
            limits::MAX_BACKOFF_S,
        )?,
        prompt_format,
        server_adds_bos: m.server_adds_bos,
    }))
}
