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
