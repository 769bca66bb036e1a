//! The sweep end to end on mocks: what gets recorded, nested widths,
//! determinism, filters, dry runs and the run directory's manifest.

use std::collections::HashSet;
use std::sync::Arc;

use crate::sweep_mocks::{BASIC, FakeGenerator, FakeGrader, Sandbox};
use hyperscale::record::{Manifest, RECORD_FORMAT_VERSION};
use hyperscale::sweep::Filters;

#[test]
fn a_run_records_every_planned_sample_once() {
    let sb = Sandbox::new(BASIC);
    let summary = sb.run().unwrap();
    // 3 problems × 3 policies × (W=1 + W=3) × 2 repeats, as documented in BASIC.
    assert_eq!(summary.planned_records, 72);
    assert_eq!(summary.written_records, 72);
    assert_eq!(summary.trials, 2 * 3 * 2);
    let records = sb.records();
    assert_eq!(records.len(), 72);
    let ids: HashSet<&str> = records.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(ids.len(), 72, "no duplicates");
    for r in &records {
        assert!(r.sample < r.width && r.repeat < 2, "{}", r.sample_id);
        assert_eq!(
            r.sample_id,
            format!("{}:{}:{}:{}", r.trial, r.problem_id, r.repeat, r.sample)
        );
        assert!(!r.verdict.is_empty());
        assert_eq!(r.device, "fake");
        assert_eq!(r.kv_rows, crate::sweep_mocks::ROWS);
        assert!(r.text.is_some());
        match r.policy.as_str() {
            "dense" => {
                assert_eq!(r.cr_target, None);
                assert_eq!(r.policy_params, "{}");
                // The fake keeps everything for dense: achieved CR is 1.
                if r.generated_tokens > 1 {
                    assert_eq!(r.cr_achieved, Some(1.0));
                }
            }
            "tova" => {
                assert!(r.cr_target == Some(2.0) || r.cr_target == Some(4.0));
                assert!(
                    r.policy_params.contains("\"min_tokens\":2"),
                    "{}",
                    r.policy_params
                );
            }
            other => panic!("unexpected policy {other}"),
        }
    }
    // GPQA's expected letter depends on the repeat (the renderer's choice order).
    let gpqa: HashSet<u32> = records
        .iter()
        .filter(|r| r.task == "gpqa-diamond")
        .map(|r| r.repeat)
        .collect();
    assert_eq!(gpqa, HashSet::from([0, 1]));
}

#[test]
fn two_runs_of_one_config_agree_token_for_token() {
    let (a, b) = (Sandbox::new(BASIC), Sandbox::new(BASIC));
    a.run().unwrap();
    b.run().unwrap();
    let (ra, rb) = (a.records(), b.records());
    assert_eq!(ra, rb);
    // The file order is deterministic too (generation order).
    let order = |sb: &Sandbox| -> Vec<String> {
        hyperscale::record::read_records(&sb.samples())
            .unwrap()
            .into_iter()
            .map(|r| r.sample_id)
            .collect()
    };
    assert_eq!(order(&a), order(&b));
}

