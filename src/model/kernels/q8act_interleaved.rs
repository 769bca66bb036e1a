//! The q8act weight layout with [`LANES`] weight rows interleaved per
//! block (llama.cpp's "repacked" CPU layout, `block_q4_0x8` and its
//! kin), and the x86 kernels that read it.
//!
//! # Layout
//! For a Q4_0 / Q4_1 / Q5_0 / Q8_0 weight, rows `8g .. 8g + 8` (group `g`) and
//! 32-value block `b` are stored together: the eight rows' scales `d` (and
//! Q4_1's minima `m`) widened to f32 (exactly), then the quant bytes in
//! 32-byte chunks, chunk `j`'s lane `l` (bytes `4l .. 4l + 4`) holding
//! row `8g + l`'s quant bytes `4j .. 4j + 4` (Q4: 4 chunks, byte `i` of a
//! row holds values `i` and `i + 16` in its low and high nibble; Q8_0: 8
//! chunks; Q5_0 keeps its nibbles so and adds its fifth bits as eight
//! 32-bit words per (group, block), word `k`'s bit `4l + t` the fifth bit
//! of row `8g + l`'s value `4k + t`, a byte mask for weight vector `k`). So one 256-bit `vpdpbusd` (VNNI) or `vpmaddubsw` (AVX2) against
//! an activation word broadcast to every lane takes four values of eight
//! rows at once: no horizontal sums, and the f32 part runs with the lanes
//! the eight output features. Rows past the last whole group (fewer than
//! eight) stay with [`super::q8act`]'s row kernels. Q4_K and Q6_K keep
//! their 32-value sub-blocks as blocks in the same Q4 chunks, with their
//! scales, minima and Q6_K's high bits as [`super::q8act_interleaved_k`]
//! describes.
//!
//! # Numerics
//! The kernels compute exactly the integers and f32 operations that
//! [`super::q8act`]'s module docs define, in the same order: per output
//! lane `I_b = Σ w·q` (exact: Q4_0 as `Σ nibble·q − 8·Σq`, Q5_0 as
//! `Σ value·q − 16·Σq`, Q8_0 on VNNI as
//! `Σ (w + 128)·q − 128·Σq`, Q4_K as `sc·Σ nibble·q`, Q6_K as
//! `a·(Σ_lo value·q − 32·Σ_lo q) + b·(Σ_hi value·q − 32·Σ_hi q)` over the
//! values `0 .. 16` and `16 .. 32` with their scales `a`, `b`),
//! `A[b mod 8] = fma(dw·dx, I_b, A)`, then
//! `fma(mw, s_b, A)` for Q4_1 and Q4_K (`mw = −(dmin·m_b)`, the same f32
//! product), and the same final sum of the eight
//! accumulators. Their outputs are therefore bit for bit those of the
//! portable definition (`q8act::tests::bit_identical_across_paths_and_batch_compositions`).

use crate::model::formats::gguf::GgmlType;

use super::block_gemv::BlockWeight;

/// Weight rows per interleaved group (the f32 lanes of one 256-bit vector).
pub const LANES: usize = 8;

/// Values per block.
const QK: usize = 32;

/// A weight's whole [`LANES`]-row groups, interleaved (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Interleaved {
    /// Q4_0, Q4_1, Q5_0, Q8_0, Q4_K or Q6_K.
    pub kind: GgmlType,
    /// Whole groups (`rows / LANES`).
    pub groups: usize,
    /// 32-value blocks per row.
    pub blocks: usize,
    /// `[groups, blocks, LANES]` scales `d` (K-quants: `[groups,
    /// blocks / 8, LANES]`, the super-blocks' `d`).
    pub d: Vec<f32>,
    /// `[groups, blocks, LANES]` minima `m` (Q4_1; Q4_K: `[groups,
    /// blocks / 8, LANES]` the super-blocks' `dmin`; empty otherwise).
    pub m: Vec<f32>,
    /// `[groups, blocks, chunk_bytes]` quants, chunked as the module docs say.
    pub qs: Vec<u8>,
    /// `[groups, blocks, 8]` Q5_0's fifth bits (empty otherwise): word `k`
    /// has bit `4l + t` set where row `8g + l`'s value `4k + t` has it,
    /// so it masks weight vector `k`'s bytes.
    pub h: Vec<u32>,
    /// K-quants' sub-block scales: Q4_K `[groups, blocks, LANES]` (6-bit),
    /// Q6_K `[groups, blocks, 2, LANES]` (int8 as bytes; values `0 .. 16`,
    /// then `16 .. 32`); empty otherwise.
    pub sc: Vec<u8>,
    /// Q4_K's `[groups, blocks, LANES]` 6-bit sub-block minima (empty
    /// otherwise).
    pub mk: Vec<u8>,
}

