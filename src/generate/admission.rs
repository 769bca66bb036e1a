//! Admission by KV memory: what a request may hold in the store, so the
//! scheduler admits requests while those in flight and the next one fit a
//! byte budget ([`super::SchedulerOptions::kv_memory`]).
//!
//! A request of prompt P, W samples and L new tokens feeds its samples'
//! tokens at positions `P .. P + L − 2` (the last token is sampled, never
//! fed), so each sample has seen at most `n = P + L − 1` positions (`n = P`
//! when L ≤ 1). Its bound, in entries summed over the KV rows (layers ×
//! KV heads; `rows` below):
//!
//! - **policies that never evict** (dense, Quest): `rows × (P + W × (n −
//!   P + block − 1)) + page bounds`: the prompt shared by the W forks
//!   (counted once), each sample's decode entries, one copy-on-write of the
//!   prompt's last, shared, partial block per sample, and one entry's worth
//!   per block for Quest's page bounds (`⌈P / block⌉ + W × (⌈(n − P + block
//!   − 1) / block⌉ + 1)` blocks per row, counted under dense too: an
//!   overestimate).
//! - **window, TOVA, H2O** (a budget `keep(positions)`, non-decreasing and
//!   growing by at most one per position): the prefill writes only the
//!   `keep(P)` entries it keeps; a window step evicts before it writes, so
//!   a row never holds more than `keep(n)`; a TOVA/H2O step writes the new
//!   entry of every row of one layer (of every sequence in the step), then
//!   evicts, so inside its last step one layer's rows hold `keep(n − 1) +
//!   1` while the layers already done hold `keep(n)`. Per sample:
//!   `rows × keep(n) + kv_heads × (keep(n − 1) + 1 − keep(n))` (the second
//!   term for TOVA/H2O with L ≥ 2 only), times W. A block shared by the
//!   forks is counted once by the store, but its fill is entries of each
//!   row holding it, so the store never holds more than the Σ of the rows'
//!   lengths; the prompt is shared only until the first write or eviction
//!   touches its blocks, so the bound is reached (up to the prompt blocks
//!   no sample ever touches) by the last step when every sample runs to L.
//!   A budget that never binds (`keep(n) = n`) evicts nothing: the lower of
//!   this and the never-evicting bound holds.
//! - **DMS**: its evictions follow learned decisions, so it has no fixed
//!   budget; [`request_bound`] gives it the worst case, `W × n` entries
//!   per row. The scheduler admits it at a guess instead ([`dms_guess`]:
//!   its positions to come × the measured [`KeepRate`]) and preempts when
//!   the guess was wrong (see [`super::scheduler`]).
//!
//! Bytes are entries × [`KvStore::entry_bytes`].

use super::Request;
use crate::kv::{Budget, KvStore, ResolvedPolicy};

/// Bytes `req` may hold at most in `store` (see the module docs). Never
/// undershoots what the store measures for it.
pub fn request_bound(store: &KvStore, req: &Request) -> u64 {
    let shape = store.shape();
    let rows = (shape.layers * shape.kv_heads) as u64;
    let kv_heads = shape.kv_heads as u64;
    let block = store.block_size().max(1) as u64;
    let p = req.prompt.len() as u64;
    let w = req.samples as u64;
    let decode = req.max_tokens.saturating_sub(1) as u64;
    let n = p + decode;
    // Never evicting: the prompt once, each sample's decode entries and
    // one copied block.
    let kept = |page_bounds: bool| {
        let per_sample = decode + block - 1;
        let blocks = p.div_ceil(block) + w * (per_sample.div_ceil(block) + 1);
        rows * (p + w * per_sample + if page_bounds { blocks } else { 0 })
    };
    let budgeted = |budget: Budget, inside_step: bool| {
        let keep = |positions: u64| budget.allowed(positions as usize) as u64;
        let transient = if inside_step && decode > 0 {
            kv_heads * (keep(n - 1) + 1).saturating_sub(keep(n))
        } else {
            0
        };
        let evicting = w * (rows * keep(n) + transient);
        if keep(n) >= n {
            evicting.min(kept(false))
        } else {
            evicting
        }
    };
    let entries = match *store.policy() {
        ResolvedPolicy::Dense | ResolvedPolicy::Quest { .. } => kept(true),
        ResolvedPolicy::Window { budget, .. } => budgeted(budget, false),
        ResolvedPolicy::Tova { budget, .. } | ResolvedPolicy::H2o { budget, .. } => {
            budgeted(budget, true)
        }
        ResolvedPolicy::Dms(_) => rows * (w * n).max(p),
    };
    entries.saturating_mul(store.entry_bytes())
}

/// DMS's measured keep rate: entries kept per generated position, per KV
/// row, summed over samples (the scheduler measures every sample of the
/// run: each finished one before it is released, each live one now).
/// A sample's entries now minus those it started with (what the prefill
/// kept), over the positions it generated × rows; the entries its pending
/// window holds count as kept, so early measures run high.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepRate {
    kept: i64,
    positions: u64,
}

