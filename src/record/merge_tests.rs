//! Unit tests of [`super`]: union, idempotence, conflicts, refusals.

use super::*;
use crate::generate::FinishReason;
use crate::record::{BudgetSource, Hardware, Identities, SampleWriter, config_hash};

fn record(trial: &str, sample: u32, tokens: &str) -> SampleRecord {
    let key = SampleKey {
        trial: trial.into(),
        problem_id: "p".into(),
        repeat: 0,
        sample,
    };
    SampleRecord {
        run: "r".into(),
        trial: trial.into(),
        group: "g".into(),
        sample_id: key.sample_id(),
        task: "arith".into(),
        task_version: "1".into(),
        problem_id: "p".into(),
        repeat: 0,
        sample,
        model: "m".into(),
        method: "dense".into(),
        policy: "dense".into(),
        policy_params: "{}".into(),
        cr_target: None,
        cr_achieved: None,
        width: 2,
        max_tokens: 8,
        seed: 0,
        temperature: 0.5,
        top_p: 1.0,
        top_k: 0,
        prompt_tokens: 3,
        generated_tokens: 4,
        finish_reason: FinishReason::Length,
        extracted_answer: None,
        verdict: "incorrect".into(),
        is_correct: false,
        kv_reads: 10,
        prefill_reads: 6,
        peak_resident: 7,
        peak_resident_batch: 14,
        batch_first: 0,
        batch_samples: 2,
        peak_bytes: 70,
        kv_rows: 1,
        budget_source: BudgetSource::Measured,
        wall_seconds: 0.25,
        prefill_seconds: 0.0,
        decode_tokens_per_second: 16.0,
        grade_seconds: 0.0,
        device: "cpu".into(),
        token_hash: tokens.into(),
        text: None,
        outcome: None,
        failure: None,
        vote_key: None,
        occupancy: None,
        kv_dtype: None,
    }
}

/// A run dir holding `records`, of config `{"c": config}`, as `shard`.
fn run_dir(
    root: &Path,
    name: &str,
    config: u32,
    shard: Option<Shard>,
    records: &[SampleRecord],
) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({ "c": config });
    let m = Manifest {
        format_version: RECORD_FORMAT_VERSION,
        run: "r".into(),
        crate_version: "0".into(),
        git_revision: None,
        config_file: "c.toml".into(),
        config_hash: Some(config_hash(&config)),
        config,
        shard,
        merged_from: vec![],
        identities: Identities::default(),
        hardware: Hardware::probe("cpu"),
        started_at: format!("2026-01-0{}T00:00:00Z", 1 + shard.map_or(0, |s| s.index)),
        ended_at: None,
        sessions: vec![],
    };
    m.write(&dir).unwrap();
    let (mut w, _) = SampleWriter::open(&dir.join(SAMPLES_FILE)).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w.finish().unwrap();
    dir
}

fn shard(index: u32) -> Option<Shard> {
    Some(Shard { index, count: 3 })
}

#[test]
fn shards_union_and_merging_again_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let a = run_dir(
        root.path(),
        "a",
        1,
        shard(0),
        &[record("t1", 0, "x"), record("t1", 1, "y")],
    );
    let b = run_dir(root.path(), "b", 1, shard(2), &[record("t2", 0, "z")]);
    let out = root.path().join("out");
    let s = merge_runs(&[b.clone(), a.clone()], &out).unwrap();
    assert_eq!((s.records, s.added, s.duplicates), (3, 3, 0));
    assert_eq!(s.missing_shards, vec![Shard { index: 1, count: 3 }]);
    let got = crate::record::read_records(&out.join(SAMPLES_FILE)).unwrap();
    let ids: Vec<&str> = got.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(ids, ["t1:p:0:0", "t1:p:0:1", "t2:p:0:0"]);
    let m = Manifest::read(&out).unwrap().unwrap();
    assert_eq!((m.shard, m.merged_from.len()), (None, 2));
    assert_eq!(m.started_at, "2026-01-01T00:00:00Z");

    let bytes = |p: &Path| std::fs::read(p).unwrap();
    let (records, manifest) = (
        bytes(&out.join(SAMPLES_FILE)),
        bytes(&out.join(MANIFEST_FILE)),
    );
    // Again, in another order, with a shard given twice: nothing changes.
    let s = merge_runs(&[a.clone(), b.clone(), a.clone()], &out).unwrap();
    assert_eq!((s.records, s.added, s.duplicates), (3, 0, 3));
    assert_eq!(bytes(&out.join(SAMPLES_FILE)), records);
    assert_eq!(bytes(&out.join(MANIFEST_FILE)), manifest);
}

