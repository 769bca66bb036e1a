//! `hyperscale sweep configs/smoke.toml`, as CI runs it: SmolLM2 on CPU over
//! a few problems of every task (arith, AIME 24, GPQA Diamond, LiveCodeBench
//! public tests), run from the repository root into a temp results dir. It
//! must end green with one graded record per planned sample. Takes tens of
//! seconds on 2 cores; the wall time is printed, never asserted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hyperscale::record::{Manifest, SAMPLES_FILE, read_records};

#[test]
fn smoke_config_runs_green_on_smollm2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.exists(),
        "{} is missing: run scripts/setup.sh",
        gguf.display()
    );
    let results = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .current_dir(root)
        .args([
            "sweep",
            "configs/smoke.toml",
            "--progress",
            "log",
            "--results",
        ])
        .arg(results.path())
        .output()
        .expect("run hyperscale");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "smoke sweep: {:.1} s wall\n{stderr}",
        start.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "{stderr}");

    let run = results.path().join("smoke");
    let records = read_records(&run.join(SAMPLES_FILE)).expect("records");
    let tasks: BTreeSet<&str> = records.iter().map(|r| r.task.as_str()).collect();
    assert_eq!(
        tasks,
        BTreeSet::from(["aime24", "arith", "gpqa-diamond", "livecodebench"])
    );
    let ids: BTreeSet<&str> = records.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "duplicate records");
    for r in &records {
        assert!(!r.verdict.is_empty() && r.prompt_tokens > 0, "{r:?}");
        assert!(r.generated_tokens > 0 && r.generated_tokens <= u64::from(r.max_tokens));
        assert_eq!(r.device, "cpu");
    }
    // The summary line counts what was planned; every planned record is there.
    let planned: usize = stderr
        .lines()
        .find_map(|l| l.split("already there, of ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    assert_eq!(records.len(), planned);
    let manifest = Manifest::read(&run).expect("manifest").expect("a manifest");
    let session = manifest.sessions.last().expect("a session");
    assert_eq!(session.records_written, planned as u64);
    assert_eq!(session.complete, !stderr.contains("width group(s) skipped"));
}
