//! The 512-bit AVX-512 VNNI kernel over [`super::q8act_interleaved`]'s
//! layout: two adjacent 8-row groups side by side in one vector, so one
//! `vpdpbusd` takes four values of sixteen weight rows and the f32 part
//! runs sixteen output features per instruction.
//!
//! The layout is unchanged: a vector's low half is group `g`'s 32-byte
//! chunk (or eight scales), its high half group `g + 1`'s. Per output lane
//! the integers and f32 operations are exactly those of the 256-bit
//! kernels (the module docs of [`super::q8act_interleaved`] and
//! [`super::q8act`] define them), so the results are bit for bit theirs
//! (`q8act::tests::bit_identical_across_paths_and_batch_compositions` runs
//! every path). A task's odd last group runs on the 256-bit VNNI kernel.
//! The outputs go feature-major (`yt[k·n + r]`, as the other kernels
//! write them) or, through `x86::pairs_row_major`, straight into each
//! activation row's slice of the result, one store per row and pair.

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use crate::model::formats::gguf::GgmlType;
    use crate::model::kernels::gemv::MAX_ROWS;
    use crate::model::kernels::q8act::{QK, QuantRows};
    use crate::model::kernels::q8act_interleaved::{Interleaved, LANES};

    const F_Q4_0: u8 = 0;
    const F_Q4_1: u8 = 1;
    const F_Q5_0: u8 = 2;
    const F_Q8_0: u8 = 3;
    const F_Q4K: u8 = 4;
    const F_Q6K: u8 = 5;

    /// Output features per vector: two groups.
    const WIDE: usize = 2 * LANES;

    /// Fewest activation rows that run on 512-bit vectors. Each block of a
    /// pair costs more to unpack (two loads and an insert per vector) and
    /// saves per activation row (half the `vpdpbusd`s and broadcasts), so
    /// few rows are faster on the 256-bit kernel: on the 2-core AMD EPYC
    /// (Zen 4, which splits 512-bit operations in two) the SmolLM2-135M
    /// step's projections took 19–49% longer at one row, longer at two and
    /// four, about as long at eight and 4–18% less at sixteen
    /// (`cargo bench --bench projections -- 21 q8act`).
    pub(in crate::model::kernels) const MIN_ROWS: usize = 9;

    /// Where a kernel's outputs go.
    pub(in crate::model::kernels) enum Out<'a, 'b> {
        /// Feature-major: `yt[k·n + r]` for weight row `k` (from the
        /// first) and activation row `r`.
        FeatureMajor(&'a mut [f32]),
        /// Row-major: activation row `r`'s outputs are `rows[r][k]`, for
        /// this many pairs of groups.
        RowMajor(&'a mut [&'b mut [f32]], usize),
    }

    /// Two 32-byte chunks as one vector, `lo` in the low half.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn pair_i(lo: &[u8], hi: &[u8]) -> __m512i {
        assert!(lo.len() >= 32 && hi.len() >= 32);
        // SAFETY: 32 bytes lie inside each slice (asserted).
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(lo.as_ptr() as *const __m256i),
                _mm256_loadu_si256(hi.as_ptr() as *const __m256i),
            )
        };
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b)
    }

    /// Two groups' eight floats as one vector, `lo` in the low half.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn pair_ps(lo: &[f32], hi: &[f32]) -> __m512 {
        assert!(lo.len() >= LANES && hi.len() >= LANES);
        // SAFETY: eight floats lie inside each slice (asserted).
        let (a, b) = unsafe { (_mm256_loadu_ps(lo.as_ptr()), _mm256_loadu_ps(hi.as_ptr())) };
        _mm512_insertf32x8::<1>(_mm512_castps256_ps512(a), b)
    }

    /// Two groups' eight bytes as sixteen i32 lanes, zero-extended (Q4_K's
    /// 6-bit fields).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn u8x16(lo: &[u8], hi: &[u8]) -> __m512i {
        let (a, b) = (eight(lo), eight(hi));
        _mm512_cvtepu8_epi32(_mm_set_epi64x(b, a))
    }

    /// Two groups' eight bytes as sixteen i32 lanes, sign-extended (Q6_K's
    /// int8 scales).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn i8x16(lo: &[u8], hi: &[u8]) -> __m512i {
        let (a, b) = (eight(lo), eight(hi));
        _mm512_cvtepi8_epi32(_mm_set_epi64x(b, a))
    }

    fn eight(b: &[u8]) -> i64 {
        i64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    }

    /// Activation bytes `4k .. 4k + 4` of `x` in every lane, as one
    /// unaligned 4-byte load, which the compiler folds into `vpdpbusd`'s
    /// `{1to16}` memory operand (with the unchecked reads of `pairs_of`).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn word(x: &[i8; QK], k: usize) -> __m512i {
        assert!(k < QK / 4);
        // SAFETY: bytes `4k .. 4k + 4` lie inside `x` (`k < 8`, asserted).
        let v = unsafe { (x.as_ptr().add(4 * k) as *const i32).read_unaligned() };
        _mm512_set1_epi32(i32::from_le(v))
    }

    /// Blocks the pair loop prefetches ahead (into the next pair's first
    /// blocks near the end of a pair). Sixteen activation rows spend
    /// ≈ 70 ns on a block, so four blocks cover a miss to memory; in a
    /// one-thread copy of the Q4_1 loop streaming 106 MB of weights the
    /// median pass took ≈ 20% less time than without (eight blocks ahead
    /// gained less; docs/cpu-kernels.md).
    const AHEAD: usize = 4;

    /// Prefetch the cache lines of `bytes` bytes from `p` into L1 (a hint:
    /// no memory is read or written, any address is allowed).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn prefetch(p: *const u8, bytes: usize) {
        for c in (0..bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(c) as *const i8);
        }
    }

    /// The eight weight vectors of one block of two groups (`qa`, `qb`:
    /// their chunks), as the 256-bit `unpack` gives each half: vector `k`
    /// holds each lane's values `4k .. 4k + 4` (Q4 and Q4_K as nibbles,
    /// Q6_K as values 0..64, Q8_0 as signed bytes).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn unpack<const F: u8>(qa: &[u8], qb: &[u8]) -> [__m512i; 8] {
        if F == F_Q8_0 {
            return std::array::from_fn(|k| pair_i(&qa[32 * k..], &qb[32 * k..]));
        }
        let m = _mm512_set1_epi8(0x0F);
        let v: [__m512i; 4] = std::array::from_fn(|j| pair_i(&qa[32 * j..], &qb[32 * j..]));
        let nib: [__m512i; 8] = std::array::from_fn(|k| {
            if k < 4 {
                _mm512_and_si512(v[k], m)
            } else {
                _mm512_and_si512(_mm512_srli_epi16::<4>(v[k - 4]), m)
            }
        });
        if F != F_Q6K {
            return nib;
        }
        let hc: [__m512i; 2] =
            std::array::from_fn(|c| pair_i(&qa[128 + 32 * c..], &qb[128 + 32 * c..]));
        let m3 = _mm512_set1_epi8(0x03);
        std::array::from_fn(|k| {
            let shift = _mm_cvtsi32_si128(2 * (k % 4) as i32);
            let hi = _mm512_and_si512(_mm512_srl_epi16(hc[k / 4], shift), m3);
            _mm512_or_si512(nib[k], _mm512_slli_epi16::<4>(hi))
        })
    }

    /// `yt[k·n + r]` for weight rows `k` of groups `g0 ..` (as many as `yt`
    /// holds) and activation rows `r` of `rows`: pairs of groups here, an
    /// odd last group on the 256-bit VNNI kernel, and all of them there
    /// below [`MIN_ROWS`] activation rows.
    /// The CPU must run AVX2, FMA, F16C and AVX-512 F, VL, BW, DQ and
    /// VNNI (callers check [`crate::model::kernels::q8act::IntPath::Vnni512`]).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    pub(in crate::model::kernels) fn groups_vnni512(
        il: &Interleaved,
        g0: usize,
        rows: &QuantRows,
        yt: &mut [f32],
    ) {
        let n = rows.n;
        assert!(n >= 1 && yt.len().is_multiple_of(LANES * n));
        let count = yt.len() / (LANES * n);
        let pairs = if n >= MIN_ROWS { count / 2 } else { 0 };
        let (wide, rest) = yt.split_at_mut(pairs * WIDE * n);
        if pairs > 0 {
            pairs_to(il, g0, rows, Out::FeatureMajor(wide));
        }
        if !rest.is_empty() {
            // This function's features include the 256-bit kernel's.
            crate::model::kernels::q8act_interleaved::x86::groups_vnni(
                il,
                g0 + 2 * pairs,
                rows,
                rest,
            );
        }
    }

    /// The outputs of `pairs` pairs of groups from group `g0` on, written
    /// straight into each activation row's slice (`out[r][k]`, `k` from
    /// the first weight row): one 512-bit store per row and pair, where
    /// [`groups_vnni512`] scatters them feature-major. The CPU must run
    /// the features of [`groups_vnni512`].
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    pub(in crate::model::kernels) fn pairs_row_major(
        il: &Interleaved,
        g0: usize,
        rows: &QuantRows,
        out: &mut [&mut [f32]],
        pairs: usize,
    ) {
        pairs_to(il, g0, rows, Out::RowMajor(out, pairs));
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn pairs_to(il: &Interleaved, g0: usize, rows: &QuantRows, out: Out<'_, '_>) {
        match il.kind {
            GgmlType::Q4_0 => pairs_of::<F_Q4_0>(il, g0, rows, out),
            GgmlType::Q4_1 => pairs_of::<F_Q4_1>(il, g0, rows, out),
            GgmlType::Q5_0 => pairs_of::<F_Q5_0>(il, g0, rows, out),
            GgmlType::Q8_0 => pairs_of::<F_Q8_0>(il, g0, rows, out),
            GgmlType::Q4K => pairs_of::<F_Q4K>(il, g0, rows, out),
            GgmlType::Q6K => pairs_of::<F_Q6K>(il, g0, rows, out),
            other => unreachable!("no interleaved {other}"),
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")]
    #[inline]
    fn pairs_of<const F: u8>(il: &Interleaved, g0: usize, rows: &QuantRows, mut yt: Out<'_, '_>) {
        let (n, nb) = (rows.n, rows.blocks);
        assert!((1..=MAX_ROWS).contains(&n) && nb == il.blocks);
        let count = match &yt {
            Out::FeatureMajor(yt) => {
                assert!(yt.len().is_multiple_of(WIDE * n));
                yt.len() / (WIDE * n)
            }
            Out::RowMajor(out, pairs) => {
                assert_eq!(out.len(), n, "one slice per activation row");
                assert!(out.iter().all(|o| o.len() >= pairs * WIDE));
                *pairs
            }
        };
        assert!(g0 + 2 * count <= il.groups);
        // Every activation array holds the `n · nb` blocks that `update`
        // reads without bounds checks.
        let blocks = n * nb;
        assert!(rows.q.len() >= blocks * QK && rows.d.len() >= blocks && rows.s.len() >= blocks);
        assert!(rows.sum.len() >= blocks && rows.sum_lo.len() >= blocks);
        let kq = F == F_Q4K || F == F_Q6K;
        assert!(
            !kq || nb.is_multiple_of(8),
            "K-quant rows are whole super-blocks"
        );
        let cb = il.chunk_bytes();
        let mut acc = [[_mm512_setzero_ps(); 8]; MAX_ROWS];
        for pi in 0..count {
            let g = g0 + 2 * pi;
            for a in acc[..n].iter_mut() {
                *a = [_mm512_setzero_ps(); 8];
            }
            // One activation row keeps its accumulators in registers,
            // rotated after each block (as the 256-bit kernel does).
            let mut one = [_mm512_setzero_ps(); 8];
            for b in 0..nb {
                // Block `b` of group `g` (low half) and of group `g + 1`.
                let (at, at2) = (g * nb + b, (g + 1) * nb + b);
                // Block `b + AHEAD` of this pair, or of the next pair (group
                // `g + 2` follows group `g + 1`'s blocks).
                let ahead = if b + AHEAD < nb { AHEAD } else { AHEAD + nb };
                if (at2 + ahead) < il.groups * nb {
                    let (fa, fb) = (at + ahead, at2 + ahead);
                    for f in [fa, fb] {
                        prefetch(il.qs.as_ptr().wrapping_add(f * cb), cb);
                        if !kq {
                            prefetch(il.d.as_ptr().wrapping_add(f * LANES).cast(), 32);
                        }
                        if F == F_Q4_1 {
                            prefetch(il.m.as_ptr().wrapping_add(f * LANES).cast(), 32);
                        }
                        if F == F_Q5_0 {
                            prefetch(il.h.as_ptr().wrapping_add(f * 8).cast(), 32);
                        }
                    }
                }
                let mut w = unpack::<F>(
                    &il.qs[at * cb..(at + 1) * cb],
                    &il.qs[at2 * cb..(at2 + 1) * cb],
                );
                if F == F_Q8_0 {
                    // `vpdpbusd` takes unsigned bytes: `w + 128`.
                    w = w.map(|v| _mm512_xor_si512(v, _mm512_set1_epi8(-128)));
                } else if F == F_Q5_0 {
                    // The fifth bits add 16 under each half's byte mask.
                    let (ha, hb) = (&il.h[at * 8..(at + 1) * 8], &il.h[at2 * 8..(at2 + 1) * 8]);
                    let sixteen = _mm512_set1_epi8(16);
                    for (k, v) in w.iter_mut().enumerate() {
                        let mask = u64::from(ha[k]) | (u64::from(hb[k]) << 32);
                        *v = _mm512_mask_add_epi8(*v, mask, *v, sixteen);
                    }
                }
                // K-quants: the super-blocks' scalars.
                let (sup, sup2) = (at / 8, at2 / 8);
                let (da, db) = if kq { (sup, sup2) } else { (at, at2) };
                let dw = pair_ps(&il.d[da * LANES..], &il.d[db * LANES..]);
                let mw = match F {
                    F_Q4_1 => pair_ps(&il.m[at * LANES..], &il.m[at2 * LANES..]),
                    // −(dmin·m_b), the f32 product the definition takes.
                    F_Q4K => _mm512_xor_ps(
                        _mm512_mul_ps(
                            pair_ps(&il.m[sup * LANES..], &il.m[sup2 * LANES..]),
                            _mm512_cvtepi32_ps(u8x16(&il.mk[at * LANES..], &il.mk[at2 * LANES..])),
                        ),
                        _mm512_set1_ps(-0.0),
                    ),
                    _ => _mm512_setzero_ps(),
                };
                let (sa, sb) = match F {
                    F_Q4K => (
                        u8x16(&il.sc[at * LANES..], &il.sc[at2 * LANES..]),
                        _mm512_setzero_si512(),
                    ),
                    F_Q6K => (
                        i8x16(&il.sc[2 * at * LANES..], &il.sc[2 * at2 * LANES..]),
                        i8x16(
                            &il.sc[(2 * at + 1) * LANES..],
                            &il.sc[(2 * at2 + 1) * LANES..],
                        ),
                    ),
                    _ => (_mm512_setzero_si512(), _mm512_setzero_si512()),
                };
                // Row `r < n`'s block `b`, without bounds checks (the lengths
                // are asserted above): with them the per-row loop kept its
                // activation words in general registers (a broadcast each).
                let update = |r: usize, a: __m512| -> __m512 {
                    debug_assert!(r < n);
                    let i = r * nb + b;
                    // SAFETY: `i < n · nb` (`b < nb`, and `r < n` at both
                    // call sites below: `acc[..n]`'s indices, or 0): inside
                    // `rows.q` (`n · nb · QK` quants) and its `n · nb`
                    // per-block arrays (asserted above).
                    let (x, sum, sum_lo, dx, sx) = unsafe {
                        (
                            &*(rows.q.as_ptr().add(i * QK) as *const [i8; QK]),
                            *rows.sum.get_unchecked(i),
                            *rows.sum_lo.get_unchecked(i),
                            *rows.d.get_unchecked(i),
                            *rows.s.get_unchecked(i),
                        )
                    };
                    let mut s = [_mm512_setzero_si512(); 2];
                    let ints = if F == F_Q6K {
                        for (k, wk) in w.iter().enumerate() {
                            s[k / 4] = _mm512_dpbusd_epi32(s[k / 4], *wk, word(x, k));
                        }
                        let (sl, sh) = (sum_lo, sum - sum_lo);
                        _mm512_add_epi32(
                            _mm512_mullo_epi32(
                                _mm512_sub_epi32(s[0], _mm512_set1_epi32(32 * sl)),
                                sa,
                            ),
                            _mm512_mullo_epi32(
                                _mm512_sub_epi32(s[1], _mm512_set1_epi32(32 * sh)),
                                sb,
                            ),
                        )
                    } else {
                        for (k, wk) in w.iter().enumerate() {
                            s[k % 2] = _mm512_dpbusd_epi32(s[k % 2], *wk, word(x, k));
                        }
                        let i = _mm512_add_epi32(s[0], s[1]);
                        match F {
                            F_Q4_0 => _mm512_sub_epi32(i, _mm512_set1_epi32(8 * sum)),
                            F_Q5_0 => _mm512_sub_epi32(i, _mm512_set1_epi32(16 * sum)),
                            F_Q8_0 => _mm512_sub_epi32(i, _mm512_set1_epi32(128 * sum)),
                            F_Q4K => _mm512_mullo_epi32(i, sa),
                            _ => i,
                        }
                    };
                    let dots = _mm512_cvtepi32_ps(ints);
                    let dx = _mm512_set1_ps(dx);
                    let a = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), dots, a);
                    if F == F_Q4_1 || F == F_Q4K {
                        _mm512_fmadd_ps(mw, _mm512_set1_ps(sx), a)
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
            for (r, a) in acc[..n].iter().enumerate() {
                // Per lane: ((A0+A4) + (A1+A5)) + ((A2+A6) + (A3+A7)).
                let h0 = _mm512_add_ps(a[0], a[4]);
                let h1 = _mm512_add_ps(a[1], a[5]);
                let h2 = _mm512_add_ps(a[2], a[6]);
                let h3 = _mm512_add_ps(a[3], a[7]);
                let y = _mm512_add_ps(_mm512_add_ps(h0, h1), _mm512_add_ps(h2, h3));
                match &mut yt {
                    Out::FeatureMajor(yt) => {
                        let out = &mut yt[pi * WIDE * n..(pi + 1) * WIDE * n];
                        let mut lanes = [0.0f32; WIDE];
                        // SAFETY: `lanes` holds sixteen floats.
                        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), y) };
                        for (l, v) in lanes.into_iter().enumerate() {
                            out[l * n + r] = v;
                        }
                    }
                    Out::RowMajor(out, _) => {
                        // The pair's sixteen features, contiguous in the row.
                        let o = &mut out[r][pi * WIDE..(pi + 1) * WIDE];
                        // SAFETY: `o` holds sixteen floats.
                        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), y) };
                    }
                }
            }
        }
    }
}
