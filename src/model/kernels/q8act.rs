//! The decode-time projection with 8-bit activations (`--decode-weights
//! q8act`): `y ≈ x·Wᵀ (+ b)` with `W` in its file's Q4_0 / Q4_1 / Q8_0
//! blocks and each row of `x` quantized per 32-value block to int8 with an
//! f32 scale, the scheme of llama.cpp's Q8_0/Q8_1 activation blocks.
//!
//! # Numerics
//! An activation block `x[32]` becomes `d = max|x| / 127` and
//! `q[j] = round(x[j] / d)` (ties away from zero, clamped to ±127; an
//! all-zero block has `d = 0`, `q = 0`), so each activation moves by at most
//! `d / 2`. Unlike ggml, `d` (and `s = d·Σq`, Q8_1's sum) stays f32 instead
//! of being rounded to f16. Per weight block `b` the integer dot
//! `Σ_j wq[j]·q[j]` is exact (i32), and the block's term is
//! - Q4_0: `(dw·dx) · (Σ nibble·q − 8·Σq)`;
//! - Q4_1: `(dw·dx) · Σ nibble·q + mw · s`;
//! - Q8_0: `(dw·dx) · Σ wq·q`;
//!
//! with `dw`, `mw` the block's f16 scale and minimum. The terms are summed
//! in f32 into four accumulators (block `b` into `b mod 4`), then
//! `(a0 + a1) + (a2 + a3)`; no operation is fused. That f32 part is one
//! scalar function shared by every instruction set and the integer part is
//! exact, so the result is **bit for bit** the same on the portable, AVX2
//! and AVX-512 VNNI paths and for any batch composition (a row's output
//! depends only on that row and the weight): see the tests. It is *not*
//! the exact f32 result of [`super::block_gemv`]; the difference is
//! bounded by `Σ_i |w_i|·d_b(i)/2` plus f32 rounding
//! (`tests::error_is_within_the_activation_rounding_bound`).
//!
//! # Speed
//! Each weight block is loaded and unpacked once and dotted with every
//! activation row (up to [`MAX_ROWS`]), as the f32 kernels do; output
//! features are split across the rayon pool. The instruction set follows
//! [`Isa::active`]; [`Isa::Avx512`] uses VNNI's `vpdpbusd` where the CPU
//! has AVX-512 VNNI (else the AVX2 integer kernel).
//!
//! [`flex_linear_q8act`] is the entry used by [`crate::model::layers::linear::Linear`].

use burn::backend::flex::Flex;
use burn::prelude::*;
use rayon::prelude::*;

use super::block_gemv::BlockWeight;
use super::gemv::{self, MAX_ROWS};
use super::isa::Isa;
use crate::model::formats::gguf::GgmlType;

/// Values per activation (and weight) block.
pub const QK: usize = 32;

/// Weight rows per parallel task.
const TASK_ROWS: usize = 64;

/// The integer kernels one product runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntPath {
    /// Plain Rust.
    Portable,
    /// AVX2 `vpmaddubsw` + `vpmaddwd`.
    Avx2,
    /// AVX-512 VNNI `vpdpbusd` on 256-bit vectors.
    Vnni,
}

impl IntPath {
    /// The path for instruction set `isa` (which the CPU must run):
    /// [`Isa::Avx512`] is VNNI where the CPU has it, else AVX2.
    ///
    /// # Panics
    /// If the CPU does not run `isa`.
    pub fn for_isa(isa: Isa) -> IntPath {
        assert!(isa.runs_here(), "this CPU does not run {isa} kernels");
        match isa {
            Isa::Portable => IntPath::Portable,
            Isa::Avx2 => IntPath::Avx2,
            Isa::Avx512 if IntPath::Vnni.runs_here() => IntPath::Vnni,
            Isa::Avx512 => IntPath::Avx2,
        }
    }

    /// Every path this CPU runs.
    pub fn supported() -> Vec<IntPath> {
        [IntPath::Portable, IntPath::Avx2, IntPath::Vnni]
            .into_iter()
            .filter(|p| p.runs_here())
            .collect()
    }