#[test]
fn wall_clock_and_device_may_differ_but_tokens_may_not() {
    let root = tempfile::tempdir().unwrap();
    let mut slow = record("t1", 0, "x");
    slow.wall_seconds = 9.0;
    slow.device = "cuda:0".into();
    let a = run_dir(root.path(), "a", 1, shard(0), &[record("t1", 0, "x")]);
    let b = run_dir(root.path(), "b", 1, shard(1), &[slow]);
    let s = merge_runs(&[a.clone(), b], &root.path().join("o1")).unwrap();
    assert_eq!((s.records, s.duplicates), (1, 1));

    let c = run_dir(root.path(), "c", 1, shard(1), &[record("t1", 0, "other")]);
    let e = merge_runs(&[a, c], &root.path().join("o2"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("record `t1:p:0:0`")
            && e.contains("a/samples.jsonl` line 1")
            && e.contains("c/samples.jsonl` line 1")
            && e.contains("`token_hash`"),
        "{e}"
    );
    assert!(
        !root.path().join("o2").exists(),
        "a refused merge wrote output"
    );
}

#[test]
fn runs_of_other_configs_formats_or_models_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = run_dir(root.path(), "a", 1, shard(0), &[]);
    let b = run_dir(root.path(), "b", 2, shard(1), &[]);
    let e = merge_runs(&[a.clone(), b], &root.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("different configs") && e.contains("sha256:"),
        "{e}"
    );

    let c = run_dir(root.path(), "c", 1, shard(1), &[]);
    let mut m = Manifest::read(&c).unwrap().unwrap();
    m.identities
        .models
        .insert("m.gguf".into(), "m@sha256:1".into());
    m.write(&c).unwrap();
    let e = merge_runs(&[a.clone(), c.clone()], &root.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model `m.gguf`: absent vs m@sha256:1"), "{e}");

    m.format_version = RECORD_FORMAT_VERSION + 1;
    m.write(&c).unwrap();
    let e = merge_runs(&[a.clone(), c], &root.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("record format"), "{e}");

    let e = merge_runs(&[a, root.path().join("nothing")], &root.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing` is not a run directory"), "{e}");
    assert!(matches!(
        merge_runs(&[], &root.path().join("o")),
        Err(MergeError::NoInputs)
    ));
}

#[test]
fn merge_keeps_floats_exactly_1_9574468085106382() {
    // serde_json without `float_roundtrip` reads this as ...385; merge used
    // to parse and re-serialise every record.
    let root = tempfile::tempdir().unwrap();
    let mut r = record("t1", 0, "x");
    r.cr_achieved = Some(1.9574468085106382);
    r.wall_seconds = 1.9574468085106382;
    let a = run_dir(root.path(), "a", 1, shard(0), &[r]);
    let written = std::fs::read_to_string(a.join(SAMPLES_FILE)).unwrap();
    assert!(written.contains("1.9574468085106382"), "{written}");
    let out = root.path().join("out");
    merge_runs(&[a], &out).unwrap();
    let merged = std::fs::read_to_string(out.join(SAMPLES_FILE)).unwrap();
    assert_eq!(merged, written, "the record's line is copied byte for byte");
}

#[test]
fn an_error_record_gives_way_to_a_real_one() {
    let root = tempfile::tempdir().unwrap();
    let mut failed = record("t1", 0, "x");
    failed.finish_reason = FinishReason::Error;
    failed.generated_tokens = 0;
    let a = run_dir(root.path(), "a", 1, shard(0), &[failed.clone()]);
    let b = run_dir(root.path(), "b", 1, shard(1), &[record("t1", 0, "x")]);
    for inputs in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let out = root.path().join(format!("o{}", inputs[0] == a));
        let s = merge_runs(&inputs, &out).unwrap();
        assert_eq!((s.records, s.errors_replaced), (1, 1));
        let got = crate::record::read_records(&out.join(SAMPLES_FILE)).unwrap();
        assert_eq!(got[0].finish_reason, FinishReason::Length);
    }
}

#[test]
fn a_merge_into_a_locked_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = run_dir(root.path(), "a", 1, shard(0), &[record("t1", 0, "x")]);
    let out = root.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let _held = RunLock::acquire(&out).unwrap();
    let e = merge_runs(&[a], &out).unwrap_err().to_string();
    assert!(e.contains("in use by another sweep"), "{e}");
    assert!(!out.join(SAMPLES_FILE).exists());
}
