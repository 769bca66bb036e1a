//! The Hub's HTTP API as this client uses it: repository metadata at a
//! revision (`GET /api/{models|datasets}/{id}/revision/{rev}?blobs=true`,
//! which resolves the revision to a commit and lists every file with its
//! git blob id, size and LFS sha256), file URLs, and the mapping of the
//! Hub's error responses (`X-Error-Code`) to [`HubError`].

use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde::Deserialize;

use super::error::HubError;
use super::repo::{Repo, RepoId};

/// A repository at a commit, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepoInfo {
    /// The commit the revision resolved to.
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// One file of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sibling {
    /// Path inside the repository.
    pub rfilename: String,
    /// Bytes (with `blobs=true`).
    #[serde(default)]
    pub size: Option<u64>,
    /// Git blob id (SHA-1) of the file, or of its LFS pointer.
    #[serde(default, rename = "blobId")]
    pub blob_id: Option<String>,
    /// Set for files stored with Git LFS.
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

/// The LFS object behind a file: its sha256 is the file's content hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LfsInfo {
    #[serde(alias = "oid")]
    pub sha256: String,
    pub size: u64,
}

impl RepoInfo {
    /// The listed file `name`.
    pub fn file(&self, name: &str) -> Option<&Sibling> {
        self.siblings.iter().find(|s| s.rfilename == name)
    }
}

/// What a download must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedHash {
    /// The LFS oid: sha256 of the bytes.
    Sha256(String),
    /// A git blob id: SHA-1 of `blob <len>\0` + bytes (small, non-LFS files).
    GitSha1(String),
    /// Nothing known (the server sent no usable ETag).
    Unknown,
}

/// The file's cache name (blob id) and expected hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub name: String,
    /// Name under `blobs/`: the sha256 for LFS files, else the git blob id.
    pub blob: String,
    pub expected: ExpectedHash,
    pub size: Option<u64>,
}

impl FileMeta {
    /// From the API listing, when it carries blob ids.
    pub fn from_sibling(s: &Sibling) -> Option<Self> {
        if let Some(lfs) = &s.lfs {
            return Some(Self {
                name: s.rfilename.clone(),
                blob: lfs.sha256.to_ascii_lowercase(),
                expected: ExpectedHash::Sha256(lfs.sha256.to_ascii_lowercase()),
                size: Some(lfs.size),
            });
        }
        let blob = s.blob_id.as_ref()?.to_ascii_lowercase();
        Some(Self {
            name: s.rfilename.clone(),
            expected: ExpectedHash::GitSha1(blob.clone()),
            blob,
            size: s.size,
        })
    }

    /// From the headers of `HEAD …/resolve/…`: `X-Linked-Etag` (LFS sha256)
    /// else `ETag` (git blob id); sizes from `X-Linked-Size` / `Content-Length`.
    pub fn from_headers(name: &str, headers: &HeaderMap) -> Option<Self> {
        let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
        let clean = |v: &str| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_ascii_lowercase()
        };
        let size = header("x-linked-size")
            .or_else(|| header("content-length"))
            .and_then(|v| v.parse().ok());
        if let Some(etag) = header("x-linked-etag").map(clean) {
            return Some(Self {
                name: name.to_string(),
                expected: ExpectedHash::Sha256(etag.clone()),
                blob: etag,
                size,
            });
        }
        let etag = clean(header("etag")?);
        let expected = if etag.len() == 40 && etag.chars().all(|c| c.is_ascii_hexdigit()) {
            ExpectedHash::GitSha1(etag.clone())
        } else {
            ExpectedHash::Unknown
        };
        Some(Self {
            name: name.to_string(),
            blob: etag,
            expected,
            size,
        })
    }
}

/// `{endpoint}/api/{models|datasets}/{id}/revision/{rev}?blobs=true`.
pub fn info_url(endpoint: &str, repo: &Repo) -> String {
    format!(
        "{endpoint}/api/{}/{}/revision/{}?blobs=true",
        repo.id.kind.plural(),
        repo.id.id,
        encode(&repo.revision)
    )
}