impl KeepRate {
    /// A sample holding `now` entries (Σ over its rows) that started with
    /// `start`, over `row_positions` generated positions × rows.
    pub fn measured(now: u64, start: u64, row_positions: u64) -> Self {
        Self {
            kept: now as i64 - start as i64,
            positions: row_positions,
        }
    }

    pub fn add(&mut self, other: KeepRate) {
        self.kept += other.kept;
        self.positions += other.positions;
    }

    pub fn merged(mut self, other: KeepRate) -> Self {
        self.add(other);
        self
    }

    /// Entries kept per position, in [0, 1]; `prior` (1 if `None`) before
    /// any position was measured.
    pub fn rate(&self, prior: Option<f64>) -> f64 {
        let r = if self.positions == 0 {
            prior.unwrap_or(1.0)
        } else {
            self.kept as f64 / self.positions as f64
        };
        if r.is_finite() {
            r.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// DMS's guess for a request not yet admitted: it holds nothing yet, and
/// its positions to come (the prompt once, `L − 1` per sample) keep `rate`
/// entries each, per row.
pub fn dms_guess(store: &KvStore, req: &Request, rate: f64) -> u64 {
    let shape = store.shape();
    let rows = (shape.layers * shape.kv_heads) as f64;
    let positions = req.prompt.len() + req.samples * req.max_tokens.saturating_sub(1);
    let entries = (positions as f64 * rows * rate).ceil() as u64;
    entries.saturating_mul(store.entry_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::engine::tests::{Letters, request};
    use crate::generate::generate;
    use crate::generate::testing::{Layered, store};
    use crate::kv::{Budget, TovaGranularity};

    /// Every budgeted policy, on requests whose budgets bind from the
    /// prompt, later, or never, at two block sizes: the store's measured
    /// peak (one request alone, every sample to L) never exceeds the bound,
    /// and reaches it up to the prompt blocks no sample ever wrote into.
    #[test]
    fn budgeted_bounds_are_exact_upper_bounds() {
        let policies = [
            ResolvedPolicy::Window {
                sink: 1,
                budget: Budget::Tokens { tokens: 4 },
            },
            ResolvedPolicy::Window {
                sink: 2,
                budget: Budget::Ratio {
                    cr: 2.0,
                    min_tokens: 3,
                },
            },
            ResolvedPolicy::Tova {
                budget: Budget::Tokens { tokens: 5 },
                granularity: TovaGranularity::Layer,
            },
            ResolvedPolicy::Tova {
                budget: Budget::Ratio {
                    cr: 3.0,
                    min_tokens: 4,
                },
                granularity: TovaGranularity::KvHead,
            },
            ResolvedPolicy::H2o {
                recent: 2,
                budget: Budget::Tokens { tokens: 5 },
            },
            ResolvedPolicy::H2o {
                recent: 2,
                budget: Budget::Ratio {
                    cr: 2.0,
                    min_tokens: 3,
                },
            },
            ResolvedPolicy::Tova {
                budget: Budget::Tokens { tokens: 1000 },
                granularity: TovaGranularity::Layer,
            },
        ];
        let mut report = Vec::new();
        for policy in &policies {
            for block in [4, 32] {
                for (p, w, l) in [(3, 3, 20), (9, 2, 12), (14, 3, 25), (2, 1, 1), (6, 2, 2)] {
                    let mut req = request(w, 1, l);
                    req.prompt = (0..p as u32).map(|t| (t * 5 + 2) % 11).collect();
                    let mut s = store(policy.clone(), block);
                    let out = generate(
                        &Layered,
                        &Letters,
                        &mut s,
                        std::slice::from_ref(&req),
                        |_| {},
                    );
                    assert!(out.iter().all(|c| c.generated_tokens == l));
                    let peak = s.peak_resident() * s.entry_bytes();
                    let bound = request_bound(&s, &req);
                    let shape = s.shape();
                    let rows = (shape.layers * shape.kv_heads) as u64;
                    // Prompt blocks (after the prefill keeps what it keeps)
                    // may stay shared by the W forks.
                    let slack = rows
                        * (w as u64 - 1)
                        * (p as u64).div_ceil(block as u64).saturating_sub(1)
                        * block as u64
                        * s.entry_bytes();
                    report.push(format!(
                        "{} block {block} P {p} W {w} L {l}: peak {peak} bound {bound}",
                        policy.method()
                    ));
                    assert!(peak <= bound, "{policy:?} {}", report.last().unwrap());
                    assert!(
                        bound - peak <= slack,
                        "{policy:?} {}",
                        report.last().unwrap()
                    );
                }
            }
        }
        eprintln!("{}", report.join("\n"));
    }
}
