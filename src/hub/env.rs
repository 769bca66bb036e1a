//! [`HubConfig`]: the Hub endpoint, the token, the cache folder and offline
//! mode, read from the same environment variables as Python's
//! `huggingface_hub`, so both share one cache.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HF_ENDPOINT` | Hub base URL | `https://huggingface.co` |
//! | `HF_TOKEN` | access token (gated / private repos) | `$HF_TOKEN_PATH`, else `$HF_HOME/token` |
//! | `HF_HOME` | root of Hugging Face files | `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` |
//! | `HF_HUB_CACHE` | the hub cache (`HUGGINGFACE_HUB_CACHE` also read) | `$HF_HOME/hub` |
//! | `HF_HUB_OFFLINE` | `1`/`true`/`yes`/`on`: never touch the network | off |

use std::path::{Path, PathBuf};

use super::retry::RetryPolicy;

/// The default Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How to reach the Hub and where its cache is.
#[derive(Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL without a trailing `/`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer …` to the endpoint (never to redirect targets).
    pub token: Option<String>,
    /// The hub cache: `<cache>/{models,datasets}--org--name/…`.
    pub cache_dir: PathBuf,
    /// Never use the network; only the cache.
    pub offline: bool,
    /// Retries on 429, 5xx and dropped connections.
    pub retry: RetryPolicy,
    /// Show a progress bar per download when stderr is a terminal.
    pub progress: bool,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("retry", &self.retry)
            .finish()
    }
}

impl HubConfig {
    /// Reads the environment (see the module table).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) over any variable lookup (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let hf_home = hf_home(&var);
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                read_token(&path)
            });
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v));
        Self {
            endpoint,
            token,
            cache_dir,
            offline,
            retry: RetryPolicy::default(),
            progress: true,
        }
    }

    /// A config for `endpoint` and `cache_dir`, no token, online.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            token: None,
            cache_dir: cache_dir.into(),
            offline: false,
            retry: RetryPolicy::default(),
            progress: false,
        }
    }
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
fn hf_home(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(home) = var("HF_HOME") {
        return PathBuf::from(home);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface")
}

fn read_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// `huggingface_hub`'s reading of boolean variables.
fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> HubConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let c = config(&[("HOME", "/home/u")]);
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert!(!c.offline && c.token.is_none());
        let c = config(&[
            ("HF_HOME", "/h"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "true"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/h/hub"));
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline);
        let c = config(&[
            ("HF_HOME", "/h"),
            ("HF_HUB_CACHE", "/c"),
            ("HF_HUB_OFFLINE", "0"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/c"));
        assert!(!c.offline);
    }

    #[test]
    fn token_from_env_then_token_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_file\n").unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(
            config(&[("HF_HOME", home)]).token.as_deref(),
            Some("hf_file")
        );
        let c = config(&[("HF_HOME", home), ("HF_TOKEN", "hf_env")]);
        assert_eq!(c.token.as_deref(), Some("hf_env"));
        assert!(!format!("{c:?}").contains("hf_env"), "token not printed");
    }
}
