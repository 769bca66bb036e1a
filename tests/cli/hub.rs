//! The Hub client against a loopback mock Hub (tests/cli/hub_mock): listing,
//! download and the huggingface_hub cache layout, resume after a cut
//! connection, hash mismatch, 429 retry, offline errors, revision
//! resolution and gated repositories. No network.

use std::path::{Path, PathBuf};

use crate::hub_mock::{MockFile, MockHub, MockRepo, repo_at};
use hyperscale::hub::{
    HubClient, HubConfig, HubError, Repo, RepoId, RepoType, RetryPolicy, block_on,
};

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

fn client(hub: &MockHub, cache: &Path) -> HubClient {
    let mut config = HubConfig::new(hub.endpoint(), cache);
    config.retry = RetryPolicy::immediate(4);
    HubClient::new(config).unwrap()
}

fn dataset(id: &str, rev: &str) -> Repo {
    Repo::new(RepoId::new(RepoType::Dataset, id).unwrap(), rev)
}

fn fetch(client: &HubClient, repo: &Repo, files: &[&str]) -> Result<Vec<PathBuf>, HubError> {
    let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    block_on(async {
        let resolved = client.resolve(repo).await?;
        client.files(&resolved, &files).await
    })
}

/// Deterministic bytes of `n` length (not all equal, so a corrupted or
/// misplaced range shows).
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn gets(hub: &MockHub, file: &str) -> Vec<String> {
    hub.log()
        .into_iter()
        .filter(|l| {
            l.starts_with("GET ") && l.contains(&"/resolve/".to_string()) && l.contains(file)
        })
        .collect()
}

#[test]
fn listing_download_and_cache_layout_match_huggingface_hub() {
    let hub = MockHub::start();
    let big = MockFile::new("data/test.jsonl", payload(200_000, 7), true);
    let small = MockFile::new("README.md", "# card\n", false);
    hub.add_repo(
        "datasets",
        "org/d",
        repo_at(C1, vec![big.clone(), small.clone()]),
    );
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let paths = fetch(
        &client,
        &dataset("org/d", "main"),
        &["data/test.jsonl", "README.md"],
    )
    .unwrap();

    let repo_dir = cache.path().join("datasets--org--d");
    let snapshot = repo_dir.join("snapshots").join(C1);
    assert_eq!(
        paths,
        [snapshot.join("data/test.jsonl"), snapshot.join("README.md")]
    );
    assert_eq!(std::fs::read(&paths[0]).unwrap(), big.bytes);
    assert_eq!(std::fs::read(&paths[1]).unwrap(), small.bytes);
    // Relative links into blobs/, named by sha256 (LFS) or git blob id.
    assert_eq!(
        std::fs::read_link(&paths[0]).unwrap(),
        Path::new("../../../blobs").join(big.sha256())
    );
    assert_eq!(
        std::fs::read_link(&paths[1]).unwrap(),
        Path::new("../../blobs").join(small.git_sha1())
    );
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        C1
    );
    let leftovers: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".incomplete"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Offline, the same files come from the cache without a request.
    let requests = hub.log().len();
    let mut offline = client.config().clone();
    offline.offline = true;
    let offline = HubClient::new(offline).unwrap();
    let again = fetch(
        &offline,
        &dataset("org/d", "main"),
        &["data/test.jsonl", "README.md"],
    )
    .unwrap();
    assert_eq!(again, paths);
    assert_eq!(hub.log().len(), requests);
    // Online again: the listing is asked for, no file is downloaded twice.
    fetch(&client, &dataset("org/d", "main"), &["data/test.jsonl"]).unwrap();
    assert_eq!(gets(&hub, "test.jsonl").len(), 1, "{:?}", hub.log());
}

#[test]
fn a_python_populated_cache_is_reused() {
    // Lay out the cache as huggingface_hub would, then ask offline.
    let cache = tempfile::tempdir().unwrap();
    let repo_dir = cache.path().join("models--org--m");
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("snapshots").join(C2)).unwrap();
    std::fs::write(repo_dir.join("blobs/abc"), "{}").unwrap();
    std::fs::write(repo_dir.join("refs/main"), C2).unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/abc",
        repo_dir.join("snapshots").join(C2).join("config.json"),
    )
    .unwrap();
    let mut config = HubConfig::new("http://127.0.0.1:9", cache.path());
    config.offline = true;
    let client = HubClient::new(config).unwrap();
    let repo = Repo::new(RepoId::new(RepoType::Model, "org/m").unwrap(), "main");
    let paths = block_on(async {
        let r = client.resolve(&repo).await?;
        client.file(&r, "config.json").await
    })
    .unwrap();
    assert_eq!(std::fs::read_to_string(paths).unwrap(), "{}");
}

