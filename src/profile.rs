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

/// Host↔device traffic counted while profiling is on: every upload and every
/// read-back the project makes on a cubecl backend, counted where it makes
/// them (uploads of token ids, RoPE tables, slot tables and masks;
/// read-backs of logits, DMS decisions and host-policy tensors). A read-back
/// waits for the device to finish the work queued before it, so each is a
/// host synchronisation. burn's own ops in a decode step move no data
/// between host and device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfers {
    pub uploads: u64,
    pub upload_bytes: u64,
    /// Read-backs, each a host synchronisation.
    pub reads: u64,
    pub read_bytes: u64,
}

static TRANSFERS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Whether `B` keeps its tensors in host memory (Flex): its `from_data` and
/// `into_data` are no transfers.
fn on_host<B: burn::prelude::Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<burn::backend::flex::Flex>()
}

fn add_transfer(kind: usize, bytes: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        TRANSFERS[kind].fetch_add(1, Ordering::Relaxed);
        TRANSFERS[kind + 1].fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Count an upload of `bytes` to a device.
pub fn upload(bytes: usize) {
    add_transfer(0, bytes);
}

/// Count a read-back of `bytes` from a device (a host synchronisation).
pub fn read(bytes: usize) {
    add_transfer(2, bytes);
}

/// [`upload`] when backend `B` is a device.
pub fn upload_to<B: burn::prelude::Backend>(bytes: usize) {
    if !on_host::<B>() {
        upload(bytes);
    }
}

/// [`read`] when backend `B` is a device.
pub fn read_from<B: burn::prelude::Backend>(bytes: usize) {
    if !on_host::<B>() {
        read(bytes);
    }
}

/// `t` read back to the host as f32 values (converted when stored in
/// another dtype), counted as a read when `B` is a device.
pub fn read_back<B: burn::prelude::Backend, const D: usize>(
    t: burn::prelude::Tensor<B, D>,
) -> Vec<f32> {
    let data = t.into_data();
    // The bytes as read (2 a value for half-precision logits).
    read_from::<B>(data.as_bytes().len());
    data.convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32 above")
}

/// Transfers counted since the last call, then reset.
pub fn take_transfers() -> Transfers {
    let [uploads, upload_bytes, reads, read_bytes] =
        [0, 1, 2, 3].map(|i| TRANSFERS[i].swap(0, Ordering::Relaxed));
    Transfers {
        uploads,
        upload_bytes,
        reads,
        read_bytes,
    }
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
