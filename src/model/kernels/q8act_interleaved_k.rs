//! The K-quant (Q4_K, Q6_K) part of [`super::q8act_interleaved`]'s
//! layout: building it from a weight's super-blocks.
//!
//! # Layout
//! A K-quant super-block is eight 32-value sub-blocks; the layout keeps the
//! sub-blocks as its blocks `b` (`blocks = cols / 32`), so the kernels run
//! them as they run Q4_1's blocks. Per group `g`:
//! - `d`: `[groups, blocks / 8, LANES]` the super-block's `d` (f16 widened
//!   exactly to f32); Q4_K also `m`: the super-block's `dmin`, same shape.
//! - `sc`: Q4_K `[groups, blocks, LANES]` each row's 6-bit sub-block
//!   scale; Q6_K `[groups, blocks, 2, LANES]` each row's int8 scales of
//!   values `0 .. 16` and `16 .. 32` (as bytes). Q4_K's `mk`:
//!   `[groups, blocks, LANES]` the 6-bit sub-block minima.
//! - `qs`: per (group, block) the low four bits of each value in the Q4
//!   chunks (4 × 32 bytes: chunk `j`, lane `l` holds row `8g + l`'s packed
//!   bytes `4j .. 4j + 4`, packed byte `i` = value `i` | value `i + 16` << 4);
//!   Q6_K adds 2 × 32 bytes of high bits: chunk `c`, lane `l`, byte `t`
//!   holds at bits `2k'` the high two bits of value `4(4c + k') + t`, so
//!   weight vector `k` (values `4k .. 4k + 4` of every lane) reads its
//!   high bits at chunk `k / 4`, shift `2·(k mod 4)`.
//!
//! The values are the formats' unsigned ones (Q4_K nibbles 0..16, Q6_K
//! 0..64); the kernels apply the sub-scales, Q6_K's `− 32` and Q4_K's
//! minimum `−(dmin·m)` exactly as [`super::q8act::sub_block`] defines them.

use crate::model::formats::gguf::GgmlType;
use crate::model::formats::gguf::quant::scale_min_k4;

use super::block_gemv::BlockWeight;
use super::q8act_interleaved::{Interleaved, LANES};

/// Values per sub-block.
const QK: usize = 32;

/// Sub-block `k`'s 32 unsigned values of one K-quant super-block `blk`
/// (before scales, minima and Q6_K's offset).
fn values(kind: GgmlType, blk: &[u8], k: usize) -> [u8; QK] {
    if kind == GgmlType::Q4K {
        let qs = &blk[16 + 32 * (k / 2)..][..QK];
        std::array::from_fn(|j| (qs[j] >> (4 * (k % 2))) & 0x0F)
    } else {
        let (h, kk) = (k / 4, k % 4);
        let ql = &blk[h * 64 + 32 * (kk % 2)..][..QK];
        let qh = &blk[128 + h * 32..][..QK];
        std::array::from_fn(|j| {
            ((ql[j] >> (4 * (kk / 2))) & 0x0F) | (((qh[j] >> (2 * kk)) & 0x03) << 4)
        })
    }
}

impl Interleaved {
    /// The interleaved copy of a Q4_K or Q6_K weight's whole groups
    /// (module docs); `w` has at least [`LANES`] rows.
    pub(super) fn new_k(w: &BlockWeight) -> Self {
        let q6 = w.kind == GgmlType::Q6K;
        assert!(
            q6 || w.kind == GgmlType::Q4K,
            "q8act: {} is no K-quant",
            w.kind
        );
        let size = if q6 { 210 } else { 144 };
        let (groups, blocks) = (w.rows / LANES, w.cols / QK);
        let supers = blocks / 8;
        let row_bytes = supers * size;
        assert_eq!(w.row_bytes(), row_bytes, "q8act: weight row bytes");
        let chunk_bytes = Self::chunks(w.kind) * 32;
        let mut d = Vec::with_capacity(groups * supers * LANES);
        let mut m = Vec::with_capacity(if q6 { 0 } else { groups * supers * LANES });
        let mut sc = Vec::with_capacity(groups * blocks * LANES * if q6 { 2 } else { 1 });
        let mut mk = Vec::with_capacity(if q6 { 0 } else { groups * blocks * LANES });
        let mut qs = Vec::with_capacity(groups * blocks * chunk_bytes);
        let f16 = |b: &[u8], i: usize| half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        for g in 0..groups {
            for s in 0..supers {
                let blk = |l: usize| {
                    let at = (g * LANES + l) * row_bytes + s * size;
                    &w.bytes[at..at + size]
                };
                for l in 0..LANES {
                    if q6 {
                        d.push(f16(blk(l), 208));
                    } else {
                        d.push(f16(blk(l), 0));
                        m.push(f16(blk(l), 2));
                    }
                }
                for k in 0..8 {
                    let vals: [[u8; QK]; LANES] =
                        std::array::from_fn(|l| values(w.kind, blk(l), k));
                    if q6 {
                        for half in 0..2 {
                            for l in 0..LANES {
                                sc.push(blk(l)[192 + 8 * (k / 4) + 2 * (k % 4) + half]);
                            }
                        }
                    } else {
                        for l in 0..LANES {
                            let (s6, m6) = scale_min_k4(k, &blk(l)[4..16]);
                            sc.push(s6);
                            mk.push(m6);
                        }
                    }
                    for j in 0..4 {
                        for v in &vals {
                            for t in 0..4 {
                                let i = 4 * j + t;
                                qs.push((v[i] & 0x0F) | ((v[i + 16] & 0x0F) << 4));
                            }
                        }
                    }
                    if q6 {
                        for c in 0..2 {
                            for v in &vals {
                                for t in 0..4 {
                                    let byte = (0..4).fold(0u8, |acc, kp| {
                                        acc | ((v[4 * (4 * c + kp) + t] >> 4) << (2 * kp))
                                    });
                                    qs.push(byte);
                                }
                            }
                        }
                    }
                }
            }
        }
        Self {
            kind: w.kind,
            groups,
            blocks,
            d,
            m,
            qs,
            h: Vec::new(),
            sc,
            mk,
        }
    }
}
