//! [`HubClient`]: resolves a repository revision (online through the API,
//! else from the cache's refs) and hands out cached file paths, downloading
//! what is missing. Async; [`block_on`] runs it from synchronous code.
//!
//! Online, a file is served from `snapshots/<commit>/` when already there,
//! else from `blobs/` when another revision has the same bytes, else
//! downloaded. When the Hub cannot be reached (connection refused, DNS,
//! `HF_HUB_OFFLINE=1`), the revision is resolved from `refs/` and files
//! come from the cache only; a missing one is an error naming every place
//! looked at. HTTP errors (401 gated, 404) are errors, never a fallback.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};

use super::api::{FileMeta, RepoInfo, file_url, info_url, status_error};
use super::cache::HubCache;
use super::download::download_blob;
use super::env::HubConfig;
use super::error::HubError;
use super::repo::Repo;
use super::retry::{retry_after, retryable_error, retryable_status};

/// Connection timeout of every request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a request whose connection is refused.
const CONNECT_ATTEMPTS: u32 = 2;
/// Timeout on any single read, so a stalled download is retried.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A Hub client with its cache.
#[derive(Debug, Clone)]
pub struct HubClient {
    config: HubConfig,
    http: reqwest::Client,
    cache: HubCache,
}

/// A repository revision ready to serve files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The Hub answered: the commit and its file listing.
    Online { repo: Repo, info: RepoInfo },
    /// Cache only; `commit` is what `refs/` says (if anything), `reason`
    /// why the Hub was not used.
    Offline {
        repo: Repo,
        commit: Option<String>,
        reason: String,
    },
}

impl Resolved {
    /// The commit, when known.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Self::Online { info, .. } => Some(&info.sha),
            Self::Offline { commit, .. } => commit.as_deref(),
        }
    }

    pub fn repo(&self) -> &Repo {
        match self {
            Self::Online { repo, .. } | Self::Offline { repo, .. } => repo,
        }
    }
}

impl HubClient {
    /// A client for `config` (see [`HubConfig::from_env`]).
    pub fn new(config: HubConfig) -> Result<Self, HubError> {
        let http = http_client()?;
        let cache = HubCache::new(config.cache_dir.clone());
        Ok(Self {
            config,
            http,
            cache,
        })
    }