#[test]
fn a_cut_connection_resumes_with_a_range_request() {
    let hub = MockHub::start();
    let file = MockFile::new("test5.jsonl", payload(300_001, 3), true);
    hub.add_repo("datasets", "org/d", repo_at(C1, vec![file.clone()]));
    hub.faults(|f| {
        f.cut.insert("test5.jsonl".into());
    });
    let cache = tempfile::tempdir().unwrap();
    let paths = fetch(
        &client(&hub, cache.path()),
        &dataset("org/d", "main"),
        &["test5.jsonl"],
    )
    .unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), file.bytes);
    let gets = gets(&hub, "test5.jsonl");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(!gets[0].contains("bytes="), "{gets:?}");
    // The second request asks only for what the first did not deliver.
    let from: usize = gets[1]
        .split("bytes=")
        .nth(1)
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or_else(|| panic!("no range in {gets:?}"));
    assert!(from > 0 && from < file.bytes.len(), "{from}");
}

#[test]
fn a_sha256_mismatch_is_rejected_and_nothing_is_promoted() {
    let hub = MockHub::start();
    let file = MockFile::new("w.safetensors", payload(5000, 1), true);
    hub.add_repo("models", "org/m", repo_at(C1, vec![file.clone()]));
    hub.faults(|f| {
        f.corrupt.insert("w.safetensors".into());
    });
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let repo = Repo::new(RepoId::new(RepoType::Model, "org/m").unwrap(), "main");
    let err = block_on(async {
        let r = client.resolve(&repo).await?;
        client.file(&r, "w.safetensors").await
    })
    .unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("w.safetensors") && msg.contains(&file.sha256()),
        "{msg}"
    );
    let repo_dir = cache.path().join("models--org--m");
    assert!(!repo_dir.join("blobs").join(file.sha256()).exists());
    assert!(
        !repo_dir
            .join(format!("blobs/{}.incomplete", file.sha256()))
            .exists()
    );
    assert!(
        !repo_dir
            .join("snapshots")
            .join(C1)
            .join("w.safetensors")
            .exists()
    );
}

#[test]
fn a_small_file_with_a_wrong_git_blob_id_is_rejected() {
    let hub = MockHub::start();
    hub.add_repo(
        "models",
        "org/m",
        repo_at(C1, vec![MockFile::new("config.json", "{\"a\": 1}", false)]),
    );
    hub.faults(|f| {
        f.corrupt.insert("config.json".into());
    });
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let repo = Repo::new(RepoId::new(RepoType::Model, "org/m").unwrap(), "main");
    let err = block_on(async {
        let r = client.resolve(&repo).await?;
        client.file(&r, "config.json").await
    })
    .unwrap_err();
    assert!(err.to_string().contains("git blob sha1 mismatch"), "{err}");
}

#[test]
fn too_many_requests_is_retried() {
    let hub = MockHub::start();
    let file = MockFile::new("a.jsonl", payload(1000, 2), true);
    hub.add_repo("datasets", "org/d", repo_at(C1, vec![file.clone()]));
    hub.faults(|f| {
        f.too_many.insert("a.jsonl".into());
    });
    let cache = tempfile::tempdir().unwrap();
    let paths = fetch(
        &client(&hub, cache.path()),
        &dataset("org/d", "main"),
        &["a.jsonl"],
    )
    .unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), file.bytes);
    assert_eq!(gets(&hub, "a.jsonl").len(), 2);

    // With retries off, the 429 is the error.
    let hub = MockHub::start();
    hub.add_repo("datasets", "org/d", repo_at(C1, vec![file]));
    hub.faults(|f| {
        f.too_many.insert("a.jsonl".into());
    });
    let cache = tempfile::tempdir().unwrap();
    let mut config = HubConfig::new(hub.endpoint(), cache.path());
    config.retry = RetryPolicy::immediate(1);
    let err = fetch(
        &HubClient::new(config).unwrap(),
        &dataset("org/d", "main"),
        &["a.jsonl"],
    )
    .unwrap_err();
    assert!(err.to_string().contains("HTTP 429"), "{err}");
}

