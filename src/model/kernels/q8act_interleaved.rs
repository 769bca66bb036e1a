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
//! eight) stay with [`super::q8act`]'s row kernels.
//!
//! # Numerics
//! The kernels compute exactly the integers and f32 operations that
//! [`super::q8act`]'s module docs define, in the same order: per output
//! lane `I_b = Σ w·q` (exact: Q4_0 as `Σ nibble·q − 8·Σq`, Q5_0 as
//! `Σ value·q − 16·Σq`, Q8_0 on VNNI as
//! `Σ (w + 128)·q − 128·Σq`), `A[b mod 8] = fma(dw·dx, I_b, A)`, then
//! `fma(mw, s_b, A)` for Q4_1, and the same final sum of the eight
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
    /// Q4_0, Q4_1 or Q8_0.
    pub kind: GgmlType,
    /// Whole groups (`rows / LANES`).
    pub groups: usize,
    /// 32-value blocks per row.
    pub blocks: usize,
    /// `[groups, blocks, LANES]` scales `d`.
    pub d: Vec<f32>,
    /// `[groups, blocks, LANES]` minima `m` (Q4_1; empty otherwise).
    pub m: Vec<f32>,
    /// `[groups, blocks, chunk_bytes]` quants, chunked as the module docs say.
    pub qs: Vec<u8>,
    /// `[groups, blocks, 8]` Q5_0's fifth bits (empty otherwise): word `k`
    /// has bit `4l + t` set where row `8g + l`'s value `4k + t` has it,
    /// so it masks weight vector `k`'s bytes.
    pub h: Vec<u32>,
}

impl Interleaved {
    /// Whether `kind` has an interleaved layout.
    pub fn reads(kind: GgmlType) -> bool {
        matches!(
            kind,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q8_0
        )
    }

    /// The interleaved copy of `w`'s whole groups; `None` when `w`'s format
    /// has none or `w` has fewer than [`LANES`] rows.
    pub fn new(w: &BlockWeight) -> Option<Self> {
        if !Self::reads(w.kind) || w.rows < LANES {
            return None;
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
        })
    }

    /// 32-byte chunks per (group, block): 4 for Q4, 8 for Q8_0.
    fn chunks(kind: GgmlType) -> usize {
        if kind == GgmlType::Q8_0 { 8 } else { 4 }
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
    /// each lane's values `4k .. 4k + 4` (Q4 as nibbles 0..16, Q8_0 as
    /// signed bytes).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn unpack<const F: u8>(q: &[u8]) -> [__m256i; 8] {
        if F == F_Q8_0 {
            std::array::from_fn(|k| load32(&q[32 * k..]))
        } else {
            let m = _mm256_set1_epi8(0x0F);
            let v: [__m256i; 4] = std::array::from_fn(|j| load32(&q[32 * j..]));
            std::array::from_fn(|k| {
                if k < 4 {
                    _mm256_and_si256(v[k], m)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16::<4>(v[k - 4]), m)
                }
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
    /// vectors (`h`: Q5_0's fifth-bit words); `$dot(w, &x, sum)` gives the eight lanes'
    /// exact `I_b` from the unpacked weight vectors `w`, the activation
    /// block `x` and its `Σq`.
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
                    other => unreachable!("no interleaved {other}"),
                }
            }

            #[target_feature(enable = $features)]
            #[inline]
            fn $group<const F: u8>(il: &Interleaved, g0: usize, rows: &QuantRows, yt: &mut [f32]) {
                let (n, nb) = (rows.n, rows.blocks);
                assert!(n >= 1 && n <= MAX_ROWS && nb == il.blocks);
                assert!(yt.len() % (LANES * n) == 0);
                let count = yt.len() / (LANES * n);
                assert!(g0 + count <= il.groups);
                assert!(rows.q.len() >= n * nb * QK && rows.d.len() >= n * nb);
                let cb = il.chunk_bytes();
                let prep = $prep;
                let dot = $dot;
                let mut acc = [[_mm256_setzero_ps(); 8]; MAX_ROWS];
                for gi in 0..count {
                    let g = g0 + gi;
                    for a in acc[..n].iter_mut() {
                        *a = [_mm256_setzero_ps(); 8];
                    }
                    for b in 0..nb {
                        let at = g * nb + b;
                        let h = if F == F_Q5_0 {
                            &il.h[at * 8..(at + 1) * 8]
                        } else {
                            &[]
                        };
                        let w = prep(unpack::<F>(&il.qs[at * cb..(at + 1) * cb]), h);
                        let dw = load_ps(&il.d[at * LANES..]);
                        let mw = if F == F_Q4_1 {
                            load_ps(&il.m[at * LANES..])
                        } else {
                            _mm256_setzero_ps()
                        };
                        for (r, a) in acc[..n].iter_mut().enumerate() {
                            let i = r * nb + b;
                            let x: &[i8; QK] =
                                rows.q[i * QK..(i + 1) * QK].try_into().expect("QK quants");
                            let dots = _mm256_cvtepi32_ps(dot(&w, x, rows.sum[i]));
                            let a = &mut a[b % 8];
                            let dx = _mm256_set1_ps(rows.d[i]);
                            *a = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), dots, *a);
                            if F == F_Q4_1 {
                                *a = _mm256_fmadd_ps(mw, _mm256_set1_ps(rows.s[i]), *a);
                            }
                        }
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
            if F == F_Q8_0 {
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
            }
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
            for (k, wk) in w.iter().enumerate() {
                s[k % 2] = _mm256_dpbusd_epi32(s[k % 2], *wk, word(x, k));
            }
            let i = _mm256_add_epi32(s[0], s[1]);
            match F {
                F_Q4_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(8 * sum)),
                F_Q5_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(16 * sum)),
                F_Q8_0 => _mm256_sub_epi32(i, _mm256_set1_epi32(128 * sum)),
                _ => i,
            }
        }
    );
}
