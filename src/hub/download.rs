//! Downloading one file into the cache: `blobs/<id>.incomplete`, resumed
//! with a `Range` request after a dropped connection, retried with backoff
//! on 429/5xx, hashed (sha256 for LFS files, the git blob SHA-1 otherwise)
//! and only then renamed to `blobs/<id>`. A hash mismatch deletes the
//! partial file and is an error; nothing is promoted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RANGE};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::api::{ExpectedHash, FileMeta, status_error};
use super::env::HubConfig;
use super::error::{HashAlgorithm, HubError};
use super::repo::Repo;
use super::retry::{retry_after, retryable_error, retryable_status};

/// Downloads `url` (file `meta.name` of `repo`) to `blob`, resuming from an
/// existing `<blob>.incomplete`. Returns once `blob` holds verified bytes.
pub(crate) async fn download_blob(
    http: &reqwest::Client,
    config: &HubConfig,
    repo: &Repo,
    meta: &FileMeta,
    url: &str,
    blob: &Path,
) -> Result<(), HubError> {
    let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
    if let Some(parent) = blob.parent() {
        std::fs::create_dir_all(parent).map_err(HubError::io(parent))?;
    }
    let bar = progress_bar(config, &meta.name, meta.size);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if meta.size.is_some_and(|size| have == size) {
            break;
        }
        let mut request = http.get(url);
        if let Some(token) = &config.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let retry = |attempt: u32, after: Option<std::time::Duration>| {
            let wait = config.retry.delay(attempt, after);
            tracing::warn!(
                "{url}: try {attempt} failed; retrying in {:.1} s",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait)
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if retryable_error(&e) && config.retry.allows_another(attempt) => {
                retry(attempt, None).await;
                continue;
            }
            Err(source) => {
                return Err(HubError::Network {
                    url: url.to_string(),
                    attempts: attempt,
                    source,
                });
            }
        };
        let status = response.status();
        let append = match status {
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Our partial file is longer than the object: start over.
                remove(&partial)?;
                if config.retry.allows_another(attempt) {
                    continue;
                }
                return Err(status_error(repo, Some(&meta.name), url, &response));
            }
            s if retryable_status(s) && config.retry.allows_another(attempt) => {
                retry(attempt, retry_after(response.headers())).await;
                continue;
            }
            _ => return Err(status_error(repo, Some(&meta.name), url, &response)),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&partial)
            .map_err(HubError::io(&partial))?;
        let mut written = if append { have } else { 0 };
        bar.set_position(written);
        let mut cut = None;
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    file.write_all(&bytes).map_err(HubError::io(&partial))?;
                    written += bytes.len() as u64;
                    bar.set_position(written);
                }
                Ok(None) => break,
                Err(e) => {
                    cut = Some(e);
                    break;
                }
            }
        }
        file.flush().map_err(HubError::io(&partial))?;
        drop(file);
        let short = meta.size.is_some_and(|size| written < size);
        if cut.is_none() && !short {
            break;
        }
        if config.retry.allows_another(attempt) {
            retry(attempt, None).await;
            continue;
        }
        return Err(match cut {
            Some(source) => HubError::Network {
                url: url.to_string(),
                attempts: attempt,
                source,
            },
            None => HubError::Truncated {
                url: url.to_string(),
                received: written,
                expected: meta.size.unwrap_or_default(),
                attempts: attempt,
            },
        });
    }
    bar.finish_and_clear();
    if let Err(e) = verify(repo, meta, &partial) {
        remove(&partial)?;
        return Err(e);
    }
    std::fs::rename(&partial, blob).map_err(HubError::io(blob))
}

/// Checks the hash of the downloaded bytes against `meta.expected`.
fn verify(repo: &Repo, meta: &FileMeta, path: &Path) -> Result<(), HubError> {
    let (algorithm, expected, actual) = match &meta.expected {
        ExpectedHash::Unknown => return Ok(()),
        ExpectedHash::Sha256(hex) => (HashAlgorithm::Sha256, hex, hash_file::<Sha256>(path, None)?),
        ExpectedHash::GitSha1(hex) => {
            let len = std::fs::metadata(path).map_err(HubError::io(path))?.len();
            let header = format!("blob {len}\0");
            (
                HashAlgorithm::GitBlobSha1,
                hex,
                hash_file::<Sha1>(path, Some(header.as_bytes()))?,
            )
        }
    };
    if &actual != expected {
        return Err(HubError::Checksum {
            repo: repo.id.clone(),
            file: meta.name.clone(),
            algorithm,
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// Hex digest of `prefix` + the file's bytes.
fn hash_file<D: Digest>(path: &Path, prefix: Option<&[u8]>) -> Result<String, HubError> {
    let mut file = std::fs::File::open(path).map_err(HubError::io(path))?;
    let mut hasher = D::new();
    if let Some(p) = prefix {
        hasher.update(p);
    }
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(HubError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn remove(path: &Path) -> Result<(), HubError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HubError::io(path)(e)),
        _ => Ok(()),
    }
}

/// A byte progress bar on a terminal; hidden otherwise.
fn progress_bar(config: &HubConfig, name: &str, size: Option<u64>) -> ProgressBar {
    use std::io::IsTerminal;
    if !config.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size.unwrap_or(0));
    let style = ProgressStyle::with_template(
        "{msg:30!} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(name.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        let header = b"blob 6\0";
        assert_eq!(
            hash_file::<Sha1>(&path, Some(header)).unwrap(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
