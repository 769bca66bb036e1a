//! Sharded sweeps: N shards of a plan hold every record of the
//! single-process run exactly once, a shard resumes after a crash to its own
//! part, and `merge` unions the shards into the single-process record set —
//! on the mocks in-process, and with the real binary on the tiny model as
//! three parallel processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use crate::sweep_mocks::{BASIC, FakeGenerator, FakeGrader, Sandbox, sorted};
use hyperscale::record::{
    MANIFEST_FILE, Manifest, SAMPLES_FILE, SampleRecord, Shard, merge_runs, read_records,
};
use hyperscale::sweep::{Filters, SweepOptions, shard_dir};

fn shard(index: u32, count: u32) -> Shard {
    Shard { index, count }
}

fn shard_options(sb: &Sandbox, s: Shard) -> SweepOptions {
    SweepOptions {
        shard: Some(s),
        ..sb.options()
    }
}

fn shard_records(sb: &Sandbox, s: Shard) -> Vec<SampleRecord> {
    sorted(read_records(&shard_dir(&sb.run_dir(), s).join(SAMPLES_FILE)).unwrap())
}

#[test]
fn shards_partition_the_records_of_the_whole_run() {
    let whole = Sandbox::new(BASIC);
    whole.run().unwrap();
    let want = whole.records();
    for count in [1, 2, 3, 5, 12] {
        let sb = Sandbox::new(BASIC);
        let mut union = Vec::new();
        let mut units_seen: BTreeMap<(String, String), u32> = BTreeMap::new();
        for index in 0..count {
            let s = shard(index, count);
            let summary = sb
                .run_with(
                    &shard_options(&sb, s),
                    &mut FakeGenerator::default(),
                    Arc::new(FakeGrader::default()),
                )
                .unwrap();
            assert_eq!(summary.run_dir, shard_dir(&sb.run_dir(), s));
            let records = shard_records(&sb, s);
            assert_eq!(records.len() as u64, summary.planned_records);
            // A unit (width group × problem) lives in one shard only.
            for r in &records {
                let unit = (r.group.clone(), r.problem_id.clone());
                let owner = *units_seen.entry(unit).or_insert(index);
                assert_eq!(owner, index, "unit {} split across shards", r.sample_id);
            }
            let m = Manifest::read(&shard_dir(&sb.run_dir(), s))
                .unwrap()
                .unwrap();
            assert_eq!(m.shard, Some(s));
            assert!(
                m.config_hash
                    .as_deref()
                    .is_some_and(|h| h.starts_with("sha256:"))
            );
            union.extend(records);
        }
        assert_eq!(sorted(union), want, "{count} shards");
        // 3 problems × 3 policies = 9 units.
        assert_eq!(units_seen.len(), 9);
        if count <= 9 {
            let used: BTreeSet<u32> = units_seen.values().copied().collect();
            assert_eq!(used.len(), count as usize, "a shard got no unit");
        }

        let inputs: Vec<PathBuf> = (0..count)
            .map(|i| shard_dir(&sb.run_dir(), shard(i, count)))
            .collect();
        let merged = merge_runs(&inputs, &sb.run_dir()).unwrap();
        assert!(merged.missing_shards.is_empty() && merged.incomplete.is_empty());
        assert_eq!(sb.records(), want, "{count} shards merged");
        // The merged directory is a normal run: an unsharded session finds
        // nothing left to do.
        let s = sb.run().unwrap();
        assert_eq!(
            (s.written_records, s.skipped_records),
            (0, want.len() as u64)
        );
    }
}

#[test]
fn a_crashed_shard_resumes_to_its_own_part() {
    let reference = Sandbox::new(BASIC);
    let s = shard(1, 3);
    reference
        .run_with(
            &shard_options(&reference, s),
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
        .unwrap();
    let want = shard_records(&reference, s);
    assert!(!want.is_empty());

    let sb = Sandbox::new(BASIC);
    let mut crashing = FakeGenerator {
        fail_after: Some(2),
        ..FakeGenerator::default()
    };
    let options = shard_options(&sb, s);
    assert!(
        sb.run_with(&options, &mut crashing, Arc::new(FakeGrader::default()))
            .is_err()
    );
    assert!(shard_records(&sb, s).len() < want.len());
    sb.run_with(
        &options,
        &mut FakeGenerator::default(),
        Arc::new(FakeGrader::default()),
    )
    .unwrap();
    assert_eq!(shard_records(&sb, s), want);

    // Another split under the same directory, or filters, are refused.
    let other = SweepOptions {
        shard: Some(shard(1, 3)),
        filters: Filters {
            limit: Some(1),
            ..Filters::default()
        },
        ..sb.options()
    };
    let e = sb
        .run_with(
            &other,
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("--shard") && e.contains("--limit 1"), "{e}");
}

// ---- the real binary, three processes at once ----

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama")
}

