//! Bounds on what a sweep config, a task file or a command-line flag may
//! ask, checked before any work starts (before a run directory exists) so
//! that a hostile or mistyped number is a one-line error naming its field or
//! flag, never a panic, an allocation abort or a run that cannot end.
//!
//! Three kinds of bound live here:
//!
//! - **durations** ([`seconds`], [`whole_seconds`]): finite, positive and
//!   small enough for the clock that enforces them (`Duration`, Python's
//!   `signal.alarm`);
//! - **batches** ([`ModelLimits::check`]): the positions a sequence reaches
//!   against the model's context length, and a lower bound on the memory a
//!   batch takes (KV entries and logits rows) against the memory this
//!   machine has available ([`available_memory`]);
//! - **counts and sizes** (the `MAX_*` constants): problems generated,
//!   records planned, bytes decompressed.
//!
//! `docs/limits.md` lists every bound with its value and the reason for it.

use std::time::Duration;

use thiserror::Error;

use crate::kv::CachePolicy;
use crate::model::ModelConfig;

/// Longest `model.timeout_seconds` of a remote engine: one day.
pub const MAX_TIMEOUT_S: f64 = 86_400.0;
/// Longest first backoff (`model.backoff_seconds`): the longest wait between
/// two retries (the client caps every wait at 60 s).
pub const MAX_BACKOFF_S: f64 = 60.0;
/// Most retries of one request (`model.retries`).
pub const MAX_RETRIES: u32 = 100;
/// Most requests in flight (`model.concurrency`).
pub const MAX_CONCURRENCY: usize = 4096;
/// Longest per-test timeout of the code grader (`grader.test_timeout_s`):
/// one hour. Whole seconds, because the sandbox's `signal.alarm` counts whole
/// seconds in a C `int` (2^31 and above overflow it).
pub const MAX_TEST_TIMEOUT_S: u32 = 3_600;
/// Most problems one generated task (arith) may hold: they are built in
/// memory when the task loads.
pub const MAX_GENERATED_PROBLEMS: u64 = 1_000_000;
/// Most sample records one sweep may plan: the schedule holds one entry per
/// missing record in memory.
pub const MAX_PLANNED_RECORDS: u64 = 100_000_000;
/// Longest DMS window or Quest page (in positions) whatever the model: no
/// model here has a longer context, and buffers sized by them aborted on
/// allocation. Where the model is known they are bounded by its context
/// ([`policy_fits`]).
pub const MAX_POSITIONS: u64 = 1 << 24;
/// Largest decompressed LiveCodeBench `private_test_cases` of one problem:
/// 1 GiB, far above the tests of any problem we have seen, far below what a
/// zlib bomb inflates to.
pub const MAX_PRIVATE_TESTS_BYTES: u64 = 1 << 30;

/// A number outside its bound. Messages say what was asked and what is
/// allowed; the caller names the file and field or the flag.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LimitError {
    #[error("{value} is not a number of seconds in (0, {max}]")]
    Seconds { value: f64, max: f64 },
    #[error("{value} is not a whole number of seconds in 1..={max}")]
    WholeSeconds { value: f64, max: u32 },
    #[error(
        "{positions} positions ({what}) exceed the model's context length of {context} (max_position_embeddings)"
    )]
    Context {
        positions: u64,
        context: u64,
        what: String,
    },
    #[error("{what} needs at least {} of memory but this machine has {} available", gib(*needed), gib(*available))]
    Memory {
        needed: u64,
        available: u64,
        what: String,
    },
    #[error("{value} is more than the {max} allowed ({why})")]
    Count {
        value: u64,
        max: u64,
        why: &'static str,
    },
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// `value` seconds as a [`Duration`]: finite, > 0 and at most `max`.
pub fn seconds(value: f64, max: f64) -> Result<Duration, LimitError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(LimitError::Seconds { value, max })
    }
}

/// `value` as whole seconds in `1..=max`.
pub fn whole_seconds(value: f64, max: u32) -> Result<u32, LimitError> {
    if value.is_finite() && value.fract() == 0.0 && value >= 1.0 && value <= f64::from(max) {
        Ok(value as u32)
    } else {
        Err(LimitError::WholeSeconds { value, max })
    }
}

/// `value` when it is at most `max`.
pub fn at_most(value: u64, max: u64, why: &'static str) -> Result<u64, LimitError> {
    if value <= max {
        Ok(value)
    } else {
        Err(LimitError::Count { value, max, why })
    }
}

