//! Continuous batching in the sweep: a sample is a function of (model,
//! policy, prompt, sampling, sample index) only, so a run's records are the
//! same, field for field except timings, whatever `--max-sequences` is
//! (real binary, tiny Llama fixture, arith, every training-free policy
//! that evicts inside a step included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hyperscale::record::{SAMPLES_FILE, SampleRecord, read_records};

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama")
}

/// Arith on the tiny model: 4 problems, W ∈ {1, 2, 3} (not nested: each W
/// its own batch), two repeats, two seeds, two token limits, dense and
/// three evicting policies.
fn config(engine: &str) -> String {
    format!(
        r#"[run]
name = "batching"

[model]
path = "{}"

[[tasks]]
name = "arith"
limit = 4

[sampling]
temperature = 0.8
top_p = 0.95
seeds = [3, 4]

[grid]
cr = [2]
widths = [1, 2, 3]
lengths = [12, 30]
repeats = 2

[[grid.methods]]
policy = "dense"
[[grid.methods]]
policy = "window"
sink = 2
min_tokens = 4
[[grid.methods]]
policy = "tova"
min_tokens = 4
[[grid.methods]]
policy = "h2o"
recent = 2
min_tokens = 4
{engine}"#,
        model().display()
    )
}

fn sweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .current_dir(dir)
        .args(["sweep", "sweep.toml", "--progress", "none"])
        .args(args)
        .output()
        .expect("run hyperscale")
}

/// The records of a fresh run with `args`, keyed by sample id, timings
/// zeroed and occupancy cleared ([`SampleRecord::deterministic`]).
fn records(engine: &str, args: &[&str]) -> BTreeMap<String, SampleRecord> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), config(engine)).expect("config");
    let out = sweep(dir.path(), args);
    assert!(
        out.status.success(),
        "sweep {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("results/batching").join(SAMPLES_FILE);
    let mut by_id = BTreeMap::new();
    for r in read_records(&path).expect("records") {
        assert!(r.occupancy.is_some_and(|o| o >= 0.0), "{r:?}");
        let r = r.deterministic();
        let id = r.sample_id.clone();
        assert!(by_id.insert(id.clone(), r).is_none(), "duplicate `{id}`");
    }
    by_id
}

#[test]
fn records_do_not_depend_on_max_sequences() {
    let one = records("", &["--max-sequences", "1"]);
    // 4 problems × 2 repeats × 2 seeds × 2 L × 4 methods × (1 + 2 + 3).
    assert_eq!(one.len(), 4 * 2 * 2 * 2 * 4 * 6);
    // Format 4: every record names the element its K/V were stored in.
    assert!(one.values().all(|r| r.kv_dtype.as_deref() == Some("f32")));
    assert!(
        one.values()
            .any(|r| r.policy == "h2o" && r.peak_resident_batch > 0),
        "h2o recorded its batch peak"
    );
    for max in ["3", "64"] {
        let got = records("", &["--max-sequences", max]);
        assert_eq!(got.len(), one.len(), "--max-sequences {max}");
        for (id, r) in &one {
            assert_eq!(got.get(id), Some(r), "--max-sequences {max}: `{id}`");
        }
    }
    // The config's key says the same as the flag.
    assert_eq!(records("[engine]\nmax_sequences = 5\n", &[]), one);
    // KV memory so tight that a request or two fit at a time (a tiny-llama
    // request's dense bound is a few kB), or none beside another.
    for memory in ["6kB", "1B"] {
        let got = records("", &["--kv-memory", memory, "--max-sequences", "64"]);
        assert_eq!(got, one, "--kv-memory {memory}");
    }
    assert_eq!(records("[engine]\nkv_memory = \"20KiB\"\n", &[]), one);
}

#[test]
fn bad_kv_memory_is_refused_naming_the_key_or_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), config("")).expect("config");
    let out = sweep(dir.path(), &["--kv-memory", "lots", "--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kv-memory"), "{err}");

    std::fs::write(
        dir.path().join("sweep.toml"),
        config("[engine]\nkv_memory = \"0\"\n"),
    )
    .expect("config");
    let out = sweep(dir.path(), &["--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("engine.kv_memory"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The dry run prints the admission plan.
    std::fs::write(
        dir.path().join("sweep.toml"),
        config("[engine]\nkv_memory = \"2GiB\"\nmax_sequences = 7\n"),
    )
    .expect("config");
    let out = sweep(dir.path(), &["--dry-run"]);
    assert!(out.status.success());
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("up to 7 sequences"), "{plan}");
    assert!(plan.contains("KV memory 2.000 GiB"), "{plan}");
}