impl Interleaved {
    /// Whether `kind` has an interleaved layout.
    pub fn reads(kind: GgmlType) -> bool {
        matches!(
            kind,
            GgmlType::Q4_0
                | GgmlType::Q4_1
                | GgmlType::Q5_0
                | GgmlType::Q8_0
                | GgmlType::Q4K
                | GgmlType::Q6K
        )
    }

    /// The interleaved copy of `w`'s whole groups; `None` when `w`'s format
    /// has none or `w` has fewer than [`LANES`] rows.
    pub fn new(w: &BlockWeight) -> Option<Self> {
        if !Self::reads(w.kind) || w.rows < LANES {
            return None;
        }
        if matches!(w.kind, GgmlType::Q4K | GgmlType::Q6K) {
            return Some(Self::new_k(w));
        }
        let (size, at) = match w.kind {
            GgmlType::Q4_0 => (18, 2),
            GgmlType::Q4_1 => (20, 4),
            GgmlType::Q5_0 => (22, 6),
            _ => (34, 2),
        };
        let (groups, blocks) = (w.rows / LANES, w.cols / QK);
        let row_bytes = blocks * size;
        assert_eq!(w.row_bytes(), row_bytes, "q8act: weight row bytes");
        let chunks = Self::chunks(w.kind);
        let mut d = Vec::with_capacity(groups * blocks * LANES);
        let mut m = Vec::new();
        let mut h = Vec::new();
        let mut qs = Vec::with_capacity(groups * blocks * chunks * 32);
        let f16 = |b: &[u8], i: usize| half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        for g in 0..groups {
            for b in 0..blocks {
                let blk = |l: usize| {
                    let at = (g * LANES + l) * row_bytes + b * size;
                    &w.bytes[at..at + size]
                };
                for l in 0..LANES {
                    d.push(f16(blk(l), 0));
                    if w.kind == GgmlType::Q4_1 {
                        m.push(f16(blk(l), 2));
                    }
                }
                for j in 0..chunks {
                    for l in 0..LANES {
                        qs.extend_from_slice(&blk(l)[at + 4 * j..at + 4 * j + 4]);
                    }
                }
                if w.kind == GgmlType::Q5_0 {
                    let qh: [u32; LANES] = std::array::from_fn(|l| {
                        let b = blk(l);
                        u32::from_le_bytes([b[2], b[3], b[4], b[5]])
                    });
                    for k in 0..8 {
                        let mut word = 0u32;
                        for (l, q) in qh.iter().enumerate() {
                            word |= ((q >> (4 * k)) & 0xF) << (4 * l);
                        }
                        h.push(word);
                    }
                }
            }
        }
        Some(Self {
            kind: w.kind,
            groups,
            blocks,
            d,
            m,
            qs,
            h,
            sc: Vec::new(),
            mk: Vec::new(),
        })
    }

    /// 32-byte chunks per (group, block): 4 for Q4 (and Q4_K), 6 for Q6_K
    /// (4 of low nibbles, 2 of high bits), 8 for Q8_0.
    pub(super) fn chunks(kind: GgmlType) -> usize {
        match kind {
            GgmlType::Q8_0 => 8,
            GgmlType::Q6K => 6,
            _ => 4,
        }
    }

