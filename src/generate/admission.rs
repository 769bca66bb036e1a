//! Admission by KV memory: what a request may hold in the store at most,
//! so the scheduler admits requests while the bounds of those in flight fit
//! a byte budget ([`super::SchedulerOptions::kv_memory`]).
//!
//! Per KV row, a request of prompt P, W samples and L new tokens each
//! holds at most, in entries:
//!
//! - policies that never evict (dense, Quest):
//!   `P + W × (L − 1) + W × (block − 1) + page bounds`: the prompt shared by
//!   the W forks (counted once), each sample's decode entries (its last
//!   token is sampled, never fed), one copy-on-write of the prompt's last,
//!   shared, partial block per sample, and one entry's worth per block for
//!   Quest's page bounds (`⌈P / block⌉ + W × (⌈(L + block − 2) / block⌉ +
//!   1)` blocks, counted under dense too: an overestimate);
//! - policies that evict (window, TOVA, H2O, DMS): `W × (P + L − 1)`. An
//!   eviction from a block the forks share copies that block, so the
//!   prompt is no longer held once; but every block's fill is entries of
//!   the rows holding it, so the store holds at most the Σ of the samples'
//!   row lengths, each at most its positions.
//!
//! Bytes are entries × [`KvStore::entry_bytes`]. The bounds never
//! undershoot, so the requests in flight never outgrow their reservations
//! and nothing is ever preempted. Tighter bounds for compressed policies
//! (their budgets; DMS's measured rate, with preemption when it outgrows a
//! guess) are not used yet.

use super::Request;
use crate::kv::{KvStore, ResolvedPolicy};

/// Bytes `req` may hold at most in `store` (see the module docs).
pub fn request_bound(store: &KvStore, req: &Request) -> u64 {
    let shape = store.shape();
    let rows = (shape.layers * shape.kv_heads) as u64;
    let block = store.block_size().max(1) as u64;
    let p = req.prompt.len() as u64;
    let w = req.samples as u64;
    let decode = req.max_tokens.saturating_sub(1) as u64;
    let entries = match store.policy() {
        ResolvedPolicy::Dense | ResolvedPolicy::Quest { .. } => {
            let per_sample = decode + block - 1;
            let blocks = p.div_ceil(block) + w * (per_sample.div_ceil(block) + 1);
            p + w * per_sample + blocks
        }
        ResolvedPolicy::Window { .. }
        | ResolvedPolicy::Tova { .. }
        | ResolvedPolicy::H2o { .. }
        | ResolvedPolicy::Dms(_) => (w * (p + decode)).max(p),
    };
    rows.saturating_mul(entries)
        .saturating_mul(store.entry_bytes())
}
