//! Chunked prefill: under which cache policies the real models may
//! prefill a prompt in pieces between decode steps
//! ([`super::SchedulerOptions::prefill_chunk`]).
//!
//! A prompt may be cut only where cutting it changes nothing a record
//! holds: the last prompt row's logits and every entry the store keeps
//! (so every later decode step), the sequence's counted reads and peak,
//! bit for bit. Checked on the CPU (`tests/model/chunked_prefill.rs`,
//! tiny Qwen3 fixtures, which fails if a policy allowed here is not
//! chunk-invariant); today no policy is:
//!
//! - **DMS**: the counters and kept entries are the same (its prefill
//!   attends under the closed-form `visible_until` mask and writes what the
//!   next query still sees), but the logits are not bit-identical (within
//!   1e-5): a piece's projections and MLP run as smaller matrix products
//!   and its attention reads the kept entries then the piece, so the sums
//!   round differently, and a sampled token may flip.
//! - **dense, Quest**: a sequence holding entries continues token by token
//!   through decode: other kernels, and its reads are counted as decode
//!   reads.
//! - **window, TOVA, H2O**: a piece's queries see only what the policy kept
//!   after the pieces before it, where the whole prompt's queries see every
//!   earlier prompt token: other outputs and fewer prefill reads.
//!
//! So the scheduler's chunking ([`super::Decoder::chunks_prefill`]) runs
//! on models that declare it (the scheduler's toy decoder under DMS); for
//! the real models `prefill_chunk` is ignored until their prefill is made
//! chunk-invariant.

use crate::kv::ResolvedPolicy;

/// Whether the real models prefill a prompt in pieces under `policy`
/// without changing a record (see the module docs): no policy yet.
pub fn chunks_prefill(policy: &ResolvedPolicy) -> bool {
    match policy {
        ResolvedPolicy::Dms(_)
        | ResolvedPolicy::Dense
        | ResolvedPolicy::Quest { .. }
        | ResolvedPolicy::Window { .. }
        | ResolvedPolicy::Tova { .. }
        | ResolvedPolicy::H2o { .. } => false,
    }
}