/// What one position and one sequence of a model cost, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// Positions the model was trained for (`max_position_embeddings`).
    pub context: u64,
    /// Bytes of the f32 keys and values of one position over every layer
    /// and KV head.
    pub kv_bytes_per_token: u64,
    /// Bytes of one sequence's f32 logits row (the vocabulary).
    pub logits_bytes: u64,
}

impl ModelLimits {
    pub fn of(config: &ModelConfig) -> Self {
        let kv = 2 * 4 * config.num_layers as u64 * config.num_kv_heads as u64;
        ModelLimits {
            context: config.max_position_embeddings as u64,
            kv_bytes_per_token: kv.saturating_mul(config.head_dim as u64),
            logits_bytes: 4 * config.vocab_size as u64,
        }
    }

    /// A lower bound on the memory `batch` takes, in bytes (saturating):
    /// the shared prefix's KV once, each sequence's own KV entries when the
    /// KV lives in this machine's memory, and one logits row per sequence.
    pub fn batch_bytes(&self, batch: &BatchAsk) -> u64 {
        let kv_tokens = if batch.kv_on_host {
            batch
                .sequences
                .saturating_mul(batch.kv_tokens_per_sequence)
                .saturating_add(batch.shared_kv_tokens)
        } else {
            0
        };
        kv_tokens
            .saturating_mul(self.kv_bytes_per_token)
            .saturating_add(batch.sequences.saturating_mul(self.logits_bytes))
    }