    /// [`HubClient::new`] with [`HubConfig::from_env`].
    pub fn from_env() -> Result<Self, HubError> {
        Self::new(HubConfig::from_env())
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn cache(&self) -> &HubCache {
        &self.cache
    }

    /// The underlying HTTP client (user agent and timeouts set).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Resolves `repo.revision`: through the API when online (recording the
    /// ref in the cache), from the cache when offline or unreachable.
    pub async fn resolve(&self, repo: &Repo) -> Result<Resolved, HubError> {
        let offline = |reason: String| Resolved::Offline {
            repo: repo.clone(),
            commit: self.cache.resolve(repo),
            reason,
        };
        if self.config.offline {
            return Ok(offline("HF_HUB_OFFLINE is set".into()));
        }
        let url = info_url(&self.config.endpoint, repo);
        match self.get_json::<RepoInfo>(repo, &url).await {
            Ok(info) => {
                self.cache.write_ref(&repo.id, &repo.revision, &info.sha)?;
                Ok(Resolved::Online {
                    repo: repo.clone(),
                    info,
                })
            }
            Err(HubError::Network { source, .. }) if source.is_connect() || source.is_timeout() => {
                Ok(offline(format!("{url}: {}", causes(&source))))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `file` is part of the resolved revision (listed online;
    /// present in the cached snapshot offline).
    pub fn has(&self, resolved: &Resolved, file: &str) -> bool {
        match resolved {
            Resolved::Online { info, .. } => info.file(file).is_some(),
            Resolved::Offline { repo, .. } => self.cache.lookup(repo, file).found.is_some(),
        }
    }

    /// The cached path of `file`, downloading it first when online and
    /// missing. The path is `snapshots/<commit>/<file>`.
    pub async fn file(&self, resolved: &Resolved, file: &str) -> Result<PathBuf, HubError> {
        let (repo, info) = match resolved {
            Resolved::Online { repo, info } => (repo, info),
            Resolved::Offline { repo, reason, .. } => {
                let lookup = self.cache.lookup(repo, file);
                return lookup.found.ok_or_else(|| HubError::NotCached {
                    repo: repo.id.clone(),
                    revision: repo.revision.clone(),
                    file: file.to_string(),
                    reason: reason.as_str().into(),
                    searched: lookup.searched.into(),
                });
            }
        };
        let commit = &info.sha;
        let snapshot = self.cache.snapshot_dir(&repo.id, commit).join(file);
        if snapshot.is_file() {
            return Ok(snapshot);
        }
        let sibling = info.file(file).ok_or_else(|| HubError::FileNotFound {
            repo: repo.id.clone(),
            revision: repo.revision.clone(),
            file: file.to_string(),
        })?;
        let url = file_url(&self.config.endpoint, &repo.id, commit, file);
        let meta = match FileMeta::from_sibling(sibling) {
            Some(meta) => meta,
            None => self.head_meta(repo, file, &url).await?,
        };
        let blob = self.cache.blob_path(&repo.id, &meta.blob);
        if !blob.is_file() {
            download_blob(&self.http, &self.config, repo, &meta, &url, &blob).await?;
        }
        self.cache.link(&repo.id, commit, file, &meta.blob)
    }

    /// Fetches (or finds) every one of `files`; their paths in order.
    pub async fn files(
        &self,
        resolved: &Resolved,
        files: &[String],
    ) -> Result<Vec<PathBuf>, HubError> {
        let mut paths = Vec::with_capacity(files.len());
        for file in files {
            paths.push(self.file(resolved, file).await?);
        }
        Ok(paths)
    }

    /// `HEAD …/resolve/<commit>/<file>` without following redirects: the
    /// `X-Linked-Etag` / `ETag` headers name the blob.
    async fn head_meta(&self, repo: &Repo, file: &str, url: &str) -> Result<FileMeta, HubError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(HubError::Client)?;
        let response = self
            .send(repo, Some(file), url, || self.authorized(client.head(url)))
            .await?;
        FileMeta::from_headers(file, response.headers()).ok_or_else(|| HubError::BadResponse {
            url: url.to_string(),
            reason: "no ETag or X-Linked-Etag header".into(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        repo: &Repo,
        url: &str,
    ) -> Result<T, HubError> {
        let response = self
            .send(repo, None, url, || self.authorized(self.http.get(url)))
            .await?;
        let bytes = response.bytes().await.map_err(|source| HubError::Network {
            url: url.to_string(),
            attempts: 1,
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| HubError::BadResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// Sends a request built by `build`, retrying per the config's policy;
    /// a success or 3xx response is returned, anything else mapped to its error.
    async fn send(
        &self,
        repo: &Repo,
        file: Option<&str>,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HubError> {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match build().send().await {
                Ok(r) if r.status().is_success() || r.status().is_redirection() => return Ok(r),
                Ok(r) if retryable_status(r.status()) && policy.allows_another(attempt) => {
                    tokio::time::sleep(policy.delay(attempt, retry_after(r.headers()))).await;
                }
                Ok(r) => return Err(status_error(repo, file, url, &r)),
                // A refused connection is tried twice at most: the Hub is
                // unreachable, and the caller falls back to the cache.
                Err(e)
                    if retryable_error(&e)
                        && policy.allows_another(attempt)
                        && !(e.is_connect() && attempt >= CONNECT_ATTEMPTS) =>
                {
                    tokio::time::sleep(policy.delay(attempt, None)).await;
                }
                Err(source) => {
                    return Err(HubError::Network {
                        url: url.to_string(),
                        attempts: attempt,
                        source,
                    });
                }
            }
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }
}

/// The innermost cause of an HTTP error (e.g. the DNS or connect failure),
/// which reqwest's own message leaves out.
fn causes(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// An HTTP client with this crate's user agent and timeouts (rustls).
pub fn http_client() -> Result<reqwest::Client, HubError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .default_headers(
            [(
                USER_AGENT,
                HeaderValue::from_static(concat!("hyperscale/", env!("CARGO_PKG_VERSION"))),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .map_err(HubError::Client)
}

/// Runs `future` to completion from synchronous code: on a fresh
/// current-thread runtime, on its own thread when called inside a runtime.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let run = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
            .block_on(future)
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(run).join().expect("hub thread does not panic"))
    } else {
        run()
    }
}
