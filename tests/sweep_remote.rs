//! `model.backend = "openai"` against a mock OpenAI-compatible server on
//! loopback (tokio): prompts are the local run's token ids, `n` = the
//! batch's samples, seeds follow the sample index, budgets are computed
//! from token counts; 429s and timeouts are retried with backoff, a server
//! that keeps failing gives error records without stopping the sweep, and
//! non-dense methods are config errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyperscale::device::DeviceKind;
use hyperscale::generate::FinishReason;
use hyperscale::record::{BudgetSource, SAMPLES_FILE, SampleRecord, read_records};
use hyperscale::runtime::LoadedModel;
use hyperscale::sweep::wiring::remote::dense_stats;
use hyperscale::sweep::wiring::{self, remote::RemoteGenerator};
use hyperscale::sweep::{ModelShape, ProgressMode, SweepOptions};
use hyperscale::task::{LoadOptions, SampleCtx, cli as task_cli};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama")
}

/// What the mock answers: status, body, delay.
type Reply = (u16, String, Duration);
type Script = dyn Fn(&Value, usize) -> Reply + Send + Sync;

/// A loopback server speaking just enough HTTP/1.1; logs each request body.
struct Mock {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Mock {
    fn start(script: Arc<Script>) -> Mock {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    let (script, log) = (script.clone(), log2.clone());
                    tokio::spawn(async move {
                        let Some(body) = read_request(&mut sock).await else {
                            return;
                        };
                        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let nth = {
                            let mut log = log.lock().unwrap();
                            log.push(value.clone());
                            log.iter().filter(|v| same_request(v, &value)).count()
                        };
                        let (status, text, delay) = script(&value, nth);
                        tokio::time::sleep(delay).await;
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n",
                            text.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(text.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    });
                }
            });
        });
        Mock {
            addr: rx.recv().unwrap(),
            log,
        }
    }

    fn requests(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }
}

/// The same request (prompt, n, seed) sent again: a retry.
fn same_request(a: &Value, b: &Value) -> bool {
    a["prompt"] == b["prompt"] && a["seed"] == b["seed"] && a["n"] == b["n"]
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
    }
}

/// A successful answer: choice `i` says a number derived from `seed + i`.
fn answer(req: &Value) -> Reply {
    let n = req["n"].as_u64().unwrap_or(1);
    let seed = req["seed"].as_u64().unwrap_or(0);
    let choices: Vec<Value> = (0..n)
        .map(|i| {
            let s = seed + i;
            let long = s.is_multiple_of(3);
            json!({
                "index": i,
                "text": format!("the answer is {}", s % 17),
                "finish_reason": if long { "length" } else { "stop" },
                "stop_reason": null,
            })
        })
        .collect();
    (
        200,
        json!({"id": "x", "object": "text_completion", "choices": choices}).to_string(),
        Duration::ZERO,
    )
}

fn config(addr: SocketAddr, widths: &str, extra_model: &str, methods: &str) -> String {
    format!(
        r#"[run]
name = "remote"

[model]
path = "{}"
backend = "openai"
base_url = "http://{addr}/v1"
model = "served-tiny"
backoff_seconds = 0.01
{extra_model}

[[tasks]]
name = "arith"
limit = 2

[sampling]
temperature = 0.7
seeds = [9]

[grid]
widths = {widths}
lengths = [16]

[[grid.methods]]
policy = "dense"
{methods}"#,
        model_dir().display()
    )
}

/// Run the sweep of `text` in a temp dir; its records by sample id.
fn sweep(
    text: &str,
) -> (
    tempfile::TempDir,
    Result<BTreeMap<String, SampleRecord>, String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("remote.toml");
    std::fs::write(&cfg, text).unwrap();
    let options = SweepOptions {
        results_dir: Some(dir.path().join("results")),
        progress: ProgressMode::Hidden,
        grade_workers: Some(1),
        git_revision: Some("test".into()),
        ..SweepOptions::default()
    };
    let result = wiring::run(&cfg, &options)
        .map_err(|e| e.to_string())
        .map(|_| {
            read_records(&dir.path().join("results/remote").join(SAMPLES_FILE))
                .unwrap()
                .into_iter()
                .map(|r| (r.sample_id.clone(), r))
                .collect()
        });
    (dir, result)
}