#[test]
fn max_sequences_zero_is_refused_naming_the_key_or_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), config("")).expect("config");
    let out = sweep(dir.path(), &["--max-sequences", "0", "--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-sequences"), "{err}");

    std::fs::write(
        dir.path().join("sweep.toml"),
        config("[engine]\nmax_sequences = 0\n"),
    )
    .expect("config");
    let out = sweep(dir.path(), &["--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("engine.max_sequences"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// DMS on the tiny Qwen3 checkpoint: arith, W 1–3, one L.
fn dms_config() -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    format!(
        r#"[run]
name = "batching"

[model]
path = "{}"

[[model.dms]]
cr = 2
path = "{}"

[[tasks]]
name = "arith"
limit = 6

[sampling]
temperature = 0.8
top_p = 0.95
seeds = [3]

[grid]
widths = [1, 2, 3]
lengths = [40]

[[grid.methods]]
policy = "dms"
"#,
        fixtures.join("tiny-qwen3").display(),
        fixtures.join("tiny-qwen3-dms-adapter").display()
    )
}

/// The records of a fresh DMS run with `args`, deterministic fields only,
/// and the preemptions the sweep reported.
fn dms_records(args: &[&str]) -> (BTreeMap<String, SampleRecord>, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), dms_config()).expect("config");
    let out = sweep(dir.path(), args);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sweep {args:?} failed: {log}");
    let preemptions = log
        .lines()
        .filter_map(|l| {
            l.split(" preemption(s)")
                .next()
                .filter(|_| l.contains(" preemption(s)"))
        })
        .filter_map(|head| head.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let path = dir.path().join("results/batching").join(SAMPLES_FILE);
    let by_id = read_records(&path)
        .expect("records")
        .into_iter()
        .map(|r| {
            let r = r.deterministic();
            (r.sample_id.clone(), r)
        })
        .collect();
    (by_id, preemptions)
}

/// DMS is admitted at a guess (1 / CR, then its measured keep rate); a KV
/// memory of one to four times the largest request's own peak lets a few
/// requests run together at guesses that keep failing, so requests are
/// preempted (their KV dropped, restarted from scratch), and every record
/// is identical, field for field except timings and occupancy, to the run
/// one request at a time (a restart that kept any stale KV would change
/// its tokens, reads or peaks). A budget below one request's peak (the
/// tiny Qwen3's arith prompt is 75 tokens: 71–163 kB per request here)
/// never preempts: only one request fits at a time, and the oldest request
/// in flight is never preempted.
#[test]
fn dms_preemption_changes_no_record() {
    let (one, none) = dms_records(&["--max-sequences", "1"]);
    assert_eq!(one.len(), 6 * (1 + 2 + 3));
    assert_eq!(none, 0);
    let (free, none) = dms_records(&["--max-sequences", "64"]);
    assert_eq!(free, one);
    assert_eq!(none, 0);
    // The largest request's peak, in bytes: its samples' entries together
    // (the shared prompt once) × bytes per entry.
    let largest = one
        .values()
        .map(|r| r.peak_resident_batch * (r.peak_bytes / r.peak_resident))
        .max()
        .expect("records");
    let (tight, none) = dms_records(&[
        "--max-sequences",
        "64",
        "--kv-memory",
        &(largest / 2).to_string(),
    ]);
    assert_eq!(tight, one, "half the largest request");
    assert_eq!(none, 0, "one request at a time: nothing to preempt");
    let mut measured = Vec::new();
    for times in [5, 8, 16] {
        let budget = largest * times / 4;
        let (tight, preemptions) =
            dms_records(&["--max-sequences", "64", "--kv-memory", &budget.to_string()]);
        assert_eq!(tight, one, "--kv-memory {budget}");
        measured.push((budget, preemptions));
    }
    eprintln!("largest request {largest} B; (budget, preemptions): {measured:?}");
    assert!(
        measured.iter().all(|&(_, p)| p >= 1),
        "every budget preempts: {measured:?}"
    );
    let total: u64 = measured.iter().map(|&(_, p)| p).sum();
    assert!(total >= 10, "{measured:?}");
}