    /// `batch` against the context length and `available` bytes of memory
    /// (`None`: unknown, not checked). `what` describes the batch in errors
    /// (`"W = 8 sequences of L = 64"`).
    pub fn check(
        &self,
        batch: &BatchAsk,
        available: Option<u64>,
        what: &str,
    ) -> Result<(), LimitError> {
        if batch.positions > self.context {
            return Err(LimitError::Context {
                positions: batch.positions,
                context: self.context,
                what: what.to_string(),
            });
        }
        let needed = self.batch_bytes(batch);
        match available {
            Some(available) if needed > available => Err(LimitError::Memory {
                needed,
                available,
                what: what.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// One batch as a command or a config asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchAsk {
    /// Sequences decoded together.
    pub sequences: u64,
    /// The most positions one sequence reaches (prompt + new tokens).
    pub positions: u64,
    /// KV entries per (layer, KV head) each sequence keeps at its end,
    /// beyond the shared prefix (at least: see [`kept_at_least`]).
    pub kv_tokens_per_sequence: u64,
    /// KV entries of a prefix the sequences share (held once).
    pub shared_kv_tokens: u64,
    /// The KV cache lives in this machine's memory (CPU decoding); on a GPU
    /// only the logits rows are counted here.
    pub kv_on_host: bool,
}

/// The fewest KV entries per (layer, KV head) `policy` keeps after
/// `positions` positions: everything for dense and Quest (which reduces
/// reads, not memory), the budget for the training-free evictions, and
/// `positions / cr` for DMS when its trained `cr` is known (else 1).
pub fn kept_at_least(policy: &CachePolicy, cr: Option<f64>, positions: u64) -> u64 {
    match policy {
        CachePolicy::Dense {} | CachePolicy::Quest { .. } => positions,
        CachePolicy::Window { budget, .. }
        | CachePolicy::Tova { budget, .. }
        | CachePolicy::H2o { budget, .. } => {
            budget.allowed(usize::try_from(positions).unwrap_or(usize::MAX)) as u64
        }
        CachePolicy::Dms { .. } => match cr {
            Some(cr) if cr.is_finite() && cr >= 1.0 => (positions as f64 / cr).floor() as u64,
            _ => positions.min(1),
        },
    }
}

/// `(parameter, value)` of a policy parameter that sizes a buffer and is
/// longer than `context` positions: a DMS `window` or a Quest `page_size`
/// beyond the context means nothing, and allocations sized by it abort.
pub fn policy_fits(policy: &CachePolicy, context: u64) -> Result<(), (&'static str, LimitError)> {
    let (name, value) = match policy {
        CachePolicy::Dms {
            window: Some(w), ..
        } => ("window", *w as u64),
        CachePolicy::Quest { page_size, .. } => ("page_size", *page_size as u64),
        _ => return Ok(()),
    };
    at_most(
        value,
        context,
        "the model's context length (max_position_embeddings)",
    )
    .map(|_| ())
    .map_err(|e| (name, e))
}

/// Memory this process may still use, in bytes: `MemAvailable` of
/// `/proc/meminfo`, lowered to the room left under a cgroup v2
/// `memory.max`. `None` where neither can be read (the memory check is then
/// skipped). `HYPERSCALE_AVAILABLE_MEMORY` (bytes) overrides both, for tests
/// and for machines whose accounting lies.
pub fn available_memory() -> Option<u64> {
    if let Ok(text) = std::env::var("HYPERSCALE_AVAILABLE_MEMORY") {
        return text.trim().parse().ok();
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb.saturating_mul(1024))
    });
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(current)) => max
            .trim()
            .parse::<u64>()
            .ok()
            .zip(current.trim().parse::<u64>().ok())
            .map(|(max, current)| max.saturating_sub(current)),
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Budget;

    #[test]
    fn seconds_refuses_what_a_duration_cannot_hold() {
        assert_eq!(seconds(1.5, 60.0), Ok(Duration::from_millis(1500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e20, 60.5] {
            assert!(seconds(bad, 60.0).is_err(), "{bad}");
        }
        assert_eq!(
            seconds(1e20, 60.0).unwrap_err().to_string(),
            "100000000000000000000 is not a number of seconds in (0, 60]"
        );
    }

    #[test]
    fn whole_seconds_fit_signal_alarm() {
        assert_eq!(whole_seconds(6.0, MAX_TEST_TIMEOUT_S), Ok(6));
        for bad in [0.0, 0.5, 1.5, 2147483648.0, 1e20, f64::NAN, -3.0] {
            assert!(whole_seconds(bad, MAX_TEST_TIMEOUT_S).is_err(), "{bad}");
        }
    }

    fn smollm2() -> ModelLimits {
        ModelLimits::of(&ModelConfig::smollm2_135m())
    }

    #[test]
    fn smollm2_costs_45_kib_of_kv_per_token() {
        let l = smollm2();
        // 30 layers × 3 KV heads × 64 dims × (K, V) × 4 bytes.
        assert_eq!(l.kv_bytes_per_token, 46_080);
        assert_eq!(l.logits_bytes, 4 * 49_152);
        assert_eq!(l.context, 8192);
    }

    #[test]
    fn batches_beyond_memory_or_context_are_refused() {
        let l = smollm2();
        let batch = |sequences, positions| BatchAsk {
            sequences,
            positions,
            kv_tokens_per_sequence: positions,
            shared_kv_tokens: 0,
            kv_on_host: true,
        };
        let gib = 1u64 << 30;
        assert!(l.check(&batch(8, 1024), Some(gib), "b").is_ok());
        let e = l.check(&batch(100_000_000, 25), Some(gib), "W = 1e8");
        assert!(matches!(e, Err(LimitError::Memory { .. })), "{e:?}");
        let e = l.check(&batch(1, 100_000_000), None, "L").unwrap_err();
        assert!(e.to_string().contains("context length of 8192"), "{e}");
        // Unknown memory: only the context is checked.
        assert!(l.check(&batch(100_000_000, 25), None, "b").is_ok());
        // Saturates instead of overflowing.
        assert_eq!(l.batch_bytes(&batch(u64::MAX, u64::MAX)), u64::MAX);
    }

    #[test]
    fn kept_entries_follow_the_policy() {
        let budget = Budget::Ratio {
            cr: 4.0,
            min_tokens: 8,
        };
        assert_eq!(kept_at_least(&CachePolicy::Dense {}, None, 100), 100);
        assert_eq!(
            kept_at_least(
                &CachePolicy::Tova {
                    budget,
                    granularity: Default::default()
                },
                None,
                100
            ),
            25
        );
        let quest = CachePolicy::Quest {
            page_size: 16,
            budget,
            granularity: Default::default(),
            dense_layers: 2,
        };
        assert_eq!(kept_at_least(&quest, None, 100), 100);
        let dms = CachePolicy::Dms {
            window: None,
            shifted: None,
        };
        assert_eq!(kept_at_least(&dms, Some(8.0), 100), 12);
        assert_eq!(kept_at_least(&dms, None, 100), 1);
    }
}
