//! Naming things on the Hub: [`RepoType`], [`RepoId`], a [`Repo`] at a
//! revision, and the `hf:ORG/NAME[@REV]` model reference ([`ModelRef`]).

use std::fmt;

use super::error::HubError;

/// The prefix that marks a model argument as a Hub reference.
pub const HF_PREFIX: &str = "hf:";

/// The default revision of a repository.
pub const DEFAULT_REVISION: &str = "main";

/// Kind of Hub repository; decides URL prefixes and the cache folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    Model,
    Dataset,
}

impl RepoType {
    /// `models` / `datasets`: the API path segment and the cache folder prefix.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
        }
    }

    /// The prefix of file URLs (`{endpoint}/{prefix}{repo}/resolve/…`).
    pub fn url_prefix(self) -> &'static str {
        match self {
            Self::Model => "",
            Self::Dataset => "datasets/",
        }
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Model => "model",
            Self::Dataset => "dataset",
        })
    }
}

/// `org/name` (or a bare `name`) of a repository of some [`RepoType`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    pub kind: RepoType,
    /// `org/name` as the Hub spells it.
    pub id: String,
}

impl RepoId {
    /// Checks `id`: one or two non-empty segments of `A-Za-z0-9-_.`, no `..`.
    pub fn new(kind: RepoType, id: &str) -> Result<Self, HubError> {
        let segments: Vec<&str> = id.split('/').collect();
        let segment_ok = |s: &&str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if segments.len() > 2 || !segments.iter().all(segment_ok) || id.contains("..") {
            return Err(HubError::BadRepoId {
                id: id.to_string(),
                reason: "expected `org/name` of letters, digits, `-`, `_`, `.`".into(),
            });
        }
        Ok(Self {
            kind,
            id: id.to_string(),
        })
    }

    /// The cache folder name: `models--org--name` / `datasets--org--name`.
    pub fn cache_folder(&self) -> String {
        format!("{}--{}", self.kind.plural(), self.id.replace('/', "--"))
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.id)
    }
}

/// A repository at a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: RepoId,
    pub revision: String,
}

impl Repo {
    pub fn new(id: RepoId, revision: impl Into<String>) -> Self {
        Self {
            id,
            revision: revision.into(),
        }
    }
}

/// True for a full 40-hex-digit commit id.
pub fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// `hf:ORG/NAME[@REV]`: a model on the Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef(pub Repo);

impl ModelRef {
    /// Parses a model argument: `Ok(None)` when it does not start with `hf:`
    /// (a local path), an error when it does but is malformed.
    pub fn parse(arg: &str) -> Result<Option<Self>, HubError> {
        let Some(rest) = arg.strip_prefix(HF_PREFIX) else {
            return Ok(None);
        };
        let (id, revision) = match rest.split_once('@') {
            Some((id, rev)) if !rev.is_empty() => (id, rev),
            Some(_) => {
                return Err(HubError::BadRepoId {
                    id: arg.to_string(),
                    reason: "empty revision after `@`".into(),
                });
            }
            None => (rest, DEFAULT_REVISION),
        };
        let id = RepoId::new(RepoType::Model, id).map_err(|e| match e {
            HubError::BadRepoId { reason, .. } => HubError::BadRepoId {
                id: arg.to_string(),
                reason: format!("{reason} after `hf:` (then optionally `@REVISION`)"),
            },
            other => other,
        })?;
        Ok(Some(Self(Repo::new(id, revision))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_parse_with_and_without_revision() {
        let m = ModelRef::parse("hf:Qwen/Qwen3-8B").unwrap().unwrap();
        assert_eq!(m.0.id.id, "Qwen/Qwen3-8B");
        assert_eq!(m.0.revision, "main");
        let m = ModelRef::parse("hf:org/name@v1.0").unwrap().unwrap();
        assert_eq!(
            (m.0.id.id.as_str(), m.0.revision.as_str()),
            ("org/name", "v1.0")
        );
        assert_eq!(ModelRef::parse("models/x.gguf").unwrap(), None);
        for bad in ["hf:", "hf:a/b/c", "hf:a/../b", "hf:a/b@", "hf:a b/c"] {
            let err = ModelRef::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn cache_folder_follows_huggingface_hub() {
        let id = RepoId::new(RepoType::Dataset, "livecodebench/code_generation_lite").unwrap();
        assert_eq!(
            id.cache_folder(),
            "datasets--livecodebench--code_generation_lite"
        );
        assert!(is_commit(&"a".repeat(40)));
        assert!(!is_commit("main"));
    }
}