#[test]
fn nested_widths_decode_only_the_missing_samples() {
    let nested = BASIC.replace("repeats = 2", "repeats = 2\nnested_widths = true");
    let (plain, nest) = (Sandbox::new(BASIC), Sandbox::new(&nested));
    let mut g_plain = FakeGenerator::default();
    let mut g_nest = FakeGenerator::default();
    plain
        .run_with(
            &plain.options(),
            &mut g_plain,
            Arc::new(FakeGrader::default()),
        )
        .unwrap();
    let s = nest
        .run_with(
            &nest.options(),
            &mut g_nest,
            Arc::new(FakeGrader::default()),
        )
        .unwrap();
    let decoded = |g: &FakeGenerator| {
        g.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.samples)
            .sum::<usize>()
    };
    // Per (problem, policy, repeat): 1 + 3 samples plain, 3 nested (max W).
    assert_eq!(decoded(&g_plain), 3 * 3 * 2 * 4);
    assert_eq!(decoded(&g_nest), 3 * 3 * 2 * 3);
    assert_eq!(s.samples_generated, 3 * 3 * 2 * 3);
    // Nested: the W=3 batch starts at sample 1 of each repeat.
    assert!(
        g_nest
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.first_sample == (1 << 32) | 1 && c.samples == 2)
    );

    // Sample i is the same tokens in every trial of its width group, nested or not.
    let (rp, rn) = (plain.records(), nest.records());
    assert_eq!(rp.len(), 72);
    assert_eq!(rn.len(), 72);
    let tokens = |rs: &[hyperscale::record::SampleRecord]| {
        let mut v: Vec<(String, String, u32, u32, u32, String)> = rs
            .iter()
            .map(|r| {
                (
                    r.group.clone(),
                    r.problem_id.clone(),
                    r.repeat,
                    r.sample,
                    r.width,
                    r.token_hash.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(tokens(&rp), tokens(&rn));
    for r in &rn {
        let twin = rn.iter().find(|o| {
            o.group == r.group
                && o.problem_id == r.problem_id
                && o.repeat == r.repeat
                && o.sample == r.sample
                && o.width != r.width
        });
        if let Some(o) = twin {
            assert_eq!(o.token_hash, r.token_hash);
            assert_eq!(o.verdict, r.verdict);
        }
    }
    // Batches: without nesting a W=3 sample's batch is the 3 samples.
    assert!(
        rp.iter()
            .filter(|r| r.width == 3)
            .all(|r| r.batch_samples == 3 && r.batch_first == 0)
    );
    assert!(
        rn.iter()
            .filter(|r| r.width == 3 && r.sample >= 1)
            .all(|r| r.batch_samples == 2 && r.batch_first == 1)
    );
}

#[test]
fn a_finished_run_reruns_as_a_no_op() {
    let sb = Sandbox::new(BASIC);
    sb.run().unwrap();
    let before = std::fs::read(sb.samples()).unwrap();
    let mut g = FakeGenerator::default();
    let s = sb
        .run_with(&sb.options(), &mut g, Arc::new(FakeGrader::default()))
        .unwrap();
    assert_eq!(
        (s.skipped_records, s.written_records, s.batches_generated),
        (72, 0, 0)
    );
    assert!(g.calls.lock().unwrap().is_empty());
    assert_eq!(std::fs::read(sb.samples()).unwrap(), before);
    let m = Manifest::read(&sb.run_dir()).unwrap().unwrap();
    assert_eq!(m.sessions.len(), 2);
    assert!(m.sessions.iter().all(|s| s.complete));
    assert_eq!(m.sessions[0].records_written, 72);
    assert_eq!(m.sessions[1].records_written, 0);
}

#[test]
fn the_manifest_holds_config_identities_and_format() {
    let sb = Sandbox::new(BASIC);
    sb.run().unwrap();
    let m = Manifest::read(&sb.run_dir()).unwrap().unwrap();
    assert_eq!(m.format_version, RECORD_FORMAT_VERSION);
    assert_eq!(m.run, "t");
    assert_eq!(m.git_revision.as_deref(), Some("test"));
    assert_eq!(m.crate_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(m.config["grid"]["widths"], serde_json::json!([1, 3]));
    // Defaults are filled in.
    assert_eq!(
        m.config["sampling"]["top_p"],
        serde_json::json!(0.949999988079071)
    );
    assert_eq!(
        m.identities.tasks.get("arith").map(String::as_str),
        Some("v1")
    );
    assert!(m.identities.models["models/tiny.gguf"].starts_with("models/tiny.gguf@sha256:"));
    assert_eq!(m.hardware.device, "fake");
    assert!(m.ended_at.is_some());
}

#[test]
fn a_changed_config_is_refused_unless_new_run() {
    let sb = Sandbox::new(BASIC);
    sb.run().unwrap();
    sb.set_config(&BASIC.replace("widths = [1, 3]", "widths = [1, 3, 4]"));
    let e = sb.run().unwrap_err().to_string();
    assert!(
        e.contains("`grid.widths` was [1,3], now [1,3,4]") && e.contains("--new-run"),
        "{e}"
    );
    assert!(!e.contains('\n'));

    let mut options = sb.options();
    options.new_run = true;
    let s = sb
        .run_with(
            &options,
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
        .unwrap();
    assert_eq!((s.skipped_records, s.written_records), (0, 3 * 3 * 2 * 8));
    let aside: Vec<_> = std::fs::read_dir(sb.dir.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("t.prev-"))
        .collect();
    assert_eq!(aside.len(), 1, "the old run is moved aside, not deleted");
    let old = sb
        .dir
        .path()
        .join("results")
        .join(&aside[0])
        .join("samples.jsonl");
    assert_eq!(hyperscale::record::read_records(&old).unwrap().len(), 72);
}

#[test]
fn a_changed_task_version_is_refused() {
    let sb = Sandbox::new(BASIC);
    sb.run().unwrap();
    let tasks = crate::sweep_mocks::MockTasks {
        version: "v2".into(),
    };
    let e = hyperscale::sweep::run_sweep(
        &sb.config(),
        &sb.options(),
        hyperscale::sweep::SweepDeps {
            catalog: &crate::sweep_mocks::MockCatalog,
            tasks: &tasks,
            renderer: &mut crate::sweep_mocks::MockRenderer,
            generator: &mut FakeGenerator::default(),
            grader: Arc::new(FakeGrader::default()),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("task `arith` version changed: was v1, now v2"),
        "{e}"
    );
}

#[test]
fn filters_select_work_and_a_later_full_run_completes_it() {
    let sb = Sandbox::new(BASIC);
    let mut options = sb.options();
    options.filters = Filters {
        tasks: Some(vec!["arith".into()]),
        methods: Some(vec!["tova".into()]),
        limit: Some(1),
    };
    let s = sb
        .run_with(
            &options,
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
        .unwrap();
    // 1 problem × 2 CRs × 4 samples × 2 repeats.
    assert_eq!(s.written_records, 16);
    assert!(
        sb.records()
            .iter()
            .all(|r| r.task == "arith" && r.policy == "tova" && r.problem_id == "arith-0")
    );
    let m = Manifest::read(&sb.run_dir()).unwrap().unwrap();
    assert_eq!(
        m.sessions[0].filters.as_deref(),
        Some("--tasks arith --methods tova --limit 1")
    );

    // The unfiltered run resumes the same run and ends where a fresh one does.
    let s = sb.run().unwrap();
    assert_eq!((s.skipped_records, s.written_records), (16, 56));
    let fresh = Sandbox::new(BASIC);
    fresh.run().unwrap();
    assert_eq!(sb.records(), fresh.records());

    let mut bad = sb.options();
    bad.filters.methods = Some(vec!["h2o".into()]);
    let e = sb
        .run_with(
            &bad,
            &mut FakeGenerator::default(),
            Arc::new(FakeGrader::default()),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("command line: --methods: no method `h2o`"),
        "{e}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let sb = Sandbox::new(BASIC);
    let mut options = sb.options();
    options.dry_run = true;
    let mut g = FakeGenerator::default();
    let s = sb
        .run_with(&options, &mut g, Arc::new(FakeGrader::default()))
        .unwrap();
    let plan = s.plan.unwrap();
    println!("{plan}");
    assert!(!sb.dir.path().join("results").exists());
    assert!(g.calls.lock().unwrap().is_empty());
    // 3 problems × 3 policies × 2 repeats × (1 + 3) samples × L=12.
    assert_eq!(s.estimated_tokens, 3 * 3 * 2 * 4 * 12);
    assert!(
        plan.contains("to do: 72 records, 72 samples to decode, at most 864 generated tokens"),
        "{plan}"
    );
    assert!(plan.contains("12 trials in 6 width groups"), "{plan}");
    let trial_rows = plan.lines().filter(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() == 10 && cols[0].len() == 17 && cols[1] == "arith"
    });
    assert_eq!(trial_rows.count(), 6);
}

#[test]
fn progress_bars_and_log_lines_do_not_disturb_the_run() {
    for mode in [
        hyperscale::sweep::ProgressMode::Bars,
        hyperscale::sweep::ProgressMode::Log { seconds: 1 },
    ] {
        let sb = Sandbox::new(BASIC);
        let mut options = sb.options();
        options.progress = mode;
        let s = sb
            .run_with(
                &options,
                &mut FakeGenerator::default(),
                Arc::new(FakeGrader::default()),
            )
            .unwrap();
        assert_eq!(s.written_records, 72);
        assert_eq!(
            s.tokens_generated,
            sb.records().iter().map(|r| r.generated_tokens).sum::<u64>()
        );
    }
}

#[test]
fn a_second_sweep_on_a_locked_directory_fails_at_once_and_the_first_is_intact() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let sb = Sandbox::new(BASIC);
    let release = Arc::new(AtomicBool::new(false));
    let first = {
        let release = release.clone();
        FakeGrader {
            wait_for: Some(Box::new(move || release.load(Ordering::SeqCst))),
            ..FakeGrader::default()
        }
    };
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            sb.run_with(
                &sb.options(),
                &mut FakeGenerator::default(),
                Arc::new(first),
            )
        });
        // The first session has locked the directory once its manifest is there.
        let start = Instant::now();
        while Manifest::read(&sb.run_dir()).ok().flatten().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "first sweep never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = Instant::now();
        let e = sb.run().unwrap_err().to_string();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the second sweep waited"
        );
        assert!(
            e.contains("in use by another sweep")
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        release.store(true, Ordering::SeqCst);
        let summary = running.join().unwrap().unwrap();
        assert_eq!(summary.written_records, 72);
    });
    let records = sb.records();
    let ids: HashSet<&str> = records.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!((records.len(), ids.len()), (72, 72), "every record once");
    let m = Manifest::read(&sb.run_dir()).unwrap().unwrap();
    assert_eq!(m.sessions.len(), 1, "the refused sweep left no session");
    assert!(m.sessions[0].complete);
    // Released with the session: the next sweep runs (a no-op).
    assert_eq!(sb.run().unwrap().written_records, 0);
}

#[test]
fn new_run_moves_the_old_run_aside_and_locks_the_new_directory() {
    let sb = Sandbox::new(BASIC);
    sb.run().unwrap();
    let options = hyperscale::sweep::SweepOptions {
        new_run: true,
        ..sb.options()
    };
    sb.set_config(&BASIC.replace("seeds = [5]", "seeds = [6]"));
    sb.run_with(
        &options,
        &mut FakeGenerator::default(),
        Arc::new(FakeGrader::default()),
    )
    .unwrap();
    assert_eq!(sb.records().len(), 72);
    let moved: Vec<_> = std::fs::read_dir(sb.run_dir().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("t.prev-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    // The new directory is free again.
    let _lock = hyperscale::record::RunLock::acquire(&sb.run_dir()).unwrap();
}
