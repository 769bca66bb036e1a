//! [`HubError`]: everything that can go wrong talking to the Hub or its
//! local cache. Messages name the repository, the file and, when a file is
//! missing offline, every place that was looked at.

use std::path::PathBuf;

use thiserror::Error;

use super::repo::RepoId;

/// A Hub or cache failure.
#[derive(Debug, Error)]
pub enum HubError {
    #[error("bad Hub repository `{id}`: {reason}")]
    BadRepoId { id: String, reason: String },
    #[error(
        "{repo} is gated or private (HTTP {status}{}): accept its terms on the Hub page, then set HF_TOKEN (or write the token to $HF_HOME/token)",
        detail(.message)
    )]
    Gated {
        repo: RepoId,
        status: u16,
        message: Option<String>,
    },
    #[error("{repo} not found on the Hub (HTTP {status}{}; if it is private, set HF_TOKEN)", detail(.message))]
    RepoNotFound {
        repo: RepoId,
        status: u16,
        message: Option<String>,
    },
    #[error("{repo} has no revision `{revision}`{}", detail(.message))]
    RevisionNotFound {
        repo: RepoId,
        revision: String,
        message: Option<String>,
    },
    #[error("{repo} at `{revision}` has no file `{file}`")]
    FileNotFound {
        repo: RepoId,
        revision: String,
        file: String,
    },
    #[error("`{url}`: HTTP {status}{}", detail(.message))]
    Http {
        url: String,
        status: u16,
        message: Option<String>,
    },
    #[error("`{url}`: failed after {attempts} attempts")]
    Network {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "`{url}`: the connection closed after {received} of {expected} bytes (after {attempts} attempts)"
    )]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
        attempts: u32,
    },
    #[error(
        "`{file}` of {repo} at `{revision}` is not in the local cache and the Hub cannot be reached ({reason}); looked in {}",
        list(.searched)
    )]
    NotCached {
        repo: RepoId,
        revision: String,
        file: String,
        /// Boxed slices (no spare capacity) keep `HubError`, and with it
        /// every `Result` of the Hub code, under 128 bytes.
        reason: Box<str>,
        searched: Box<[PathBuf]>,
    },
    #[error(
        "`{file}` of {repo}: {algorithm} mismatch: the Hub says {expected}, the download has {actual}; the file was not kept"
    )]
    Checksum {
        repo: RepoId,
        file: String,
        algorithm: HashAlgorithm,
        expected: String,
        actual: String,
    },
    #[error("invalid Hub response from `{url}`: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("cache I/O on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// How a download's bytes are checked against the Hub's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256 of the file (LFS files).
    Sha256,
    /// Git's blob SHA-1: of `blob <len>\0` followed by the file.
    GitBlobSha1,
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::GitBlobSha1 => "git blob sha1",
        })
    }
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing (no cache folder for it)".into();
    }
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Result` of the Hub code carries a `HubError`; the bulky
    /// parts (the searched paths, the HTTP client's error) are boxed so it
    /// stays under clippy's `result_large_err` threshold (128 bytes).
    #[test]
    fn the_error_stays_small() {
        let size = std::mem::size_of::<HubError>();
        assert!(size < 128, "HubError is {size} bytes");
    }
}