/// `{endpoint}/{datasets/}{id}/resolve/{rev}/{path}`.
pub fn file_url(endpoint: &str, id: &RepoId, revision: &str, file: &str) -> String {
    let path: Vec<String> = file.split('/').map(encode).collect();
    format!(
        "{endpoint}/{}{}/resolve/{}/{}",
        id.kind.url_prefix(),
        id.id,
        encode(revision),
        path.join("/")
    )
}

/// Percent-encodes everything but unreserved characters (a revision like
/// `refs/pr/1` becomes one path segment).
fn encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a non-success response into the error it means, reading the Hub's
/// `X-Error-Code` / `X-Error-Message` headers.
pub fn status_error(repo: &Repo, file: Option<&str>, url: &str, response: &Response) -> HubError {
    let status = response.status();
    let header = |h: &str| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code = header("x-error-code").unwrap_or_default();
    let message = header("x-error-message");
    let id = repo.id.clone();
    match (status, code.as_str()) {
        (_, "GatedRepo") => HubError::Gated {
            repo: id,
            status: status.as_u16(),
            message,
        },
        (_, "RevisionNotFound") => HubError::RevisionNotFound {
            repo: id,
            revision: repo.revision.clone(),
            message,
        },
        (_, "EntryNotFound") | (StatusCode::NOT_FOUND, _)
            if file.is_some() && code != "RepoNotFound" =>
        {
            HubError::FileNotFound {
                repo: id,
                revision: repo.revision.clone(),
                file: file.unwrap_or_default().to_string(),
            }
        }
        (_, "RepoNotFound") | (StatusCode::NOT_FOUND, _) => HubError::RepoNotFound {
            repo: id,
            status: status.as_u16(),
            message,
        },
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => HubError::Gated {
            repo: id,
            status: status.as_u16(),
            message,
        },
        _ => HubError::Http {
            url: url.to_string(),
            status: status.as_u16(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::repo::RepoType;

    #[test]
    fn urls_and_listing_follow_the_hub() {
        let id = RepoId::new(RepoType::Dataset, "org/d").unwrap();
        let repo = Repo::new(id.clone(), "refs/pr/1");
        assert_eq!(
            info_url("http://h", &repo),
            "http://h/api/datasets/org/d/revision/refs%2Fpr%2F1?blobs=true"
        );
        assert_eq!(
            file_url("http://h", &id, "main", "sub dir/a.json"),
            "http://h/datasets/org/d/resolve/main/sub%20dir/a.json"
        );
        let json = r#"{"sha":"0123456789012345678901234567890123456789","siblings":[
            {"rfilename":"a.json","size":2,"blobId":"ABC"},
            {"rfilename":"w.safetensors","size":9,"blobId":"def","lfs":{"sha256":"FF","size":9,"pointerSize":130}}]}"#;
        let info: RepoInfo = serde_json::from_str(json).unwrap();
        let a = FileMeta::from_sibling(info.file("a.json").unwrap()).unwrap();
        assert_eq!(a.expected, ExpectedHash::GitSha1("abc".into()));
        let w = FileMeta::from_sibling(info.file("w.safetensors").unwrap()).unwrap();
        assert_eq!((w.blob.as_str(), w.size), ("ff", Some(9)));
    }

    #[test]
    fn linked_etag_wins_over_etag() {
        let mut h = HeaderMap::new();
        h.insert(
            "etag",
            "W/\"1111111111111111111111111111111111111111\""
                .parse()
                .unwrap(),
        );
        let m = FileMeta::from_headers("f", &h).unwrap();
        assert_eq!(m.expected, ExpectedHash::GitSha1("1".repeat(40)));
        h.insert("x-linked-etag", "\"AB\"".parse().unwrap());
        h.insert("x-linked-size", "7".parse().unwrap());
        let m = FileMeta::from_headers("f", &h).unwrap();
        assert_eq!(
            (m.expected, m.size),
            (ExpectedHash::Sha256("ab".into()), Some(7))
        );
    }
}