/// Arith on the tiny model: 4 problems, dense and TOVA, nested W ∈ {1, 2, 3},
/// two seeds, sampled.
fn config() -> String {
    format!(
        r#"[run]
name = "sh"

[model]
path = "{}"

[[tasks]]
name = "arith"
limit = 4

[sampling]
temperature = 0.8
seeds = [3, 4]

[grid]
cr = [2]
widths = [1, 2, 3]
lengths = [24]
nested_widths = true

[[grid.methods]]
policy = "dense"

[[grid.methods]]
policy = "tova"
"#,
        model().display()
    )
}

fn hyperscale(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyperscale"));
    c.current_dir(dir).args(args);
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "hyperscale failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn three_shard_processes_and_a_merge_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sweep.toml"), config()).unwrap();
    let sweep = ["sweep", "sweep.toml", "--progress", "none"];

    // The single process, in its own results folder.
    let mut single = sweep.to_vec();
    single.extend(["--results", "single"]);
    ok(hyperscale(dir.path(), &single).output().unwrap());
    let want = sorted(read_records(&dir.path().join("single/sh").join(SAMPLES_FILE)).unwrap());
    // 4 problems × 2 seeds × 2 methods × (1 + 2 + 3) samples.
    assert_eq!(want.len(), 4 * 2 * 2 * 6);

    let children: Vec<_> = (0..3)
        .map(|i| {
            let s = format!("{i}/3");
            let mut args = sweep.to_vec();
            args.extend(["--shard", &s]);
            hyperscale(dir.path(), &args).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a shard failed");
    }
    let shards: Vec<String> = (0..3)
        .map(|i| format!("results/sh/shards/{i}-of-3"))
        .collect();
    for s in &shards {
        assert!(
            !read_records(&dir.path().join(s).join(SAMPLES_FILE))
                .unwrap()
                .is_empty()
        );
    }
    let mut merge = vec!["merge"];
    merge.extend(shards.iter().map(String::as_str));
    merge.extend(["--out", "results/sh"]);
    ok(hyperscale(dir.path(), &merge).output().unwrap());
    let out = dir.path().join("results/sh");
    let got = sorted(read_records(&out.join(SAMPLES_FILE)).unwrap());
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);

    // Merging again, with a shard named twice, changes nothing.
    let before = (
        std::fs::read(out.join(SAMPLES_FILE)).unwrap(),
        std::fs::read(out.join(MANIFEST_FILE)).unwrap(),
    );
    let mut again = merge.clone();
    again.insert(1, shards[1].as_str());
    ok(hyperscale(dir.path(), &again).output().unwrap());
    let after = (
        std::fs::read(out.join(SAMPLES_FILE)).unwrap(),
        std::fs::read(out.join(MANIFEST_FILE)).unwrap(),
    );
    assert!(before == after, "a second merge changed the output");

    // A record that disagrees is refused, naming it and both files.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    std::fs::copy(
        dir.path().join(&shards[0]).join(MANIFEST_FILE),
        tampered.join(MANIFEST_FILE),
    )
    .unwrap();
    let mut records = read_records(&dir.path().join(&shards[0]).join(SAMPLES_FILE)).unwrap();
    records[0].token_hash = "0".repeat(32);
    let lines: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(tampered.join(SAMPLES_FILE), lines).unwrap();
    let out = hyperscale(
        dir.path(),
        &["merge", &shards[0], "tampered", "--out", "bad"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("record `{}`", records[0].sample_id))
            && stderr.contains("shards/0-of-3/samples.jsonl")
            && stderr.contains("tampered/samples.jsonl"),
        "{stderr}"
    );
}