    /// Quant bytes per (group, block).
    pub fn chunk_bytes(&self) -> usize {
        Self::chunks(self.kind) * 32
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    //! The interleaved kernels; each gives exactly the portable results.

    use std::arch::x86_64::*;

    use super::{Interleaved, LANES, QK};
    use crate::model::formats::gguf::GgmlType;
    use crate::model::kernels::gemv::MAX_ROWS;
    use crate::model::kernels::q8act::QuantRows;

    const F_Q4_0: u8 = 0;
    const F_Q4_1: u8 = 1;
    const F_Q5_0: u8 = 2;
    const F_Q8_0: u8 = 3;
    const F_Q4K: u8 = 4;
    const F_Q6K: u8 = 5;

    /// Eight bytes as i32 lanes, zero-extended (Q4_K's 6-bit fields).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn u8x8(b: &[u8]) -> __m256i {
        let v = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v))
    }

    /// Eight bytes as i32 lanes, sign-extended (Q6_K's int8 scales).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn i8x8(b: &[u8]) -> __m256i {
        let v = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load32(b: &[u8]) -> __m256i {
        assert!(b.len() >= 32);
        // SAFETY: 32 bytes lie inside `b` (asserted).
        unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load_ps(v: &[f32]) -> __m256 {
        assert!(v.len() >= 8);
        // SAFETY: 8 floats lie inside `v` (asserted).
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    }

    /// Activation bytes `4k .. 4k + 4` of `x` in every lane.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn word(x: &[i8; QK], k: usize) -> __m256i {
        let b = [x[4 * k], x[4 * k + 1], x[4 * k + 2], x[4 * k + 3]];
        _mm256_set1_epi32(i32::from_le_bytes(b.map(|v| v as u8)))
    }

    /// The eight weight vectors of one (group, block): vector `k` holds
    /// each lane's values `4k .. 4k + 4` (Q4 and Q4_K as nibbles 0..16,
    /// Q6_K as values 0..64, Q8_0 as signed bytes).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn unpack<const F: u8>(q: &[u8]) -> [__m256i; 8] {
        if F == F_Q8_0 {
            std::array::from_fn(|k| load32(&q[32 * k..]))
        } else {
            let m = _mm256_set1_epi8(0x0F);
            let v: [__m256i; 4] = std::array::from_fn(|j| load32(&q[32 * j..]));
            let nib: [__m256i; 8] = std::array::from_fn(|k| {
                if k < 4 {
                    _mm256_and_si256(v[k], m)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16::<4>(v[k - 4]), m)
                }
            });
            if F != F_Q6K {
                return nib;
            }
            // High two bits of vector k: chunk 4 + k / 4, shift 2·(k mod 4)
            // (values ≤ 3 shifted by 4 stay inside their byte).
            let hc: [__m256i; 2] = std::array::from_fn(|c| load32(&q[128 + 32 * c..]));
            let m3 = _mm256_set1_epi8(0x03);
            std::array::from_fn(|k| {
                let shift = _mm_cvtsi32_si128(2 * (k % 4) as i32);
                let hi = _mm256_and_si256(_mm256_srl_epi16(hc[k / 4], shift), m3);
                _mm256_or_si256(nib[k], _mm256_slli_epi16::<4>(hi))
            })
        }
    }

    /// Q5_0's fifth bits (`h`, the module's word per vector) added to the
    /// nibble vectors `w` as 16s, in AVX2.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn fifth_bits_avx2(w: [__m256i; 8], h: &[u32]) -> [__m256i; 8] {
        assert!(h.len() >= 8);
        // Byte p of a vector reads bit p of its word: byte p / 8, bit p % 8.
        let ctrl = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let probe = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
        std::array::from_fn(|k| {
            let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(h[k] as i32), ctrl);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, probe), probe);
            _mm256_add_epi8(w[k], _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
        })
    }

    /// One kernel per path. `$prep(w, h)` finishes the unpacked weight
    /// vectors (`h`: Q5_0's fifth-bit words); `$dot(w, &x, sum)` gives the
    /// eight lanes' exact `I_b` from the unpacked weight vectors `w`, the
    /// activation block `x` and its `Σq` (K-quants: Q4_K's `Σ nibble·q`;
    /// Q6_K's `(Σ_lo value·q, Σ_hi value·q)` over vectors `0..4` and
    /// `4..8`, otherwise the second vector is unused).
    macro_rules! kernels {
        ($entry:ident, $group:ident, $features:literal, $prep:expr, $dot:expr) => {
            /// `yt[k·n + r]` for weight rows `k` of groups `g0 ..` (as many
            /// as `yt` holds) and activation rows `r` of `rows`.
            #[target_feature(enable = $features)]
            pub(in crate::model::kernels) fn $entry(
                il: &Interleaved,
                g0: usize,
                rows: &QuantRows,
                yt: &mut [f32],
            ) {
                match il.kind {
                    GgmlType::Q4_0 => $group::<F_Q4_0>(il, g0, rows, yt),
                    GgmlType::Q4_1 => $group::<F_Q4_1>(il, g0, rows, yt),
                    GgmlType::Q5_0 => $group::<F_Q5_0>(il, g0, rows, yt),
                    GgmlType::Q8_0 => $group::<F_Q8_0>(il, g0, rows, yt),
                    GgmlType::Q4K => $group::<F_Q4K>(il, g0, rows, yt),
                    GgmlType::Q6K => $group::<F_Q6K>(il, g0, rows, yt),
                    other => unreachable!("no interleaved {other}"),
                }
            }

            #[target_feature(enable = $features)]
            #[inline]
            fn $group<const F: u8>(il: &Interleaved, g0: usize, rows: &QuantRows, yt: &mut [f32]) {
                let (n, nb) = (rows.n, rows.blocks);
                assert!((1..=MAX_ROWS).contains(&n) && nb == il.blocks);
                assert!(yt.len() % (LANES * n) == 0);
                let count = yt.len() / (LANES * n);
                assert!(g0 + count <= il.groups);
                assert!(rows.q.len() >= n * nb * QK && rows.d.len() >= n * nb);
                let kq = F == F_Q4K || F == F_Q6K;
                assert!(!kq || nb % 8 == 0, "K-quant rows are whole super-blocks");
                let cb = il.chunk_bytes();
                let prep = $prep;
                let dot = $dot;
                let mut acc = [[_mm256_setzero_ps(); 8]; MAX_ROWS];
                for gi in 0..count {
                    let g = g0 + gi;
                    for a in acc[..n].iter_mut() {
                        *a = [_mm256_setzero_ps(); 8];
                    }
                    // One activation row keeps its eight accumulators in
                    // registers: `one[j]` is `A[(b + j) mod 8]` at block `b`
                    // (rotated after each block), the same sums in the
                    // same order as `acc[0][b mod 8]`.
                    let mut one = [_mm256_setzero_ps(); 8];
                    for b in 0..nb {
                        let at = g * nb + b;
                        let h = if F == F_Q5_0 {
                            &il.h[at * 8..(at + 1) * 8]
                        } else {
                            &[]
                        };
                        let w = prep(unpack::<F>(&il.qs[at * cb..(at + 1) * cb]), h);
                        // K-quants: the super-block's scalars.
                        let sup = (g * nb + b) / 8;
                        let dw = load_ps(&il.d[if kq { sup } else { at } * LANES..]);
                        let mw = match F {
                            F_Q4_1 => load_ps(&il.m[at * LANES..]),
                            // −(dmin·m_b), the f32 product the definition takes.
                            F_Q4K => _mm256_xor_ps(
                                _mm256_mul_ps(
                                    load_ps(&il.m[sup * LANES..]),
                                    _mm256_cvtepi32_ps(u8x8(&il.mk[at * LANES..])),
                                ),
                                _mm256_set1_ps(-0.0),
                            ),
                            _ => _mm256_setzero_ps(),
                        };
                        let (sa, sb) = match F {
                            F_Q4K => (u8x8(&il.sc[at * LANES..]), _mm256_setzero_si256()),
                            F_Q6K => (
                                i8x8(&il.sc[2 * at * LANES..]),
                                i8x8(&il.sc[(2 * at + 1) * LANES..]),
                            ),
                            _ => (_mm256_setzero_si256(), _mm256_setzero_si256()),
                        };
                        let update = |r: usize, a: __m256| -> __m256 {
                            let i = r * nb + b;
                            let x: &[i8; QK] =
                                rows.q[i * QK..(i + 1) * QK].try_into().expect("QK quants");
                            let (lo, hi) = dot(&w, x, rows.sum[i]);
                            let ints = match F {
                                F_Q4K => _mm256_mullo_epi32(lo, sa),
                                F_Q6K => {
                                    let sl = rows.sum_lo[i];
                                    let sh = rows.sum[i] - sl;
                                    _mm256_add_epi32(
                                        _mm256_mullo_epi32(
                                            _mm256_sub_epi32(lo, _mm256_set1_epi32(32 * sl)),
                                            sa,
                                        ),
                                        _mm256_mullo_epi32(
                                            _mm256_sub_epi32(hi, _mm256_set1_epi32(32 * sh)),
                                            sb,
                                        ),
                                    )
                                }
                                _ => lo,
                            };
                            let dots = _mm256_cvtepi32_ps(ints);
                            let dx = _mm256_set1_ps(rows.d[i]);
                            let a = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), dots, a);
                            if F == F_Q4_1 || F == F_Q4K {
                                _mm256_fmadd_ps(mw, _mm256_set1_ps(rows.s[i]), a)
                            } else {
                                a
                            }
                        };
                        if n == 1 {
                            let a = update(0, one[0]);
                            one = [one[1], one[2], one[3], one[4], one[5], one[6], one[7], a];
                        } else {
                            for (r, a) in acc[..n].iter_mut().enumerate() {
                                let a = &mut a[b % 8];
                                *a = update(r, *a);
                            }
                        }
                    }
                    if n == 1 {
                        // After `nb` blocks `one[j]` is `A[(nb + j) mod 8]`.
                        acc[0] = std::array::from_fn(|k| one[(k + 8 - nb % 8) % 8]);
                    }
                    let out = &mut yt[gi * LANES * n..(gi + 1) * LANES * n];
                    for (r, a) in acc[..n].iter().enumerate() {
                        // Per lane: ((A0+A4) + (A1+A5)) + ((A2+A6) + (A3+A7)).
                        let h0 = _mm256_add_ps(a[0], a[4]);
                        let h1 = _mm256_add_ps(a[1], a[5]);
                        let h2 = _mm256_add_ps(a[2], a[6]);
                        let h3 = _mm256_add_ps(a[3], a[7]);
                        let y = _mm256_add_ps(_mm256_add_ps(h0, h1), _mm256_add_ps(h2, h3));
                        let mut lanes = [0.0f32; LANES];
                        // SAFETY: `lanes` holds 8 floats.
                        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), y) };
                        for (l, v) in lanes.into_iter().enumerate() {
                            out[l * n + r] = v;
                        }
                    }
                }
            }
        };
    }

    // `vpmaddubsw` takes unsigned × signed bytes. Q4: nibbles ≤ 15, so the
    // eight products' pair sums stay in i16 (8 · 2 · 15 · 127 = 30 480).
    // Q5_0: values ≤ 31, four products per i16 (4 · 2 · 31 · 127 = 31 496).
    // Q8_0: |w|·(±q), one pair ≤ 2 · 128 · 127 = 32 512, widened per vector.
    kernels!(
        groups_avx2,
        group_avx2,
        "avx2,fma,f16c",
        |w: [__m256i; 8], h: &[u32]| if F == F_Q5_0 {
            fifth_bits_avx2(w, h)
        } else {
            w
        },
        |w: &[__m256i; 8], x: &[i8; QK], sum: i32| {
            let zero = _mm256_setzero_si256();
            if F == F_Q6K {
                // Values ≤ 63: two vectors' pair sums per i16 (2 · 2 · 63 · 127 = 32 004).
                let ones = _mm256_set1_epi16(1);
                let pair = |k: usize| {
                    _mm256_madd_epi16(
                        _mm256_add_epi16(
                            _mm256_maddubs_epi16(w[k], word(x, k)),
                            _mm256_maddubs_epi16(w[k + 1], word(x, k + 1)),
                        ),
                        ones,
                    )
                };
                return (
                    _mm256_add_epi32(pair(0), pair(2)),
                    _mm256_add_epi32(pair(4), pair(6)),
                );
            }
            let i = if F == F_Q8_0 {
                let ones = _mm256_set1_epi16(1);
                let mut s = [_mm256_setzero_si256(); 2];
                for (k, wk) in w.iter().enumerate() {
                    let p = _mm256_maddubs_epi16(
                        _mm256_sign_epi8(*wk, *wk),
                        _mm256_sign_epi8(word(x, k), *wk),
                    );
                    s[k % 2] = _mm256_add_epi32(s[k % 2], _mm256_madd_epi16(p, ones));
                }
                _mm256_add_epi32(s[0], s[1])
            } else {
                let mut s = [_mm256_setzero_si256(); 2];
                for (k, wk) in w.iter().enumerate() {
                    s[k % 2] = _mm256_add_epi16(s[k % 2], _mm256_maddubs_epi16(*wk, word(x, k)));
                }
                let ones = _mm256_set1_epi16(1);
                match F {
                    F_Q4_0 => _mm256_sub_epi32(
                        _mm256_madd_epi16(_mm256_add_epi16(s[0], s[1]), ones),
                        _mm256_set1_epi32(8 * sum),
                    ),
                    F_Q5_0 => _mm256_sub_epi32(
                        _mm256_add_epi32(
                            _mm256_madd_epi16(s[0], ones),
                            _mm256_madd_epi16(s[1], ones),
                        ),
                        _mm256_set1_epi32(16 * sum),
                    ),
                    _ => _mm256_madd_epi16(_mm256_add_epi16(s[0], s[1]), ones),
                }
            };
            (i, zero)
        }
    );

    // `vpdpbusd` takes unsigned × signed bytes: Q8_0's weights move to
    // `w + 128` (flipping the sign bit) and `128·Σq` comes off; Q5_0's
    // fifth bits add 16 under a byte mask (AVX-512 BW).
    kernels!(
        groups_vnni,
        group_vnni,
        "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
        |w: [__m256i; 8], h: &[u32]| match F {
            F_Q8_0 => w.map(|v| _mm256_xor_si256(v, _mm256_set1_epi8(-128))),
            F_Q5_0 => std::array::from_fn(|k| {
                _mm256_mask_add_epi8(w[k], h[k], w[k], _mm256_set1_epi8(16))
            }),
            _ => w,
        },
        |w: &[__m256i; 8], x: &[i8; QK], sum: i32| {
            let mut s = [_mm256_setzero_si256(); 2];
            if F == F_Q6K {
                for (k, wk) in w.iter().enumerate() {
                    s[k / 4] = _mm256_dpbusd_epi32(s[k / 4], *wk, word(x, k));
                }
                return (s[0], s[1]);
            }
            for (k, wk) in w.iter().enumerate() {
                s[k % 2] = _mm256_dpbusd_epi32(s[k % 2], *wk, word(x, k));
            }
            let i = _mm256_add_epi32(s[0], s[1]);
            let i = match F {
                F_Q4_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(8 * sum)),
                F_Q5_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(16 * sum)),
                F_Q8_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(128 * sum)),
                _ => i,
            };
            (i, _mm256_setzero_si256())
        }
    );
}