/// DMS prompts prefilled in pieces between decode steps (`--prefill-chunk`
/// or `[engine] prefill_chunk`), alone or under a KV memory that preempts
/// requests mid-prefill too: every record identical to the run one
/// request at a time in one piece. A chunk of 0 is refused, naming the
/// flag or key.
#[test]
fn dms_prefill_in_chunks_changes_no_record() {
    let (one, _) = dms_records(&["--max-sequences", "1"]);
    for chunk in ["1", "7", "32"] {
        let (got, _) = dms_records(&["--max-sequences", "64", "--prefill-chunk", chunk]);
        assert_eq!(got, one, "--prefill-chunk {chunk}");
    }
    let largest = one
        .values()
        .map(|r| r.peak_resident_batch * (r.peak_bytes / r.peak_resident))
        .max()
        .expect("records");
    let (got, preemptions) = dms_records(&[
        "--max-sequences",
        "64",
        "--prefill-chunk",
        "16",
        "--kv-memory",
        &(largest * 5 / 4).to_string(),
    ]);
    assert_eq!(got, one, "chunked and preempted");
    eprintln!(
        "--prefill-chunk 16 under {} B: {preemptions} preemption(s)",
        largest * 5 / 4
    );

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), dms_config()).expect("config");
    let out = sweep(dir.path(), &["--prefill-chunk", "0", "--dry-run"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prefill-chunk"));
    let config = dms_config() + "\n[engine]\nprefill_chunk = 0\n";
    std::fs::write(dir.path().join("sweep.toml"), config).expect("config");
    let out = sweep(dir.path(), &["--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("engine.prefill_chunk"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `--dry-run` prints the admission plan per method: what one request
/// reserves and how many fit.
#[test]
fn dry_run_prints_the_admission_plan_per_method() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sweep.toml"), config("")).expect("config");
    let out = sweep(
        dir.path(),
        &["--dry-run", "--kv-memory", "64kB", "--max-sequences", "8"],
    );
    assert!(out.status.success());
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("admission: up to 8 sequences; KV memory 64000 B"),
        "{plan}"
    );
    assert!(plan.contains("(--kv-memory)"), "{plan}");
    // One line per (method, cr, W, L): 4 methods × 3 W × 2 L.
    let rows: Vec<&str> = plan
        .lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 10 && ["dense", "window", "tova", "h2o"].contains(&w[0]) && w[5] == "B"
        })
        .collect();
    assert_eq!(rows.len(), 4 * 3 * 2, "{plan}");
    // At equal memory TOVA at CR 2 fits at least as many W = 1, L = 30
    // requests as dense.
    let fits = |method: &str| -> usize {
        let row = rows
            .iter()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w[0] == method && w[2] == "1" && w[3] == "30"
            })
            .unwrap_or_else(|| panic!("{method}: {plan}"));
        row.split_whitespace().nth(8).unwrap().parse().unwrap()
    };
    assert!(fits("tova") >= fits("dense"), "{plan}");
}

/// On wgpu, with no budget named, the dry run's KV memory is the device's
/// default (what the pools can hold, wgpu reporting no free memory) with
/// its source, and the plan names the element K/V are stored in; the
/// policies the host serves are listed as skipped.
#[cfg(feature = "wgpu")]
#[test]
fn dry_run_on_wgpu_names_the_device_default_and_the_kv_dtype() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config("").replacen("\n\n[[tasks]]", "\ndevice = \"wgpu\"\n\n[[tasks]]", 1);
    assert!(text.contains("device = \"wgpu\""));
    std::fs::write(dir.path().join("sweep.toml"), text).expect("config");
    let out = sweep(dir.path(), &["--dry-run", "--max-sequences", "8"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains(
            "(default: what the device pools can hold, 2 × 2 layers × the largest buffer"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("K/V stored in f32 (--kv-dtype auto on wgpu)"),
        "{plan}"
    );
    assert!(
        plan.lines().any(|l| l.trim_start().starts_with("dense")),
        "{plan}"
    );
}
