//! Where a decode step's time goes: wall time spent in named phases,
//! accumulated by scope guards placed in the hot paths and read by
//! `hyperscale bench decode --profile`.
//!
//! Off by default: a disabled [`scope`] is one relaxed atomic load. The
//! phases do not nest (a projection never runs inside the attention kernel),
//! so their sum is at most the step time and the remainder is everything
//! else: norms, RoPE, residual adds, embedding lookups, tensor allocation and
//! dispatch — the framework's share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// A profiled phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Linear layers, the lm head included (`model::layers::linear`).
    Projection = 0,
    /// The decode-attention kernel over the KV store (`kv::attention`).
    Attention = 1,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Turn accumulation on or off (process-wide).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Nanoseconds accumulated per phase since the last call, then reset.
pub fn take() -> [u64; 2] {
    [0, 1].map(|i| NANOS[i].swap(0, Ordering::Relaxed))
}

/// Times its own lifetime into `phase` when profiling is on.
#[must_use = "the phase is timed until the guard drops"]
pub struct Scope(Option<(Phase, Instant)>);

/// Start timing `phase` (a no-op guard when profiling is off).
#[inline]
pub fn scope(phase: Phase) -> Scope {
    if ENABLED.load(Ordering::Relaxed) {
        Scope(Some((phase, Instant::now())))
    } else {
        Scope(None)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some((phase, start)) = self.0.take() {
            let ns = start.elapsed().as_nanos() as u64;
            NANOS[phase as usize].fetch_add(ns, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_only_when_enabled() {
        // Only this test turns profiling on, but other tests run projections
        // and attention on other threads meanwhile: while it is on they may
        // add to the totals, so the checks hold whatever they add.
        assert!(scope(Phase::Projection).0.is_none(), "off: no timing");
        let _ = take();
        set_enabled(true);
        {
            let _s = scope(Phase::Attention);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        set_enabled(false);
        assert!(scope(Phase::Attention).0.is_none(), "off again: no timing");
        let t = take();
        assert!(t[1] >= 2_000_000, "{t:?}");
    }
}
