//! [`HubCache`]: the on-disk layout Python's `huggingface_hub` uses, so files
//! downloaded by either are reused by the other.
//!
//! ```text
//! <cache>/<models|datasets>--<org>--<name>/
//!     blobs/<sha256 of LFS files | git blob id of small files>   (file bytes)
//!     blobs/<id>.incomplete                                      (a download in progress)
//!     refs/<branch or tag>                                       (text: the commit id)
//!     snapshots/<commit>/<path in repo>  →  ../../blobs/<id>     (relative symlink)
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::HubError;
use super::repo::{Repo, RepoId, is_commit};

/// A hub cache folder (`$HF_HUB_CACHE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    pub root: PathBuf,
}

/// Where a file of a repository was looked for in the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The snapshot file, when present.
    pub found: Option<PathBuf>,
    /// Every path looked at (a ref file, then snapshot files), in order.
    pub searched: Vec<PathBuf>,
    /// The commit the revision resolved to in the cache.
    pub commit: Option<String>,
}

impl HubCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `<cache>/<kind>--org--name`.
    pub fn repo_dir(&self, id: &RepoId) -> PathBuf {
        self.root.join(id.cache_folder())
    }

    /// `blobs/<blob>`.
    pub fn blob_path(&self, id: &RepoId, blob: &str) -> PathBuf {
        self.repo_dir(id).join("blobs").join(blob)
    }

    /// `snapshots/<commit>`.
    pub fn snapshot_dir(&self, id: &RepoId, commit: &str) -> PathBuf {
        self.repo_dir(id).join("snapshots").join(commit)
    }

    /// `refs/<revision>` (a revision may hold `/`, as `refs/pr/1` does).
    pub fn ref_path(&self, id: &RepoId, revision: &str) -> PathBuf {
        self.repo_dir(id).join("refs").join(revision)
    }

    /// The commit `repo.revision` names: itself when it is a commit id,
    /// else the content of its ref file; `None` when never fetched.
    pub fn resolve(&self, repo: &Repo) -> Option<String> {
        if is_commit(&repo.revision) {
            return Some(repo.revision.to_ascii_lowercase());
        }
        let text = std::fs::read_to_string(self.ref_path(&repo.id, &repo.revision)).ok()?;
        let commit = text.trim();
        is_commit(commit).then(|| commit.to_string())
    }

    /// Records that `revision` points at `commit` (no-op for a commit id).
    pub fn write_ref(&self, id: &RepoId, revision: &str, commit: &str) -> Result<(), HubError> {
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(id, revision);
        if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == commit) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(HubError::io(parent))?;
        }
        std::fs::write(&path, commit).map_err(HubError::io(&path))
    }

    /// `file` of `repo` in the cache, with every path looked at.
    pub fn lookup(&self, repo: &Repo, file: &str) -> Lookup {
        let mut lookup = Lookup::default();
        if !is_commit(&repo.revision) {
            lookup
                .searched
                .push(self.ref_path(&repo.id, &repo.revision));
        }
        if let Some(commit) = self.resolve(repo) {
            let path = self.snapshot_dir(&repo.id, &commit).join(file);
            lookup.searched.push(path.clone());
            if path.is_file() {
                lookup.found = Some(path);
            }
            lookup.commit = Some(commit);
        }
        lookup
    }

    /// Snapshot folders of a repository, newest first.
    pub fn snapshots(&self, id: &RepoId) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.repo_dir(id).join("snapshots")) else {
            return Vec::new();
        };
        let mut dirs: Vec<(SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let modified = p
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (modified, p)
            })
            .collect();
        dirs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        dirs.into_iter().map(|(_, p)| p).collect()
    }

    /// A snapshot folder holding every one of `files`: the one `repo.revision`
    /// resolves to first, then any other snapshot of the repository (newest
    /// first; e.g. one fetched with `--revision`). Also returns the paths
    /// looked at, for error messages.
    pub fn find_with_files(
        &self,
        repo: &Repo,
        files: &[String],
    ) -> (Option<PathBuf>, Vec<PathBuf>) {
        let mut searched = Vec::new();
        let mut candidates = Vec::new();
        if let Some(commit) = self.resolve(repo) {
            candidates.push(self.snapshot_dir(&repo.id, &commit));
        } else if !is_commit(&repo.revision) {
            searched.push(self.ref_path(&repo.id, &repo.revision));
        }
        for dir in self.snapshots(&repo.id) {
            if !candidates.contains(&dir) {
                candidates.push(dir);
            }
        }
        for dir in candidates {
            let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
            if paths.iter().all(|p| p.is_file()) {
                return (Some(dir), searched);
            }
            searched.extend(paths.into_iter().filter(|p| !p.is_file()));
        }
        (None, searched)
    }

    /// Puts blob `blob` at `snapshots/<commit>/<file>` as a relative symlink
    /// (a copy where symlinks are unavailable); returns the snapshot path.
    pub fn link(
        &self,
        id: &RepoId,
        commit: &str,
        file: &str,
        blob: &str,
    ) -> Result<PathBuf, HubError> {
        let target = self.snapshot_dir(id, commit).join(file);
        let parent = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(HubError::io(parent))?;
        if target.symlink_metadata().is_ok() {
            std::fs::remove_file(&target).map_err(HubError::io(&target))?;
        }
        // snapshots/<commit>/<a>/<b> → ../../../blobs/<blob>: one `..` per
        // folder below the repo folder.
        let depth = 2 + Path::new(file).components().count() - 1;
        let mut relative = PathBuf::new();
        for _ in 0..depth {
            relative.push("..");
        }
        relative.push("blobs");
        relative.push(blob);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&relative, &target).map_err(HubError::io(&target))?;
        #[cfg(not(unix))]
        std::fs::copy(self.blob_path(id, blob), &target).map_err(HubError::io(&target))?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::repo::RepoType;

    #[test]
    fn a_linked_blob_is_found_through_its_ref() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HubCache::new(dir.path());
        let id = RepoId::new(RepoType::Model, "org/m").unwrap();
        let commit = "c".repeat(40);
        let repo = Repo::new(id.clone(), "main");
        let missing = cache.lookup(&repo, "a/b.json");
        assert_eq!(missing.found, None);
        assert_eq!(
            missing.searched,
            [dir.path().join("models--org--m/refs/main")]
        );

        std::fs::create_dir_all(dir.path().join("models--org--m/blobs")).unwrap();
        std::fs::write(cache.blob_path(&id, "abc"), "{}").unwrap();
        let path = cache.link(&id, &commit, "a/b.json", "abc").unwrap();
        assert_eq!(
            std::fs::read_link(&path).unwrap(),
            PathBuf::from("../../../blobs/abc")
        );
        cache.write_ref(&id, "main", &commit).unwrap();
        let found = cache.lookup(&repo, "a/b.json");
        assert_eq!(found.found, Some(path.clone()));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "{}");
        let (snap, _) = cache.find_with_files(&Repo::new(id, "v2"), &["a/b.json".into()]);
        assert_eq!(
            snap,
            Some(dir.path().join("models--org--m/snapshots").join(&commit))
        );
    }
}