/// The tiny model's attention shape, from its config.json.
fn shape() -> ModelShape {
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir().join("config.json")).unwrap())
            .unwrap();
    let layers = c["num_hidden_layers"].as_u64().unwrap() as usize;
    let heads = c["num_attention_heads"].as_u64().unwrap() as usize;
    ModelShape {
        layers,
        kv_heads: c["num_key_value_heads"].as_u64().unwrap() as usize,
        head_dim: c["head_dim"]
            .as_u64()
            .map_or(c["hidden_size"].as_u64().unwrap() as usize / heads, |d| {
                d as usize
            }),
    }
}

#[test]
fn prompts_seeds_samples_and_computed_budgets() {
    let mock = Mock::start(Arc::new(|req, _| answer(req)));
    let (_dir, records) = sweep(&config(mock.addr, "[1, 2]", "", ""));
    let records = records.unwrap();
    // 2 problems × (1 + 2) samples.
    assert_eq!(records.len(), 6);
    let requests = mock.requests();
    assert_eq!(requests.len(), 4, "one request per W-batch");

    // The prompts are the ids a local run of the same model renders.
    let model = LoadedModel::load(&model_dir(), DeviceKind::Cpu).unwrap();
    let task = task_cli::resolve("arith").unwrap();
    let problems = task
        .load_problems(&LoadOptions::from_env())
        .unwrap()
        .problems;
    for (i, p) in problems.iter().take(2).enumerate() {
        let user = task
            .render(p, SampleCtx { repeat: 0 })
            .unwrap()
            .user_message;
        let ids = model.prompt_ids(&user, None, false).unwrap();
        let want: Vec<Value> = ids.iter().map(|&t| json!(t)).collect();
        let sent: Vec<&Value> = requests
            .iter()
            .filter(|r| r["prompt"].as_array() == Some(&want))
            .collect();
        assert_eq!(
            sent.len(),
            2,
            "problem {i}: W = 1 and W = 2 send the local prompt"
        );
        let mut n: Vec<u64> = sent.iter().map(|r| r["n"].as_u64().unwrap()).collect();
        n.sort_unstable();
        assert_eq!(n, [1, 2]);
        // Sample 0 gets the same seed in both batches.
        let base = RemoteGenerator::base_seed(9, 0);
        assert!(sent.iter().all(|r| r["seed"] == json!(base)));
        for r in &sent {
            assert_eq!(
                (r["max_tokens"].clone(), r["model"].clone()),
                (json!(16), json!("served-tiny"))
            );
            assert!(r.get("logprobs").is_none());
            assert!((r["temperature"].as_f64().unwrap() - 0.7).abs() < 1e-6);
        }
    }

    let shape = shape();
    for r in records.values() {
        assert_eq!(r.budget_source, BudgetSource::Computed);
        assert_eq!(r.policy, "dense");
        let text = r.text.as_deref().unwrap();
        let seed = RemoteGenerator::base_seed(9, 0) + u64::from(r.sample);
        assert_eq!(text, format!("the answer is {}", seed % 17));
        let body = model.tokenizer.encode(text, false).unwrap().len() as u64;
        let (finish, g) = if seed.is_multiple_of(3) {
            (FinishReason::Length, body)
        } else {
            (FinishReason::Eos, body + 1)
        };
        assert_eq!(
            (r.finish_reason, r.generated_tokens),
            (finish, g),
            "{}",
            r.sample_id
        );
        let want = dense_stats(shape, r.prompt_tokens, g, 4);
        assert_eq!(
            (r.kv_reads, r.prefill_reads, r.peak_resident, r.peak_bytes),
            (
                want.decode_reads,
                want.prefill_reads,
                want.peak_resident,
                want.peak_bytes
            )
        );
        assert_eq!(r.kv_rows, (shape.layers * shape.kv_heads) as u64);
        assert_eq!(
            r.cr_achieved.map(|c| (c * 1e9).round() / 1e9),
            (g > 1).then_some(1.0)
        );
    }
}