    /// Whether this CPU runs `self`.
    pub fn runs_here(self) -> bool {
        match self {
            IntPath::Portable => true,
            IntPath::Avx2 => Isa::Avx2.runs_here(),
            #[cfg(target_arch = "x86_64")]
            IntPath::Vnni => {
                Isa::Avx2.runs_here()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            IntPath::Vnni => false,
        }
    }
}

/// Whether the q8act kernel reads weights of `kind`.
pub fn supports(kind: GgmlType) -> bool {
    matches!(kind, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// Activation rows quantized per [`QK`]-value block.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantRows {
    /// Rows.
    pub n: usize,
    /// Blocks per row.
    pub blocks: usize,
    /// `[n, blocks·QK]` quants in `-127..=127`.
    pub q: Vec<i8>,
    /// `[n, blocks]` scales `max|x| / 127`.
    pub d: Vec<f32>,
    /// `[n, blocks]` `Σ q` per block.
    pub sum: Vec<i32>,
    /// `[n, blocks]` `d · Σq` (Q4_1's minimum term).
    pub s: Vec<f32>,
}

impl QuantRows {
    /// # Shapes
    /// `x`: `[n, inp]`, `inp` a multiple of [`QK`].
    ///
    /// # Panics
    /// If `x` is not `[n, inp]` or `inp` is not whole blocks.
    pub fn new(x: &[f32], n: usize, inp: usize) -> Self {
        assert_eq!(x.len(), n * inp, "q8act: x is not [n, in]");
        assert_eq!(inp % QK, 0, "q8act: {inp} columns are not whole blocks");
        let total = x.len() / QK;
        let mut q = vec![0i8; x.len()];
        let (mut d, mut sum, mut s) = (
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
        );
        for (xb, qb) in x.chunks_exact(QK).zip(q.chunks_exact_mut(QK)) {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut total = 0i32;
            for (v, o) in xb.iter().zip(qb.iter_mut()) {
                // `as` maps NaN to 0; finite values are clamped first.
                *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
                total += i32::from(*o);
            }
            d.push(scale);
            sum.push(total);
            s.push(scale * total as f32);
        }
        Self {
            n,
            blocks: inp / QK,
            q,
            d,
            sum,
            s,
        }
    }

    /// Row `r`'s quants of block `b`.
    fn block(&self, r: usize, b: usize) -> &[i8; QK] {
        let at = (r * self.blocks + b) * QK;
        self.q[at..at + QK].try_into().expect("QK quants")
    }
}

/// `y[r, o] ≈ Σ_i x[r, i] · w[o, i] + bias[o]` with 8-bit activations (see
/// the module docs for the exact arithmetic).
///
/// # Shapes
/// `w`: `[out, inp]`; `x`: `[n, inp]`; `bias`: `[out]`; returns `[n, out]`.
pub fn gemv_q8act(w: &BlockWeight, x: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    gemv_q8act_with(IntPath::for_isa(Isa::active()), w, x, n, bias)
}

/// [`gemv_q8act`] on integer path `path`, which the CPU must run.
///
/// # Panics
/// If the CPU does not run `path`, `w`'s format is not [`supports`]ed or
/// `x` is not `[n, w.cols]`.
pub fn gemv_q8act_with(
    path: IntPath,
    w: &BlockWeight,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(
        path.runs_here(),
        "this CPU does not run the {path:?} kernels"
    );
    assert!(supports(w.kind), "q8act does not read {}", w.kind);
    let (out, inp) = (w.rows, w.cols);
    let rows = QuantRows::new(x, n, inp);
    let row_bytes = w.row_bytes();
    let nb = rows.blocks;
    let mut yt = vec![0.0f32; out * n];
    yt.par_chunks_mut(TASK_ROWS * n)
        .enumerate()
        .for_each(|(t, chunk)| {
            let mut dots = vec![0i32; n * nb];
            let mut scales = vec![0.0f32; 2 * nb];
            for (k, ys) in chunk.chunks_mut(n).enumerate() {
                let o = t * TASK_ROWS + k;
                let wrow = &w.bytes[o * row_bytes..(o + 1) * row_bytes];
                row_dots(path, w.kind, wrow, &rows, &mut dots);
                combine(w.kind, wrow, &rows, &dots, &mut scales, ys);
            }
        });
    gemv::finish(yt, out, n, bias)
}

/// Block size in bytes and the offset of its quants, per format.
fn layout(kind: GgmlType) -> (usize, usize) {
    match kind {
        GgmlType::Q4_0 => (18, 2),
        GgmlType::Q4_1 => (20, 4),
        GgmlType::Q8_0 => (34, 2),
        other => unreachable!("q8act does not read {other}"),
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `dots[r·blocks + b]` = the exact integer dot of weight row `wrow`'s block
/// `b` (unsigned nibbles for Q4_0/Q4_1, signed bytes for Q8_0) with row
/// `r`'s activation quants, on `path`.
pub fn row_dots(path: IntPath, kind: GgmlType, wrow: &[u8], rows: &QuantRows, dots: &mut [i32]) {
    assert!(
        path.runs_here(),
        "this CPU does not run the {path:?} kernels"
    );
    assert_eq!(
        wrow.len(),
        rows.blocks * layout(kind).0,
        "q8act: weight row"
    );
    assert_eq!(dots.len(), rows.n * rows.blocks, "q8act: dots");
    match path {
        // SAFETY (both): the CPU runs `path` (asserted).
        #[cfg(target_arch = "x86_64")]
        IntPath::Avx2 => unsafe { x86::row_dots_avx2(kind, wrow, rows, dots) },
        #[cfg(target_arch = "x86_64")]
        IntPath::Vnni => unsafe { x86::row_dots_vnni(kind, wrow, rows, dots) },
        _ => row_dots_portable(kind, wrow, rows, dots),
    }
}

fn row_dots_portable(kind: GgmlType, wrow: &[u8], rows: &QuantRows, dots: &mut [i32]) {
    let (size, at) = layout(kind);
    let nb = rows.blocks;
    for (b, blk) in wrow.chunks_exact(size).enumerate() {
        let mut w = [0i32; QK];
        if kind == GgmlType::Q8_0 {
            for (v, &q) in w.iter_mut().zip(&blk[at..at + QK]) {
                *v = i32::from(q as i8);
            }
        } else {
            for (j, &q) in blk[at..at + QK / 2].iter().enumerate() {
                w[j] = i32::from(q & 0x0F);
                w[j + QK / 2] = i32::from(q >> 4);
            }
        }
        for r in 0..rows.n {
            let x = rows.block(r, b);
            dots[r * nb + b] = w.iter().zip(x).map(|(a, &c)| a * i32::from(c)).sum();
        }
    }
}

/// Every row's output for one weight row from its integer dots: the f32
/// part, shared by every path (see the module docs for the order).
/// `scales` is scratch of `2·blocks` floats; `ys` gets the `n` outputs.
fn combine(
    kind: GgmlType,
    wrow: &[u8],
    rows: &QuantRows,
    dots: &[i32],
    scales: &mut [f32],
    ys: &mut [f32],
) {
    let (size, _) = layout(kind);
    let nb = rows.blocks;
    let (dw, mw) = scales.split_at_mut(nb);
    for (b, blk) in wrow.chunks_exact(size).enumerate() {
        dw[b] = f16_at(blk, 0);
        mw[b] = if kind == GgmlType::Q4_1 {
            f16_at(blk, 2)
        } else {
            0.0
        };
    }
    for (r, y) in ys.iter_mut().enumerate() {
        let mut acc = [0.0f32; 4];
        for b in 0..nb {
            let i = r * nb + b;
            let scale = dw[b] * rows.d[i];
            let t = match kind {
                GgmlType::Q4_0 => scale * (dots[i] - 8 * rows.sum[i]) as f32,
                GgmlType::Q4_1 => scale * dots[i] as f32 + mw[b] * rows.s[i],
                _ => scale * dots[i] as f32,
            };
            acc[b % 4] += t;
        }
        *y = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The integer dots with x86 SIMD; each gives exactly the portable sums.

    use std::arch::x86_64::*;

    use super::{GgmlType, QK, QuantRows};

    /// 32 weight values of one block as bytes: Q4's 16 quant bytes split
    /// into low nibbles (values 0..16) and high nibbles (16..32), or Q8_0's
    /// 32 signed bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn weights<const Q8: bool>(q: &[u8]) -> __m256i {
        if Q8 {
            assert!(q.len() >= 32);
            // SAFETY: 32 bytes lie inside `q` (asserted).
            unsafe { _mm256_loadu_si256(q.as_ptr() as *const __m256i) }
        } else {
            assert!(q.len() >= 16);
            // SAFETY: 16 bytes lie inside `q` (asserted).
            let b = unsafe { _mm_loadu_si128(q.as_ptr() as *const __m128i) };
            let m = _mm_set1_epi8(0x0F);
            let lo = _mm_and_si128(b, m);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
            _mm256_set_m128i(hi, lo)
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load_x(x: &[i8; QK]) -> __m256i {
        // SAFETY: `x` is 32 bytes.
        unsafe { _mm256_loadu_si256(x.as_ptr() as *const __m256i) }
    }

    /// The eight lanes of `v` summed.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
        _mm_cvtsi128_si32(s)
    }

    /// The lane sums of four vectors: `[Σa, Σb, Σc, Σd]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn hsum4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> [i32; 4] {
        let ab = _mm256_hadd_epi32(a, b);
        let cd = _mm256_hadd_epi32(c, d);
        let abcd = _mm256_hadd_epi32(ab, cd);
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(abcd),
            _mm256_extracti128_si256::<1>(abcd),
        );
        let mut out = [0i32; 4];
        // SAFETY: `out` holds 4 i32.
        unsafe { _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, s) };
        out
    }

    /// One generic loop per path: `$dot(w, x)` gives 8 lanes of partial
    /// sums of unsigned `w` × signed `x` bytes, four products per lane.
    macro_rules! row_dots_path {
        ($name:ident, $inner:ident, $features:literal, $dot:expr) => {
            #[target_feature(enable = $features)]
            pub(super) fn $name(kind: GgmlType, wrow: &[u8], rows: &QuantRows, dots: &mut [i32]) {
                match kind {
                    GgmlType::Q4_0 => $inner::<false, 18, 2>(wrow, rows, dots),
                    GgmlType::Q4_1 => $inner::<false, 20, 4>(wrow, rows, dots),
                    GgmlType::Q8_0 => $inner::<true, 34, 2>(wrow, rows, dots),
                    other => unreachable!("q8act does not read {other}"),
                }
            }

            #[target_feature(enable = $features)]
            #[inline]
            fn $inner<const Q8: bool, const SIZE: usize, const AT: usize>(
                wrow: &[u8],
                rows: &QuantRows,
                dots: &mut [i32],
            ) {
                let (n, nb) = (rows.n, rows.blocks);
                for (b, blk) in wrow.chunks_exact(SIZE).enumerate() {
                    let w = weights::<Q8>(&blk[AT..]);
                    // Q8_0's weights are signed: |w| against x with w's sign
                    // (`vpsignb`), as ggml does; the products are unchanged.
                    let (wu, sign) = if Q8 {
                        (_mm256_sign_epi8(w, w), w)
                    } else {
                        (w, w)
                    };
                    let x = |r: usize| {
                        let x = load_x(rows.block(r, b));
                        if Q8 { _mm256_sign_epi8(x, sign) } else { x }
                    };
                    let dot = $dot;
                    let mut r = 0;
                    while r + 4 <= n {
                        let s = hsum4(
                            dot(wu, x(r)),
                            dot(wu, x(r + 1)),
                            dot(wu, x(r + 2)),
                            dot(wu, x(r + 3)),
                        );
                        for (k, v) in s.into_iter().enumerate() {
                            dots[(r + k) * nb + b] = v;
                        }
                        r += 4;
                    }
                    while r < n {
                        dots[r * nb + b] = hsum(dot(wu, x(r)));
                        r += 1;
                    }
                }
            }
        };
    }

    // |w| ≤ 128 and |x| ≤ 127, so `vpmaddubsw`'s pair sums (≤ 32 512) never
    // saturate.
    row_dots_path!(row_dots_avx2, row_dots_avx2_k, "avx2,fma,f16c", |w, x| {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1))
    });

