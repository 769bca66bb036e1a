//! A loopback mock of the Hugging Face Hub for tests: a small HTTP/1.1
//! server (tokio, one request per connection) that speaks the two endpoints
//! the client uses — `GET /api/{models|datasets}/{id}/revision/{rev}` and
//! `HEAD|GET /{datasets/}{id}/resolve/{rev}/{path}` (with `Range`) — plus
//! injectable faults: a connection cut mid-file, 429, corrupted bytes, a
//! gated repository.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A file of a mock repository.
#[derive(Clone)]
pub struct MockFile {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Stored with LFS: listed with `lfs.sha256`, served with `X-Linked-Etag`.
    pub lfs: bool,
}

impl MockFile {
    pub fn new(name: &str, bytes: impl Into<Vec<u8>>, lfs: bool) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
            lfs,
        }
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }

    pub fn git_sha1(&self) -> String {
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", self.bytes.len()).as_bytes());
        h.update(&self.bytes);
        hex::encode(h.finalize())
    }

    /// The cache blob name the client must use.
    pub fn blob(&self) -> String {
        if self.lfs {
            self.sha256()
        } else {
            self.git_sha1()
        }
    }
}

/// A repository: commits with their files, and named revisions.
#[derive(Clone, Default)]
pub struct MockRepo {
    pub commits: BTreeMap<String, Vec<MockFile>>,
    pub refs: HashMap<String, String>,
    pub gated: bool,
    /// List files without `blobId`/`lfs`, so the client must HEAD them.
    pub bare_listing: bool,
}

/// Per-file faults, each applied to the first GET of the file only
/// (`corrupt`: always).
#[derive(Default)]
pub struct Faults {
    pub cut: HashSet<String>,
    pub too_many: HashSet<String>,
    pub corrupt: HashSet<String>,
}

#[derive(Default)]
pub struct State {
    /// Keyed by `models/org/name` or `datasets/org/name`.
    pub repos: HashMap<String, MockRepo>,
    pub faults: Faults,
    /// `METHOD path [range]` per request.
    pub log: Vec<String>,
    pub token: Option<String>,
    served: HashMap<String, u32>,
}

pub struct MockHub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl MockHub {
    /// Starts the server on a free loopback port (on its own thread).
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            token: Some("hf_mock_token".into()),
            ..State::default()
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, state).await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        Self { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a repository (`kind` is `models` or `datasets`).
    pub fn add_repo(&self, kind: &str, id: &str, repo: MockRepo) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(format!("{kind}/{id}"), repo);
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state.lock().unwrap().faults);
    }
}