#[test]
fn a_batch_wider_than_max_n_is_split_with_consecutive_seeds() {
    let mock = Mock::start(Arc::new(|req, _| answer(req)));
    let (_dir, records) = sweep(&config(mock.addr, "[5]", "max_n = 2\nconcurrency = 2", ""));
    assert_eq!(records.unwrap().len(), 2 * 5);
    let base = RemoteGenerator::base_seed(9, 0);
    let mut per_prompt: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for r in mock.requests() {
        per_prompt
            .entry(r["prompt"].to_string())
            .or_default()
            .push((r["seed"].as_u64().unwrap() - base, r["n"].as_u64().unwrap()));
    }
    for (_, mut v) in per_prompt {
        v.sort_unstable();
        assert_eq!(v, [(0, 2), (2, 2), (4, 1)]);
    }
}

#[test]
fn a_429_is_retried_and_the_retry_succeeds() {
    let mock = Mock::start(Arc::new(|req, nth| {
        if nth == 1 {
            (429, r#"{"error":"slow down"}"#.into(), Duration::ZERO)
        } else {
            answer(req)
        }
    }));
    let (_dir, records) = sweep(&config(mock.addr, "[1, 2]", "", ""));
    let records = records.unwrap();
    assert_eq!(records.len(), 6);
    assert!(
        records
            .values()
            .all(|r| r.finish_reason != FinishReason::Error)
    );
    assert_eq!(mock.requests().len(), 8, "every request sent twice");
}

/// The arith problem whose prompt is sent first fails; which one it is
/// does not matter.
fn fails_for_the_first_prompt(status: u16, delay: Duration) -> Arc<Script> {
    let first: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    Arc::new(move |req, _| {
        let mut f = first.lock().unwrap();
        let bad = f.get_or_insert_with(|| req["prompt"].clone());
        if *bad == req["prompt"] {
            (status, r#"{"error":"boom"}"#.into(), delay)
        } else {
            answer(req)
        }
    })
}

#[test]
fn exhausted_retries_give_error_records_and_the_sweep_goes_on() {
    let mock = Mock::start(fails_for_the_first_prompt(500, Duration::ZERO));
    let (_dir, records) = sweep(&config(mock.addr, "[1, 2]", "retries = 2", ""));
    let records = records.unwrap();
    assert_eq!(records.len(), 6);
    let errors: Vec<&SampleRecord> = records
        .values()
        .filter(|r| r.finish_reason == FinishReason::Error)
        .collect();
    assert_eq!(errors.len(), 3, "W = 1 and W = 2 of one problem");
    assert!(
        errors
            .iter()
            .all(|r| r.generated_tokens == 0 && !r.is_correct)
    );
    let problems: std::collections::BTreeSet<&str> =
        errors.iter().map(|r| r.problem_id.as_str()).collect();
    assert_eq!(problems.len(), 1);
    // 2 failing requests × 3 attempts + 2 good ones.
    assert_eq!(mock.requests().len(), 2 * 3 + 2);
    // The report leaves the error records out of accuracy and counts them.
    #[cfg(feature = "report")]
    {
        use hyperscale::report::{BootstrapConfig, build_report, load_run};
        let run = load_run(&_dir.path().join("results/remote")).unwrap();
        let report = build_report(&run, &BootstrapConfig::default()).unwrap();
        assert_eq!(report.info.generation_errors, 3);
        let points = &report.analysis.points;
        assert_eq!(points.iter().map(|p| p.generation_errors).sum::<u32>(), 3);
        assert!(points.iter().all(|p| p.problems == 1), "{points:?}");
    }
}

#[test]
fn a_slow_server_times_out_and_is_retried() {
    let mock = Mock::start(fails_for_the_first_prompt(200, Duration::from_secs(5)));
    let (_dir, records) = sweep(&config(
        mock.addr,
        "[1]",
        "retries = 1\ntimeout_seconds = 0.2",
        "",
    ));
    let records = records.unwrap();
    assert_eq!(records.len(), 2);
    let errors = records
        .values()
        .filter(|r| r.finish_reason == FinishReason::Error)
        .count();
    assert_eq!(errors, 1);
    assert_eq!(
        mock.requests().len(),
        2 + 1,
        "the slow request twice, the other once"
    );
}

#[test]
fn only_dense_runs_remotely_and_remote_keys_need_the_backend() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let tova = "\n[[grid.methods]]\npolicy = \"tova\"\ncr = [2]\n";
    let (_dir, r) = sweep(&config(addr, "[1]", "", tova));
    let e = r.unwrap_err();
    assert!(
        e.contains("grid.methods[1].policy") && e.contains("dense"),
        "{e}"
    );

    let local = config(addr, "[1]", "", "").replace("backend = \"openai\"\n", "");
    let (_dir, r) = sweep(&local);
    let e = r.unwrap_err();
    assert!(e.contains("model.base_url") && e.contains("openai"), "{e}");
}

/// A correct program for LiveCodeBench 3519 (`winningPlayerCount`).
const PROGRAM_3519: &str = "class Solution:\n    def winningPlayerCount(self, n, pick):\n        counts = {}\n        for x, y in pick:\n            counts[(x, y)] = counts.get((x, y), 0) + 1\n        return len({x for (x, y), c in counts.items() if c > x})";

/// Defect: LiveCodeBench accuracy was always 0 in sweep reports (a code
/// verdict carried no answer and no vote key, so maj@W voted over nothing,
/// and every code sample counted as `no_answer`). A server that always
/// answers one correct program now reports, for that problem, pass@1 =
/// maj@1 = 100% and no_answer = 0 (and maj@2 = 100%: identical programs).
#[cfg(feature = "report")]
#[test]
fn livecodebench_accuracy_is_not_zero_for_a_correct_program() {
    use hyperscale::grade::Outcome;
    use hyperscale::report::{BootstrapConfig, build_report, load_run};
    let mock = Mock::start(Arc::new(|req, _| {
        let n = req["n"].as_u64().unwrap_or(1);
        let text =
            format!("I count each player's picks.\n</think>\n\n```python\n{PROGRAM_3519}\n```\n");
        let choices: Vec<Value> = (0..n)
            .map(
                |i| json!({"index": i, "text": text, "finish_reason": "stop", "stop_reason": null}),
            )
            .collect();
        (
            200,
            json!({"id": "x", "object": "text_completion", "choices": choices}).to_string(),
            Duration::ZERO,
        )
    }));
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/livecodebench/lcb_v5_2408_2501_derived_public_only.jsonl");
    let text = config(mock.addr, "[1, 2]", "", "").replace(
        "name = \"arith\"\nlimit = 2",
        &format!(
            "name = \"livecodebench\"\ndata = \"{}\"\nproblems = [\"3519\"]",
            data.display()
        ),
    );
    assert!(text.contains("livecodebench"), "{text}");
    let (dir, records) = sweep(&text);
    let records = records.unwrap();
    assert_eq!(records.len(), 1 + 2);
    for r in records.values() {
        assert_eq!(r.outcome, Some(Outcome::Correct), "{r:?}");
        assert_eq!((r.verdict.as_str(), r.is_correct), ("correct", true));
        assert!(
            r.extracted_answer
                .as_deref()
                .unwrap()
                .starts_with("sha256:")
        );
    }
    let run = load_run(&dir.path().join("results/remote")).unwrap();
    let report = build_report(&run, &BootstrapConfig::default()).unwrap();
    let points = &report.analysis.points;
    assert_eq!(points.len(), 2);
    for p in points {
        assert_eq!(p.key.task, "livecodebench");
        assert_eq!(
            (p.pass_at_1, p.accuracy, p.pass_at_w, p.no_answer_rate),
            (1.0, 1.0, 1.0, 0.0),
            "W = {}",
            p.key.width
        );
    }
    assert!(points.iter().any(|p| p.key.width == 1));
}
