//! Pipelining: grading runs beside generation, so a slow grader (sandboxed
//! code execution) does not slow the model down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::sweep_mocks::{BASIC, FakeGenerator, FakeGrader, Sandbox};

/// BASIC decodes 36 batches (6 width groups, 9 (group, problem) units × 2 repeats × 2 widths).
const BATCHES: usize = 36;

#[test]
fn generation_finishes_while_every_grader_is_still_blocked() {
    // Each grade blocks until the generator has produced every batch. If
    // generation ever waited for a grade, graders would give up after 60 s
    // and the sweep would fail.
    let sb = Sandbox::new(BASIC);
    let mut g = FakeGenerator::default();
    let batches = g.batches.clone();
    let grader = Arc::new(FakeGrader {
        wait_for: Some(Box::new(move || batches.load(Ordering::SeqCst) == BATCHES)),
        ..FakeGrader::default()
    });
    let mut options = sb.options();
    options.grade_workers = Some(2);
    let s = sb.run_with(&options, &mut g, grader).unwrap();
    assert_eq!(g.batches.load(Ordering::SeqCst), BATCHES);
    assert_eq!(s.written_records, 72);
}

#[test]
fn a_sleeping_grader_does_not_slow_generation() {
    // Measured, not asserted (timings depend on the machine): generation
    // time with an instant grader vs one that sleeps 25 ms per sample on
    // 3 workers (72 samples ≈ 0.6 s of grading), decoding taking 10 ms per batch.
    let mut rows = Vec::new();
    for grade_ms in [0u64, 25] {
        let sb = Sandbox::new(BASIC);
        let mut g = FakeGenerator {
            delay: Duration::from_millis(10),
            ..FakeGenerator::default()
        };
        let grader = Arc::new(FakeGrader {
            delay: Duration::from_millis(grade_ms),
            ..FakeGrader::default()
        });
        let s = sb.run_with(&sb.options(), &mut g, grader).unwrap();
        assert_eq!(s.written_records, 72);
        rows.push((grade_ms, s.timing));
    }
    println!(
        "grader sleep | generation done | inside generator | blocked on grading | wall   | grading (summed)"
    );
    for (ms, t) in &rows {
        println!(
            "{ms:>9} ms | {:>13.3} s | {:>14.3} s | {:>16.3} s | {:.3} s | {:.3} s",
            t.generation_done, t.generating, t.blocked_on_grading, t.wall, t.grading
        );
    }
}