/// A one-commit repository with `main` pointing at it.
pub fn repo_at(commit: &str, files: Vec<MockFile>) -> MockRepo {
    let mut repo = MockRepo::default();
    repo.commits.insert(commit.to_string(), files);
    repo.refs.insert("main".into(), commit.to_string());
    repo
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if send_body {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

fn error_headers(code: &str, message: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Error-Code", code.to_string()),
        ("X-Error-Message", message.to_string()),
    ]
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut stream).await else {
        return Ok(());
    };
    let range = req.headers.get("range").cloned();
    state.lock().unwrap().log.push(format!(
        "{} {}{}",
        req.method,
        req.path,
        range.as_ref().map(|r| format!(" {r}")).unwrap_or_default()
    ));
    let authorized = {
        let s = state.lock().unwrap();
        let want = s.token.as_ref().map(|t| format!("Bearer {t}"));
        want.is_some() && req.headers.get("authorization") == want.as_ref()
    };
    let (path, _query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();

    // GET /api/{kind}/{org}/{name}/revision/{rev}
    if segments.first().map(String::as_str) == Some("api")
        && segments.len() == 6
        && segments[4] == "revision"
    {
        let key = format!("{}/{}/{}", segments[1], segments[2], segments[3]);
        let repo = state.lock().unwrap().repos.get(&key).cloned();
        let Some(repo) = repo else {
            return respond(
                &mut stream,
                "404 Not Found",
                &error_headers("RepoNotFound", "Repository not found"),
                b"{}",
                true,
            )
            .await;
        };
        if repo.gated && !authorized {
            return respond(
                &mut stream,
                "401 Unauthorized",
                &error_headers("GatedRepo", "Access to this repository is restricted"),
                b"{}",
                true,
            )
            .await;
        }
        let rev = &segments[5];
        let Some(commit) = resolve_rev(&repo, rev) else {
            return respond(
                &mut stream,
                "404 Not Found",
                &error_headers("RevisionNotFound", "Invalid rev id"),
                b"{}",
                true,
            )
            .await;
        };
        let siblings: Vec<serde_json::Value> = repo.commits[&commit]
            .iter()
            .map(|f| {
                if repo.bare_listing {
                    serde_json::json!({"rfilename": f.name})
                } else if f.lfs {
                    serde_json::json!({"rfilename": f.name, "size": f.bytes.len(), "blobId": "0".repeat(40),
                        "lfs": {"sha256": f.sha256(), "size": f.bytes.len(), "pointerSize": 134}})
                } else {
                    serde_json::json!({"rfilename": f.name, "size": f.bytes.len(), "blobId": f.git_sha1()})
                }
            })
            .collect();
        let body = serde_json::json!({"id": key, "sha": commit, "siblings": siblings}).to_string();
        return respond(
            &mut stream,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
            true,
        )
        .await;
    }

    // {datasets/}{org}/{name}/resolve/{rev}/{path…}
    let (kind, rest) = if segments.first().map(String::as_str) == Some("datasets") {
        ("datasets", &segments[1..])
    } else {
        ("models", &segments[..])
    };
    if rest.len() >= 5 && rest[2] == "resolve" {
        let key = format!("{kind}/{}/{}", rest[0], rest[1]);
        let file_name = rest[4..].join("/");
        let repo = state.lock().unwrap().repos.get(&key).cloned();
        let Some(repo) = repo else {
            return respond(
                &mut stream,
                "404 Not Found",
                &error_headers("RepoNotFound", "Repository not found"),
                b"",
                true,
            )
            .await;
        };
        if repo.gated && !authorized {
            return respond(
                &mut stream,
                "401 Unauthorized",
                &error_headers("GatedRepo", "Access restricted"),
                b"",
                true,
            )
            .await;
        }
        let Some(commit) = resolve_rev(&repo, &rest[3]) else {
            return respond(
                &mut stream,
                "404 Not Found",
                &error_headers("RevisionNotFound", "Invalid rev id"),
                b"",
                true,
            )
            .await;
        };
        let Some(file) = repo.commits[&commit]
            .iter()
            .find(|f| f.name == file_name)
            .cloned()
        else {
            return respond(
                &mut stream,
                "404 Not Found",
                &error_headers("EntryNotFound", "Entry not found"),
                b"",
                true,
            )
            .await;
        };
        let mut headers = vec![("X-Repo-Commit", commit.clone())];
        if file.lfs {
            headers.push(("X-Linked-Etag", format!("\"{}\"", file.sha256())));
            headers.push(("X-Linked-Size", file.bytes.len().to_string()));
            headers.push(("ETag", format!("\"{}\"", "0".repeat(40))));
        } else {
            headers.push(("ETag", format!("\"{}\"", file.git_sha1())));
        }
        if req.method == "HEAD" {
            headers.push(("Content-Length", file.bytes.len().to_string()));
            return respond(&mut stream, "200 OK", &headers, b"", false).await;
        }
        let (first_get, corrupt, cut, too_many) = {
            let mut s = state.lock().unwrap();
            let n = s.served.entry(format!("{key}/{file_name}")).or_insert(0);
            *n += 1;
            let first = *n == 1;
            (
                first,
                s.faults.corrupt.contains(&file_name),
                s.faults.cut.contains(&file_name),
                s.faults.too_many.contains(&file_name),
            )
        };
        if too_many && first_get {
            let mut h = error_headers("TooManyRequests", "slow down");
            h.push(("Retry-After", "0".into()));
            return respond(&mut stream, "429 Too Many Requests", &h, b"", true).await;
        }
        let mut bytes = file.bytes.clone();
        if corrupt {
            bytes[0] ^= 0xff;
        }
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        let (status, body) = match start {
            Some(s) if s < bytes.len() => {
                headers.push((
                    "Content-Range",
                    format!("bytes {s}-{}/{}", bytes.len() - 1, bytes.len()),
                ));
                ("206 Partial Content", bytes[s..].to_vec())
            }
            Some(_) => {
                return respond(
                    &mut stream,
                    "416 Range Not Satisfiable",
                    &headers,
                    b"",
                    true,
                )
                .await;
            }
            None => ("200 OK", bytes),
        };
        if cut && first_get {
            // Promise the whole body, send half, hang up.
            headers.push(("Content-Length", body.len().to_string()));
            respond(&mut stream, status, &headers, &body[..body.len() / 2], true).await?;
            return stream.shutdown().await;
        }
        return respond(&mut stream, status, &headers, &body, true).await;
    }
    respond(&mut stream, "404 Not Found", &[], b"", true).await
}

fn resolve_rev(repo: &MockRepo, rev: &str) -> Option<String> {
    if repo.commits.contains_key(rev) {
        return Some(rev.to_string());
    }
    repo.refs.get(rev).cloned()
}
