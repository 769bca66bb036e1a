//! `--model hf:ORG/NAME[@REV]`: a checkpoint from the Hub as a local
//! Hugging Face directory (the cache snapshot), fetching what is missing:
//! `config.json`, the tokenizer files, `generation_config.json`, the chat
//! template files and the safetensors weights (every shard named by
//! `model.safetensors.index.json`, else `model.safetensors`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::client::{HubClient, block_on};
use super::error::HubError;
use super::repo::{ModelRef, Repo};

/// Files a checkpoint directory must have.
pub const REQUIRED_FILES: [&str; 2] = ["config.json", "tokenizer.json"];
/// Fetched when the repository has them.
pub const OPTIONAL_FILES: [&str; 5] = [
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
];
/// The sharded-weights index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// Unsharded weights.
pub const SINGLE_FILE: &str = "model.safetensors";

/// A model argument as a local path: unchanged unless it is `hf:…`, which
/// is resolved through the Hub cache (downloading as needed, see
/// [`HubConfig::from_env`](super::HubConfig::from_env)).
pub fn resolve_model_arg(arg: &str) -> Result<PathBuf, HubError> {
    match ModelRef::parse(arg)? {
        None => Ok(PathBuf::from(arg)),
        Some(model) => {
            let client = HubClient::from_env()?;
            block_on(snapshot_model(&client, &model.0))
        }
    }
}

/// The snapshot folder of `repo` holding a loadable checkpoint.
pub async fn snapshot_model(client: &HubClient, repo: &Repo) -> Result<PathBuf, HubError> {
    let resolved = client.resolve(repo).await?;
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = client.file(&resolved, file).await?;
        dir.get_or_insert_with(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    for file in OPTIONAL_FILES {
        if client.has(&resolved, file) {
            client.file(&resolved, file).await?;
        }
    }
    if client.has(&resolved, INDEX_FILE) {
        let index = client.file(&resolved, INDEX_FILE).await?;
        for shard in shards(&index)? {
            client.file(&resolved, &shard).await?;
        }
    } else {
        client.file(&resolved, SINGLE_FILE).await?;
    }
    Ok(dir.unwrap_or_default())
}

/// The distinct shard files of an index's `weight_map`, sorted.
fn shards(index: &Path) -> Result<BTreeSet<String>, HubError> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(HubError::io(index))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| HubError::BadResponse {
        url: index.display().to_string(),
        reason: format!("field `weight_map`: {e}"),
    })?;
    let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
    if let Some(bad) = shards
        .iter()
        .find(|s| s.contains("..") || s.starts_with('/'))
    {
        return Err(HubError::BadResponse {
            url: index.display().to_string(),
            reason: format!("shard `{bad}` is outside the repository"),
        });
    }
    Ok(shards)
}
