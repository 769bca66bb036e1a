//! Budgets of a remote dense sample, computed (not measured) from its token
//! counts with the closed form of dense attention.
//!
//! With `R = layers × kv_heads` KV rows, a prompt of `P` tokens and `g`
//! generated tokens (the last one is never fed back):
//!
//! - prefill reads (causal): `R · P(P+1)/2`;
//! - decode step `t = 1 … g−1` feeds one token and reads every resident
//!   entry, `P + t` per row: `kv_reads = R · Σ (P + t) = R · ((g−1)·P + (g−1)g/2)`
//!   — reads per step = layers × kv_heads × resident tokens;
//! - peak resident entries: `R · (P + g − 1)`, bytes `× 2 (K, V) × head_dim ×
//!   bytes per element`;
//! - a batch of W samples shares the prompt: `R · (P + Σ_i (g_i − 1))`.
//!
//! These are what [`crate::kv::KvStore`] counts for the dense policy, so the
//! achieved CR of a remote dense sample is 1.

use crate::kv::KvStats;
use crate::sweep::ModelShape;

/// The computed budget of one dense sample.
///
/// # Shapes
/// Counts are (token × layer × KV head) entries; `bytes_per_element` is the
/// KV dtype's size (2 for bf16).
pub fn dense_stats(
    shape: ModelShape,
    prompt: u64,
    generated: u64,
    bytes_per_element: u64,
) -> KvStats {
    let rows = (shape.layers * shape.kv_heads) as u64;
    let steps = generated.saturating_sub(1);
    let resident = rows * (prompt + steps);
    KvStats {
        decode_reads: rows * (steps * prompt + steps * (steps + 1) / 2),
        prefill_reads: rows * prompt * (prompt + 1) / 2,
        resident,
        peak_resident: resident,
        peak_bytes: resident * 2 * shape.head_dim as u64 * bytes_per_element,
        positions: prompt + steps,
        row_len: Vec::new(),
    }
}

/// Peak resident entries of a batch sharing a prompt of `prompt` tokens.
pub fn dense_batch_peak(shape: ModelShape, prompt: u64, generated: &[u64]) -> u64 {
    let rows = (shape.layers * shape.kv_heads) as u64;
    rows * (prompt + generated.iter().map(|g| g.saturating_sub(1)).sum::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ModelShape = ModelShape {
        layers: 2,
        kv_heads: 3,
        head_dim: 8,
    };

    #[test]
    fn reads_are_the_sum_over_decode_steps_of_resident_entries() {
        // P = 4, g = 6: steps 1..=5 read 5+6+7+8+9 = 35 per row, 6 rows.
        let s = dense_stats(SHAPE, 4, 6, 2);
        let by_steps: u64 = (1..6).map(|t| 6 * (4 + t)).sum();
        assert_eq!(s.decode_reads, by_steps);
        assert_eq!(s.decode_reads, 6 * 35);
        assert_eq!(s.prefill_reads, 6 * (1 + 2 + 3 + 4));
        assert_eq!(s.peak_resident, 6 * 9);
        assert_eq!(s.peak_bytes, 6 * 9 * 2 * 8 * 2);
        // Dense: the achieved CR of these reads is exactly 1.
        let c = crate::generate::Completion {
            request: 0,
            sample: 0,
            text: String::new(),
            token_ids: vec![],
            finish_reason: crate::generate::FinishReason::Length,
            prompt_tokens: 4,
            generated_tokens: 6,
            kv: s,
            batch_peak_resident: 0,
            timing: crate::generate::Timing::default(),
        };
        assert_eq!(crate::sweep::sample::achieved_cr(&c, 6), Some(1.0));
        assert_eq!(dense_stats(SHAPE, 4, 0, 2).decode_reads, 0);
        // The shared prompt once, then each sequence's generated tokens
        // but its last (6 - 1, 1 - 1, 3 - 1), over 6 rows.
        let own: u64 = [6u64, 1, 3].iter().map(|g| g - 1).sum();
        assert_eq!(own, 7);
        assert_eq!(dense_batch_peak(SHAPE, 4, &[6, 1, 3]), 6 * (4 + own));
    }
}