    row_dots_path!(
        row_dots_vnni,
        row_dots_vnni_k,
        "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
        |w, x| _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)
    );
}

/// `x·Wᵀ (+ b)` through [`gemv_q8act`] when the backend is Flex, `x` has at
/// most [`MAX_ROWS`] rows and `w`'s format is [`supports`]ed; `None`
/// otherwise (the caller uses its f32 weight).
///
/// # Shapes
/// `x`: `[n, in]`; `w`: `[out, in]` blocks; `bias`: `[out]`; returns `[n, out]`.
pub fn flex_linear_q8act<B: Backend>(
    x: &Tensor<B, 2>,
    w: &BlockWeight,
    bias: Option<&Tensor<B, 1>>,
) -> Option<Tensor<B, 2>> {
    if std::any::TypeId::of::<B>() != std::any::TypeId::of::<Flex>() || !supports(w.kind) {
        return None;
    }
    let [n, inp] = x.dims();
    if n == 0 || n > MAX_ROWS || inp != w.cols {
        return None;
    }
    gemv::with_flex_slices(x, bias, |xs, bs| gemv_q8act(w, xs, n, bs), [n, w.rows])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random blocks of `kind` (f16 scales in a realistic range, random
    /// quants, Q8_0's −128 included).
    fn random_blocks(
        kind: GgmlType,
        rows: usize,
        cols: usize,
        rng: &mut ChaCha8Rng,
    ) -> BlockWeight {
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / QK {
            let half = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
            bytes.extend(half(rng.random_range(0.001f32..0.05)));
            if kind == GgmlType::Q4_1 {
                bytes.extend(half(rng.random_range(-0.4f32..0.0)));
            }
            let quants = if kind == GgmlType::Q8_0 { 32 } else { 16 };
            bytes.extend((0..quants).map(|_| rng.random::<u8>()));
        }
        BlockWeight::new(kind, rows, cols, bytes).unwrap()
    }

    /// Activations with a few outliers per row, as real hidden states have.
    fn random_x(n: usize, inp: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n * inp)
            .map(|i| {
                let v: f32 = rng.random_range(-1.0..1.0);
                if i % 97 == 5 { v * 40.0 } else { v }
            })
            .collect()
    }

    const KINDS: [GgmlType; 3] = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0];

    #[test]
    fn quantizes_each_block_to_int8_with_its_max_scale() {
        let mut x: Vec<f32> = (0..64).map(|i| i as f32 - 16.0).collect();
        x[32..].fill(0.0);
        x[40] = -2.5;
        let q = QuantRows::new(&x, 1, 64);
        assert_eq!(q.blocks, 2);
        // Block 0: max |x| = 16 at x[0] = −16 … x[31] = 15.
        assert_eq!(q.d[0], 16.0 / 127.0);
        assert_eq!(q.q[0], -127);
        assert_eq!(q.q[16], 0);
        // 15 · 127/16 = 119.06… → 119; 0.5 · 127 / 16 … ties away from zero.
        assert_eq!(q.q[31], 119);
        assert_eq!(
            q.sum[0],
            q.q[..32].iter().map(|&v| i32::from(v)).sum::<i32>()
        );
        assert_eq!(q.s[0], q.d[0] * q.sum[0] as f32);
        // Block 1: one value, which maps to −127 exactly.
        assert_eq!(q.d[1], 2.5 / 127.0);
        assert_eq!(q.q[40], -127);
        assert_eq!(q.sum[1], -127);
        // An all-zero block: zero scale and quants, no NaN.
        let z = QuantRows::new(&[0.0; 32], 1, 32);
        assert_eq!((z.d[0], z.sum[0]), (0.0, 0));
        assert!(z.q.iter().all(|&v| v == 0));
        // Every activation moves by at most d/2.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = random_x(3, 256, &mut rng);
        let q = QuantRows::new(&x, 3, 256);
        for (i, v) in x.iter().enumerate() {
            let d = q.d[i / QK];
            assert!((f32::from(q.q[i]) * d - v).abs() <= d * 0.5001, "x[{i}]");
        }
    }

    #[test]
    fn integer_dots_are_exact_on_every_path() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for kind in KINDS {
            let (out, inp, n) = (3, 192, 7);
            let w = random_blocks(kind, out, inp, &mut rng);
            let dense = w.dequantize();
            let rows = QuantRows::new(&random_x(n, inp, &mut rng), n, inp);
            let (size, _) = layout(kind);
            for o in 0..out {
                let wrow = &w.bytes[o * w.row_bytes()..(o + 1) * w.row_bytes()];
                // The reference: the integer weight recovered per value from
                // the dequantized f32 weight, dotted in i64.
                let mut want = vec![0i32; n * rows.blocks];
                for b in 0..rows.blocks {
                    let blk = &wrow[b * size..(b + 1) * size];
                    let (d, m) = (
                        f16_at(blk, 0),
                        if kind == GgmlType::Q4_1 {
                            f16_at(blk, 2)
                        } else {
                            0.0
                        },
                    );
                    for r in 0..n {
                        let mut s = 0i64;
                        for j in 0..QK {
                            let v = dense[o * inp + b * QK + j];
                            let wq = match kind {
                                GgmlType::Q4_0 => (v / d).round() + 8.0,
                                GgmlType::Q4_1 => ((v - m) / d).round(),
                                _ => (v / d).round(),
                            };
                            s += wq as i64 * i64::from(rows.q[(r * rows.blocks + b) * QK + j]);
                        }
                        want[r * rows.blocks + b] = s as i32;
                    }
                }
                for path in IntPath::supported() {
                    let mut got = vec![i32::MIN; want.len()];
                    row_dots(path, kind, wrow, &rows, &mut got);
                    assert_eq!(got, want, "{kind} {path:?} row {o}");
                }
            }
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_the_quantized_activations() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for kind in KINDS {
            let (out, inp, n) = (37, 320, 5);
            let w = random_blocks(kind, out, inp, &mut rng);
            let dense = w.dequantize();
            let x = random_x(n, inp, &mut rng);
            let rows = QuantRows::new(&x, n, inp);
            let y = gemv_q8act(&w, &x, n, None);
            for r in 0..n {
                for o in 0..out {
                    // Σ w·(d·q) in f64 over the dequantized weights.
                    let (mut want, mut mag) = (0.0f64, 0.0f64);
                    for i in 0..inp {
                        let xq = f64::from(rows.d[r * rows.blocks + i / QK])
                            * f64::from(rows.q[r * inp + i]);
                        let t = f64::from(dense[o * inp + i]) * xq;
                        want += t;
                        mag += t.abs();
                    }
                    let got = f64::from(y[r * out + o]);
                    assert!(
                        (got - want).abs() <= 1e-5 * mag + 1e-6,
                        "{kind} r={r} o={o}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn bit_identical_across_paths_and_batch_compositions() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        // Row counts off the task grid; 1..=16 activation rows (tails of
        // the 4-row reduction included).
        for &(kind, out, inp, n) in &[
            (GgmlType::Q4_1, 131, 576, 16),
            (GgmlType::Q4_1, 5, 32, 7),
            (GgmlType::Q4_0, 70, 96, 13),
            (GgmlType::Q8_0, 66, 160, 9),
            (GgmlType::Q8_0, 3, 64, 2),
        ] {
            let w = random_blocks(kind, out, inp, &mut rng);
            let x = random_x(n, inp, &mut rng);
            let b: Vec<f32> = (0..out).map(|_| rng.random_range(-1.0..1.0)).collect();
            let want = gemv_q8act_with(IntPath::Portable, &w, &x, n, Some(&b));
            for path in IntPath::supported() {
                let got = gemv_q8act_with(path, &w, &x, n, Some(&b));
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{path:?} {kind} n={n}");
                // Each row alone, and the rows in reverse order.
                for r in 0..n {
                    let alone = gemv_q8act_with(path, &w, &x[r * inp..(r + 1) * inp], 1, Some(&b));
                    assert_eq!(bits(&alone), bits(&want[r * out..(r + 1) * out]));
                }
                let rev: Vec<f32> = x.chunks(inp).rev().flatten().copied().collect();
                let got = gemv_q8act_with(path, &w, &rev, n, Some(&b));
                let back: Vec<f32> = got.chunks(out).rev().flatten().copied().collect();
                assert_eq!(bits(&back), bits(&want), "{path:?} {kind} reversed");
            }
            assert_eq!(
                gemv_q8act(&w, &x, n, Some(&b)),
                want,
                "the active path is one of them"
            );
        }
    }

    #[test]
    fn error_is_within_the_activation_rounding_bound() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for kind in KINDS {
            let (out, inp, n) = (40, 576, 3);
            let w = random_blocks(kind, out, inp, &mut rng);
            let dense = w.dequantize();
            let x = random_x(n, inp, &mut rng);
            let rows = QuantRows::new(&x, n, inp);
            let exact = super::super::block_gemv::gemv_blocks(&w, &x, n, None);
            let y = gemv_q8act(&w, &x, n, None);
            for r in 0..n {
                for o in 0..out {
                    let (mut bound, mut mag) = (0.0f64, 0.0f64);
                    for i in 0..inp {
                        let wv = f64::from(dense[o * inp + i]).abs();
                        bound += wv * f64::from(rows.d[r * rows.blocks + i / QK]) / 2.0;
                        mag += wv * f64::from(x[r * inp + i]).abs();
                    }
                    let diff = f64::from(y[r * out + o] - exact[r * out + o]).abs();
                    assert!(
                        diff <= bound + 1e-5 * mag,
                        "{kind} r={r} o={o}: |Δ| {diff} > {bound}"
                    );
                }
            }
        }
    }
}