#[test]
fn offline_errors_name_the_file_and_every_place_looked() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HubConfig::new("http://127.0.0.1:9", cache.path());
    config.offline = true;
    let err = fetch(
        &HubClient::new(config).unwrap(),
        &dataset("org/d", "main"),
        &["test.jsonl"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`test.jsonl`") && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
    assert!(
        msg.contains(
            &cache
                .path()
                .join("datasets--org--d/refs/main")
                .display()
                .to_string()
        ),
        "{msg}"
    );

    // A Hub that cannot be reached: the same, with the URL tried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub_url = format!("http://127.0.0.1:{port}");
    // refs/main known, snapshot file missing: the snapshot path is named too.
    let refs = cache.path().join("datasets--org--d/refs");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("main"), C1).unwrap();
    let mut config = HubConfig::new(&hub_url, cache.path());
    config.retry = RetryPolicy::immediate(2);
    let err = fetch(
        &HubClient::new(config).unwrap(),
        &dataset("org/d", "main"),
        &["test.jsonl"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::NotCached { .. }), "{msg}");
    assert!(msg.contains(&hub_url), "{msg}");
    let snapshot = cache
        .path()
        .join("datasets--org--d/snapshots")
        .join(C1)
        .join("test.jsonl");
    assert!(msg.contains(&snapshot.display().to_string()), "{msg}");
}

#[test]
fn revisions_resolve_to_commits() {
    let hub = MockHub::start();
    let mut repo = MockRepo::default();
    repo.commits
        .insert(C1.into(), vec![MockFile::new("f.txt", "one", false)]);
    repo.commits
        .insert(C2.into(), vec![MockFile::new("f.txt", "two", false)]);
    repo.refs.insert("main".into(), C1.into());
    repo.refs.insert("v2".into(), C2.into());
    hub.add_repo("datasets", "org/d", repo);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());

    let main = fetch(&client, &dataset("org/d", "main"), &["f.txt"]).unwrap();
    let tag = fetch(&client, &dataset("org/d", "v2"), &["f.txt"]).unwrap();
    let commit = fetch(&client, &dataset("org/d", C1), &["f.txt"]).unwrap();
    assert_eq!(std::fs::read_to_string(&main[0]).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(&tag[0]).unwrap(), "two");
    assert_eq!(commit, main);
    let refs = cache.path().join("datasets--org--d/refs");
    assert_eq!(std::fs::read_to_string(refs.join("v2")).unwrap(), C2);
    assert!(!refs.join(C1).exists(), "a commit id writes no ref");

    let err = fetch(&client, &dataset("org/d", "nope"), &["f.txt"]).unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("`nope`"), "{err}");
    let err = fetch(&client, &dataset("org/d", "main"), &["g.txt"]).unwrap_err();
    assert!(err.to_string().contains("no file `g.txt`"), "{err}");
    let err = fetch(&client, &dataset("org/none", "main"), &["f.txt"]).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn gated_repos_ask_for_hf_token() {
    let hub = MockHub::start();
    let mut repo = repo_at(
        C1,
        vec![MockFile::new("gpqa_diamond.csv", "a,b\n1,2\n", true)],
    );
    repo.gated = true;
    hub.add_repo("datasets", "org/gated", repo);
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(
        &client(&hub, cache.path()),
        &dataset("org/gated", "main"),
        &["gpqa_diamond.csv"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Gated { status: 401, .. }), "{msg}");
    assert!(
        msg.contains("HF_TOKEN") && msg.contains("org/gated"),
        "{msg}"
    );

    let mut config = client(&hub, cache.path()).config().clone();
    config.token = Some("hf_mock_token".into());
    let paths = fetch(
        &HubClient::new(config).unwrap(),
        &dataset("org/gated", "main"),
        &["gpqa_diamond.csv"],
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&paths[0]).unwrap(), "a,b\n1,2\n");
}

#[test]
fn without_blob_ids_the_linked_etag_header_names_the_blob() {
    let hub = MockHub::start();
    let big = MockFile::new("w.safetensors", payload(4096, 9), true);
    let small = MockFile::new("config.json", "{}", false);
    let mut repo = repo_at(C1, vec![big.clone(), small.clone()]);
    repo.bare_listing = true;
    hub.add_repo("models", "org/m", repo);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let repo = Repo::new(RepoId::new(RepoType::Model, "org/m").unwrap(), "main");
    let paths = fetch(&client, &repo, &["w.safetensors", "config.json"]).unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), big.bytes);
    let blobs = cache.path().join("models--org--m/blobs");
    assert!(blobs.join(big.sha256()).is_file());
    assert!(blobs.join(small.git_sha1()).is_file());
    assert!(
        hub.log().iter().any(|l| l.starts_with("HEAD ")),
        "{:?}",
        hub.log()
    );
}
