//! The decode-time projection on the CPU: `y = x·Wᵀ (+ b)` for a few rows of
//! `x` against a row-major `[out, in]` weight, streaming the weight once.
//!
//! Decoding is bound by reading the weights (every step reads all of them
//! for a handful of activation rows), so the kernel's only job is to stream
//! `W` at memory bandwidth: four weight rows at a time, each multiplied with
//! every activation row while it is in L1, 8-lane FMA accumulators, the
//! output features split across the decode step's spinning workers
//! ([`super::step_pool`]; rayon's pool outside a step). With AVX-512 one 16-lane
//! register holds two activation rows' 8 lanes, so each instruction does
//! twice the work while every lane sees the same FMAs in the same order:
//! the instruction set ([`crate::model::kernels::isa`]) never changes a bit of a result.
//! burn-flex's general GEMM packs and tiles for large products and is
//! slower for these shapes (`hyperscale bench decode` measures the
//! difference; `docs/speed.md`).
//!
//! [`flex_linear`] is the entry used by [`crate::model::layers::linear::Linear`]: it takes
//! the Flex tensors' storage directly and answers `None` (the caller falls
//! back to burn's matmul) for any other backend, layout or row count.
//! Summation order is fixed per build, so results are deterministic.

use std::any::{Any, TypeId};

use burn::backend::flex::{Flex, FlexTensor};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

use crate::model::kernels::isa::Isa;

/// Most activation rows the kernel takes; more rows go to burn's GEMM,
/// which then reuses each weight tile enough to win.
pub const MAX_ROWS: usize = 16;

/// Output features per parallel task: 64 rows of a 576-wide weight are
/// 144 KiB, enough work to amortize a rayon split.
const BLOCK: usize = 64;

/// `y[r, o] = Σ_i x[r, i] · w[o, i] + bias[o]`.
///
/// # Shapes
/// `w`: `[out, inp]` row-major; `x`: `[n, inp]`; `bias`: `[out]`;
/// returns `[n, out]`.
pub fn gemv(
    w: &[f32],
    out: usize,
    inp: usize,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    gemv_with(Isa::active(), w, out, inp, x, n, bias)
}

/// [`gemv`] with the kernels of `isa`, which the CPU must run.
pub fn gemv_with(
    isa: Isa,
    w: &[f32],
    out: usize,
    inp: usize,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert_eq!(w.len(), out * inp, "gemv: weight is not [out, in]");
    let rows = Rows::new(isa, x, n, inp);
    by_feature_blocks(out, n, balanced_task_rows(out, BLOCK), bias, |o0, yt| {
        let count = yt.len() / n;
        block(&w[o0 * inp..(o0 + count) * inp], &rows, yt);
    })
}

/// Output features per parallel task: at most `most`, a multiple of 4
/// (the kernels' weight-row groups), and the tasks a multiple of the
/// pool's threads where the rows allow it, so that the threads share the
/// rows evenly (576 rows on 2 threads: 6 tasks of 96, not 128, 128, 128,
/// 128 and 64, which left one thread a quarter more to do than the other).
/// Which task computes a feature never changes its value.
pub(super) fn balanced_task_rows(out: usize, most: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let tasks = threads * out.div_ceil(threads * most);
    out.div_ceil(tasks.max(1))
        .next_multiple_of(4)
        .clamp(4, most.max(4))
}

/// `y` (`[n, out]`, row-major) computed in blocks of `task_rows` output
/// features in parallel ([`super::step_pool::for_each_mut`]): `f(o0, yt)`
/// fills `yt` (`[count, n]`, feature-major) with the sums of features
/// `o0..o0 + count`; the task then adds the bias (`yt + bias[o]`) and
/// writes the block to its columns of `y` while it is still in L1.
/// (A standalone copy of both loops over a 16-row SmolLM2 step's
/// projections on the AMD EPYC VM: ≈ 8 ms of CPU time to transpose each
/// whole `[out, n]` result afterwards on the step's thread, its 12 KiB and
/// 192 KiB row strides falling into the same L1 sets, against ≈ 0.7 ms
/// this way, spread over the tasks.)
pub(super) fn by_feature_blocks(
    out: usize,
    n: usize,
    task_rows: usize,
    bias: Option<&[f32]>,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    assert!(task_rows > 0, "by_feature_blocks: empty tasks");
    if let Some(b) = bias {
        assert_eq!(b.len(), out, "by_feature_blocks: bias is not [out]");
    }
    let mut y: Vec<f32> = Vec::with_capacity(n * out);
    let base = OutPtr(y.as_mut_ptr());
    let mut tasks = vec![(); out.div_ceil(task_rows)];
    super::step_pool::for_each_mut(&mut tasks, |t, _| {
        let o0 = t * task_rows;
        let count = task_rows.min(out - o0);
        let mut yt = vec![0.0f32; count * n];
        f(o0, &mut yt);
        for (j, col) in yt.chunks(n).enumerate() {
            let b = bias.map(|b| b[o0 + j]);
            for (r, &v) in col.iter().enumerate() {
                let v = match b {
                    Some(b) => v + b,
                    None => v,
                };
                // SAFETY: `r < n` and `o0 + j < out`, inside the `n · out`
                // floats of `y`'s allocation; each task writes only its
                // own features' columns, so no two writes overlap.
                unsafe { base.at(r * out + o0 + j).write(v) };
            }
        }
    });
    // SAFETY: the tasks cover every feature `0..out`, each writing its
    // column of every row: all `n · out` floats are initialized.
    unsafe { y.set_len(n * out) };
    y
}

/// The output buffer of [`by_feature_blocks`], shared by its tasks.
struct OutPtr(*mut f32);

impl OutPtr {
    /// The float `i` of the buffer.
    fn at(&self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

// SAFETY: the tasks write disjoint floats (see `by_feature_blocks`).
unsafe impl Sync for OutPtr {}

/// The activation rows of one product, laid out for the kernels of `isa`.
pub(super) struct Rows<'a> {
    isa: Isa,
    /// `[n, inp]`, row-major.
    x: &'a [f32],
    n: usize,
    inp: usize,
    /// For the AVX-512 kernel (`n ≥ 2`), rows `2p` and `2p + 1` side by side
    /// chunk by chunk: floats `16 (p·chunks + c) ..` are row `2p`'s floats
    /// `8c..8c + 8`, then row `2p + 1`'s (zeros past the last row), for
    /// `chunks = inp / 8`. Empty otherwise.
    pairs: Vec<f32>,
}

impl<'a> Rows<'a> {
    /// # Shapes
    /// `x`: `[n, inp]`.
    ///
    /// # Panics
    /// If `x` is not `[n, inp]` or the CPU does not run `isa`.
    pub(super) fn new(isa: Isa, x: &'a [f32], n: usize, inp: usize) -> Self {
        assert_eq!(x.len(), n * inp, "gemv: x is not [n, in]");
        assert!(isa.runs_here(), "this CPU does not run {isa} kernels");
        let mut pairs = Vec::new();
        if isa == Isa::Avx512 && n >= 2 {
            let chunks = inp / 8;
            pairs = vec![0.0f32; n.div_ceil(2) * chunks * 16];
            for (r, xr) in x.chunks_exact(inp).enumerate() {
                let (p, h) = (r / 2, r % 2);
                for (c, src) in xr.chunks_exact(8).enumerate() {
                    let at = (p * chunks + c) * 16 + h * 8;
                    pairs[at..at + 8].copy_from_slice(src);
                }
            }
        }
        Self {
            isa,
            x,
            n,
            inp,
            pairs,
        }
    }

    /// Activation rows.
    pub(super) fn n(&self) -> usize {
        self.n
    }

    /// Floats per activation row.
    pub(super) fn inp(&self) -> usize {
        self.inp
    }

    /// For the AVX-512 kernels (`n ≥ 2`), rows `2p` and `2p + 1` side by
    /// side chunk by chunk, as the field of the same name holds them.
    pub(super) fn pairs(&self) -> &[f32] {
        &self.pairs
    }
}

/// One block of output features: `yt[o, r]` for the rows of `w`.
///
/// # Shapes
/// `w`: `[count, inp]`; `x`: [`Rows`] of `[n, inp]`; `yt`: `[count, n]`.
pub(super) fn block(w: &[f32], x: &Rows, yt: &mut [f32]) {
    let (inp, n) = (x.inp, x.n);
    match x.isa {
        // SAFETY (both): `Rows::new` checked that the CPU runs `x.isa`, and
        // AVX-512 F + DQ come with AVX2, FMA and F16C (`Isa::runs_here`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if n >= 2 => unsafe { block_avx512(w, x, yt) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => unsafe { block_avx2(w, inp, x.x, n, yt) },
        _ => block_portable(w, inp, x.x, n, yt),
    }
}

/// Four rows of `w` against each row of `x`, in 8 interleaved partial sums
/// per output (the order the AVX2 path uses, lane for lane).
fn block_portable(w: &[f32], inp: usize, x: &[f32], n: usize, yt: &mut [f32]) {
    let rows = w.len() / inp;
    let chunks = inp / 8;
    let mut o = 0;
    while o < rows {
        let take = (rows - o).min(4);
        for r in 0..n {
            let xr = &x[r * inp..(r + 1) * inp];
            for j in 0..take {
                let wr = &w[(o + j) * inp..(o + j + 1) * inp];
                let mut acc = [0.0f32; 8];
                for c in 0..chunks {
                    for l in 0..8 {
                        acc[l] = wr[c * 8 + l].mul_add(xr[c * 8 + l], acc[l]);
                    }
                }
                yt[(o + j) * n + r] = add_tail(hsum(acc), wr, xr, chunks);
            }
        }
        o += take;
    }
}

/// `s` plus the products past the last whole 8-lane chunk (floats
/// `8·chunks..` of the row pair), in order: the scalar tail of every path.
#[inline(always)]
fn add_tail(s: f32, wr: &[f32], xr: &[f32], chunks: usize) -> f32 {
    let (wr, xr) = (&wr[chunks * 8..], &xr[chunks * 8..]);
    wr.iter().zip(xr).fold(s, |s, (w, x)| w.mul_add(*x, s))
}

/// Sum of eight lanes in the order `hsum4_avx2` uses.
pub(super) fn hsum(a: [f32; 8]) -> f32 {
    let h = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (h[0] + h[1]) + (h[2] + h[3])
}

/// Activation rows per register tile: 4 weight rows × 3 rows of `x` are 12
/// independent FMA chains (more than the FMA latency × throughput of these
/// cores needs) and 7 loads per 12 FMAs, in 16 vector registers.
const TILE_ROWS: usize = 3;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_avx2(w: &[f32], inp: usize, x: &[f32], n: usize, yt: &mut [f32]) {
    let rows = w.len() / inp;
    let mut o = 0;
    while o + 4 <= rows {
        let wr = &w[o * inp..(o + 4) * inp];
        // The next four rows, fetched from memory during the first tile so
        // that the remaining tiles (from L1) overlap the stream.
        let next = w.get((o + 4) * inp..(o + 8) * inp);
        let mut r = 0;
        while r + TILE_ROWS <= n {
            tile_avx2::<TILE_ROWS>(wr, inp, x, r, n, &mut yt[o * n..], next.filter(|_| r == 0));
            r += TILE_ROWS;
        }
        let next = next.filter(|_| r == 0);
        match n - r {
            2 => tile_avx2::<2>(wr, inp, x, r, n, &mut yt[o * n..], next),
            1 => tile_avx2::<1>(wr, inp, x, r, n, &mut yt[o * n..], next),
            _ => {}
        }
        o += 4;
    }
    if o < rows {
        block_portable(&w[o * inp..], inp, x, n, &mut yt[o * n..]);
    }
}

/// Four weight rows (`w`: `[4, inp]`) against activation rows `r0..r0 + R`:
/// writes `yt[j * n + r]`. Each output sums its 8 lanes chunk by chunk, then
/// the lanes as [`hsum`] does and the ragged tail in order, so the tile
/// shape never changes a result. `prefetch` (`[4, inp]`) is brought into the
/// cache along the way, two lines per chunk.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tile_avx2<const R: usize>(
    w: &[f32],
    inp: usize,
    x: &[f32],
    r0: usize,
    n: usize,
    yt: &mut [f32],
    prefetch: Option<&[f32]>,
) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch, _mm256_setzero_ps};
    assert!(w.len() >= 4 * inp && x.len() >= (r0 + R) * inp && yt.len() >= 3 * n + r0 + R);
    let chunks = inp / 8;
    let wp = [0, 1, 2, 3].map(|j| w[j * inp..].as_ptr());
    let mut xp = [x.as_ptr(); R];
    for (r, p) in xp.iter_mut().enumerate() {
        *p = x[(r0 + r) * inp..].as_ptr();
    }
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    if let Some(p) = prefetch {
        // 4 rows of `inp` floats over `inp / 8` chunks: 32 floats (two cache
        // lines) per chunk; the wrapping offsets past a ragged end are never
        // dereferenced (a prefetch does not fault).
        let p = p.as_ptr();
        for c in 0..chunks {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(c * 32) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(c * 32 + 16) as *const i8);
            // SAFETY: `c * 8 + 8 <= inp`, and `wp`, `xp` start rows of
            // `inp` floats (asserted above).
            unsafe { fma_chunk(&mut acc, &wp, &xp, c) };
        }
    } else {
        for c in 0..chunks {
            // SAFETY: as above.
            unsafe { fma_chunk(&mut acc, &wp, &xp, c) };
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let sums = hsum4_avx2(acc);
        let xr = &x[(r0 + r) * inp..(r0 + r + 1) * inp];
        for (j, s) in sums.into_iter().enumerate() {
            yt[j * n + r0 + r] = add_tail(s, &w[j * inp..(j + 1) * inp], xr, chunks);
        }
    }
}

/// Chunk `c` (floats `8c..8c + 8`) of four weight rows times `R` activation
/// rows, added into `acc[r][j]`.
///
/// # Safety
/// Every `wp[j]` and `xp[r]` must point at `8c + 8` readable floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fma_chunk<const R: usize>(
    acc: &mut [[std::arch::x86_64::__m256; 4]; R],
    wp: &[*const f32; 4],
    xp: &[*const f32; R],
    c: usize,
) {
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps};
    // SAFETY: the caller's contract.
    unsafe {
        let mut xv = [_mm256_setzero_ps(); R];
        for r in 0..R {
            xv[r] = _mm256_loadu_ps(xp[r].add(c * 8));
        }
        for j in 0..4 {
            let wv = _mm256_loadu_ps(wp[j].add(c * 8));
            for r in 0..R {
                acc[r][j] = _mm256_fmadd_ps(wv, xv[r], acc[r][j]);
            }
        }
    }
}

/// The lane sums of four accumulators at once, each added exactly as
/// [`hsum`] adds them: `h_i = a_i + a_{i+4}`, then `(h0 + h1) + (h2 + h3)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn hsum4_avx2(v: &[std::arch::x86_64::__m256; 4]) -> [f32; 4] {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_hadd_ps, _mm256_permute2f128_ps, _mm256_storeu_ps,
    };
    // [h(v0) | h(v1)] and [h(v2) | h(v3)]: each lane a_i + a_{i+4}.
    let h01 = _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(v[0], v[1]),
        _mm256_permute2f128_ps::<0x31>(v[0], v[1]),
    );
    let h23 = _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(v[2], v[3]),
        _mm256_permute2f128_ps::<0x31>(v[2], v[3]),
    );
    // Per 128-bit half: [h0+h1, h2+h3] of the first vector, then the second's.
    let pairs = _mm256_hadd_ps(h01, h23);
    // Lanes 0, 4, 1, 5 hold the sums of v0, v1, v2, v3.
    let sums = _mm256_hadd_ps(pairs, pairs);
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums) };
    [lanes[0], lanes[4], lanes[1], lanes[5]]
}

/// Activation-row pairs per AVX-512 register tile: 4 weight rows × 4 pairs
/// (8 rows of `x`) are 16 FMA chains of 16 lanes, 8 loads per 16 FMAs, in
/// 24 of the 32 vector registers.
const PAIR_TILE: usize = 4;

/// [`block_avx2`] with 16-lane FMAs: each vector holds two activation rows'
/// 8-lane partial sums side by side ([`Rows::pairs`]) and multiplies them
/// by one weight chunk broadcast to both halves, so every lane sees exactly
/// the FMAs of the 8-lane kernel, in the same order.
///
/// # Shapes
/// `w`: `[count, inp]`; `x`: `[n, inp]` with `n ≥ 2`; `yt`: `[count, n]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn block_avx512(w: &[f32], x: &Rows, yt: &mut [f32]) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let (inp, n) = (x.inp, x.n);
    let count = w.len() / inp;
    let mut o = 0;
    while o + 4 <= count {
        // Fetched during the first tile, as in `block_avx2`.
        let next = w.get((o + 4) * inp..(o + 8) * inp).map(<[f32]>::as_ptr);
        let prefetch = |c: usize| {
            if let Some(p) = next {
                // Two cache lines of the next four rows per chunk (see
                // `tile_avx2`); never dereferenced.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(c * 32) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(c * 32 + 16) as *const i8);
            }
        };
        rows4_avx512(
            &w[o * inp..(o + 4) * inp],
            x,
            &mut yt[o * n..],
            prefetch,
            |_| {},
        );
        o += 4;
    }
    if o < count {
        block_portable(&w[o * inp..], inp, x.x, n, &mut yt[o * n..]);
    }
}

/// Four weight rows (`w`: `[4, inp]`) against every activation pair of
/// `x` (`n ≥ 2`), in tiles of up to [`PAIR_TILE`] pairs: writes
/// `yt[j * n + r]`. `first(c)` runs at the start of chunk `c` of the first
/// tile and `rest(c)` at that of every other tile: work for the load and
/// store ports (a prefetch, the next rows' dequantization) overlapped with
/// the tile's FMAs. They never touch `w`, `x` or `yt`, so each output is
/// what the tiles alone compute.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
pub(super) fn rows4_avx512(
    w: &[f32],
    x: &Rows,
    yt: &mut [f32],
    mut first: impl FnMut(usize),
    mut rest: impl FnMut(usize),
) {
    let pairs = x.n.div_ceil(2);
    let mut p = 0;
    while p + PAIR_TILE <= pairs {
        if p == 0 {
            tile_avx512::<PAIR_TILE>(w, x, p, yt, &mut first);
        } else {
            tile_avx512::<PAIR_TILE>(w, x, p, yt, &mut rest);
        }
        p += PAIR_TILE;
    }
    if p == 0 {
        last_tile_avx512(w, x, p, yt, &mut first);
    } else {
        last_tile_avx512(w, x, p, yt, &mut rest);
    }
}

/// The tile of the pairs from `p0` to the last one (fewer than
/// [`PAIR_TILE`]; none when `p0` is past them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
fn last_tile_avx512(w: &[f32], x: &Rows, p0: usize, yt: &mut [f32], side: &mut impl FnMut(usize)) {
    match x.n.div_ceil(2) - p0 {
        3 => tile_avx512::<3>(w, x, p0, yt, side),
        2 => tile_avx512::<2>(w, x, p0, yt, side),
        1 => tile_avx512::<1>(w, x, p0, yt, side),
        _ => {}
    }
}

/// Four weight rows (`w`: `[4, inp]`) against activation pairs
/// `p0..p0 + P` (rows `2 p0..2 (p0 + P)` that exist): writes `yt[j * n + r]`
/// exactly as [`tile_avx2`] does, each half's lanes summed by
/// [`hsum4_avx2`]. `side(c)` runs before chunk `c` ([`rows4_avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
fn tile_avx512<const P: usize>(
    w: &[f32],
    x: &Rows,
    p0: usize,
    yt: &mut [f32],
    side: &mut impl FnMut(usize),
) {
    use std::arch::x86_64::{_mm512_castps512_ps256, _mm512_extractf32x8_ps, _mm512_setzero_ps};
    let (inp, n) = (x.inp, x.n);
    let chunks = inp / 8;
    let rows_end = (2 * (p0 + P)).min(n);
    assert!(
        w.len() >= 4 * inp
            && x.pairs.len() >= (p0 + P) * chunks * 16
            && yt.len() >= 3 * n + rows_end
    );
    let wp = [0, 1, 2, 3].map(|j| w[j * inp..].as_ptr());
    let mut xp = [x.pairs.as_ptr(); P];
    for (p, ptr) in xp.iter_mut().enumerate() {
        *ptr = x.pairs[(p0 + p) * chunks * 16..].as_ptr();
    }
    let mut acc = [[_mm512_setzero_ps(); 4]; P];
    for c in 0..chunks {
        side(c);
        // SAFETY: `c * 8 + 8 <= inp` floats from each `wp[j]`, and
        // `c * 16 + 16 <= chunks * 16` from each `xp[p]` (asserted).
        unsafe { fma_chunk_pairs(&mut acc, &wp, &xp, c) };
    }
    for (p, acc) in acc.iter().enumerate() {
        let halves = [
            acc.map(|v| _mm512_castps512_ps256(v)),
            acc.map(|v| _mm512_extractf32x8_ps::<1>(v)),
        ];
        for (h, half) in halves.iter().enumerate() {
            let r = 2 * (p0 + p) + h;
            if r >= n {
                break;
            }
            let xr = &x.x[r * inp..(r + 1) * inp];
            for (j, s) in hsum4_avx2(half).into_iter().enumerate() {
                yt[j * n + r] = add_tail(s, &w[j * inp..(j + 1) * inp], xr, chunks);
            }
        }
    }
}

/// Chunk `c` of four weight rows (8 floats each, broadcast to both halves)
/// times `P` activation pairs (16 floats each), added into `acc[p][j]`.
///
/// # Safety
/// Every `wp[j]` must point at `8c + 8` readable floats, every `xp[p]` at
/// `16c + 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
pub(super) unsafe fn fma_chunk_pairs<const P: usize>(
    acc: &mut [[std::arch::x86_64::__m512; 4]; P],
    wp: &[*const f32; 4],
    xp: &[*const f32; P],
    c: usize,
) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm512_broadcast_f32x8, _mm512_fmadd_ps, _mm512_loadu_ps,
        _mm512_setzero_ps,
    };
    // SAFETY: the caller's contract.
    unsafe {
        let mut xv = [_mm512_setzero_ps(); P];
        for p in 0..P {
            xv[p] = _mm512_loadu_ps(xp[p].add(c * 16));
        }
        for j in 0..4 {
            let wv = _mm512_broadcast_f32x8(_mm256_loadu_ps(wp[j].add(c * 8)));
            for p in 0..P {
                acc[p][j] = _mm512_fmadd_ps(wv, xv[p], acc[p][j]);
            }
        }
    }
}

/// Whether `B` is Flex, the CPU backend these kernels read directly.
pub fn is_flex<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
}

thread_local! {
    /// Whether this thread is running a decode step ([`decode_step`]).
    static DECODE_STEP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as running a decode step until the guard drops.
///
/// A decode step's projections stream each weight once for up to
/// [`MAX_ROWS`] rows, each row summed in its own fixed order; more rows
/// would fall through to burn's matrix product, which rounds them
/// otherwise. Within a step, [`crate::model::layers::linear::Linear`]
/// therefore runs a larger batch as groups of [`MAX_ROWS`] rows, so every
/// sequence gets the logits it gets alone, bit for bit, however many
/// sequences share the step (`--max-sequences` never changes a record).
/// A prefill, whose rows are one prompt's, keeps burn's product.
pub fn decode_step() -> DecodeStep {
    DecodeStep(DECODE_STEP.replace(true))
}

/// Whether this thread is inside a [`decode_step`].
pub fn in_decode_step() -> bool {
    DECODE_STEP.get()
}

/// The guard of [`decode_step`]; restores the earlier state on drop.
#[must_use]
pub struct DecodeStep(bool);

impl Drop for DecodeStep {
    fn drop(&mut self) {
        DECODE_STEP.set(self.0);
    }
}

/// `x·Wᵀ (+ b)` through [`gemv`] when the backend is Flex, `x` has at most
/// [`MAX_ROWS`] rows and the weight is the transposed view of a contiguous
/// `[out, in]` f32 buffer (how [`crate::model::layers::linear::Linear`] stores it);
/// `None` otherwise.
///
/// # Shapes
/// `x`: `[n, in]`; `w_t`: `[in, out]` (strides `[1, in]`); `bias`: `[out]`;
/// returns `[n, out]`.
pub fn flex_linear<B: Backend>(
    x: &Tensor<B, 2>,
    w_t: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
) -> Option<Tensor<B, 2>> {
    if TypeId::of::<B>() != TypeId::of::<Flex>() {
        return None;
    }
    let [n, inp] = x.dims();
    let out = w_t.dims()[1];
    if n == 0 || n > MAX_ROWS {
        return None;
    }
    let wp = flex(w_t.clone().into_primitive())?;
    let layout = wp.layout();
    if layout.strides() != [1, inp as isize] || layout.start_offset() != 0 {
        return None;
    }
    let w = wp.as_slice::<f32>().or_else(|| {
        // A transposed view is not "contiguous" to flex; its storage is.
        let s = wp.storage::<f32>();
        (s.len() == out * inp).then_some(s)
    })?;
    with_flex_slices(x, bias, |xs, bs| gemv(w, out, inp, xs, n, bs), [n, out])
}

/// Runs `f` on the f32 storage of `x` and `bias` (Flex tensors) and wraps
/// its `[n, out]` result as a tensor of `B`; `None` when `B` is not Flex or
/// a tensor is not contiguous f32.
pub(super) fn with_flex_slices<B: Backend>(
    x: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
    f: impl FnOnce(&[f32], Option<&[f32]>) -> Vec<f32>,
    shape: [usize; 2],
) -> Option<Tensor<B, 2>> {
    let xp = flex(x.clone().into_primitive())?;
    let xs = xp.as_slice::<f32>()?;
    let bp = match bias {
        Some(b) => Some(flex(b.clone().into_primitive())?),
        None => None,
    };
    let bs = match &bp {
        Some(b) => Some(b.as_slice::<f32>()?),
        None => None,
    };
    from_flex_vec(f(xs, bs), shape)
}

/// `data` as a Flex tensor of `shape`, typed as backend `B`'s (`None`
/// unless `B` is Flex).
pub(super) fn from_flex_vec<B: Backend, const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
) -> Option<Tensor<B, D>> {
    let prim: Box<dyn Any> = Box::new(FlexTensor::from_data(TensorData::new(data, shape)));
    let prim = prim.downcast::<B::FloatTensorPrimitive>().ok()?;
    Some(Tensor::from_primitive(TensorPrimitive::Float(*prim)))
}

/// The Flex tensor behind a float primitive of backend `B` (`B` = Flex).
pub(super) fn flex<B: Backend>(p: TensorPrimitive<B>) -> Option<FlexTensor> {
    let TensorPrimitive::Float(p) = p else {
        return None;
    };
    let p: Box<dyn Any> = Box::new(p);
    p.downcast::<FlexTensor>().ok().map(|b| *b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn reference(
        w: &[f32],
        out: usize,
        inp: usize,
        x: &[f32],
        n: usize,
        b: Option<&[f32]>,
    ) -> Vec<f32> {
        let mut y = vec![0.0f64; n * out];
        for r in 0..n {
            for o in 0..out {
                let mut s = b.map_or(0.0, |b| b[o] as f64);
                for i in 0..inp {
                    s += w[o * inp + i] as f64 * x[r * inp + i] as f64;
                }
                y[r * out + o] = s;
            }
        }
        y.into_iter().map(|v| v as f32).collect()
    }

    fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn matches_f64_reference_on_ragged_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Output counts off the 4-row and 64-row grids, widths off the
        // 8-lane grid, 1..=MAX_ROWS activation rows.
        for &(out, inp, n) in &[
            (1, 1, 1),
            (5, 7, 1),
            (67, 13, 3),
            (130, 64, 16),
            (259, 576, 2),
        ] {
            let w = random(out * inp, &mut rng);
            let x = random(n * inp, &mut rng);
            let b = random(out, &mut rng);
            for bias in [None, Some(b.as_slice())] {
                let got = gemv(&w, out, inp, &x, n, bias);
                let want = reference(&w, out, inp, &x, n, bias);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{out}x{inp} n={n}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_agrees_with_the_portable_path_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // Every activation-row count (each mix of 3-, 2- and 1-row AVX2
        // tiles; 4-, 3-, 2- and 1-pair AVX-512 tiles, odd counts leaving a
        // half pair), widths on and off the 8-lane grid (and below it),
        // outputs off the 4-row grid.
        for (out, inp) in [(70, 100), (9, 576), (6, 5)] {
            for n in 1..=MAX_ROWS {
                let w = random(out * inp, &mut rng);
                let x = random(n * inp, &mut rng);
                let mut want = vec![0.0; out * n];
                block_portable(&w, inp, &x, n, &mut want);
                for isa in Isa::supported() {
                    let mut got = vec![f32::NAN; out * n];
                    block(&w, &Rows::new(isa, &x, n, inp), &mut got);
                    assert_eq!(got, want, "{isa} {out}x{inp} n={n}");
                }
            }
        }
    }

    #[test]
    fn flex_linear_equals_burn_matmul_and_declines_large_batches() {
        type B = Flex;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (out, inp) = (37, 24);
        let w = Tensor::<B, 2>::from_data(
            TensorData::new(random(out * inp, &mut rng), [out, inp]),
            &device,
        );
        let w_t = w.transpose();
        let bias =
            Tensor::<B, 1>::from_data(TensorData::new(random(out, &mut rng), [out]), &device);
        for n in [1, 4, MAX_ROWS] {
            let x = Tensor::<B, 2>::from_data(
                TensorData::new(random(n * inp, &mut rng), [n, inp]),
                &device,
            );
            let got = flex_linear(&x, &w_t, Some(&bias)).expect("flex path taken");
            let want = x.matmul(w_t.clone()) + bias.clone().unsqueeze::<2>();
            got.into_data().assert_approx_eq::<f32>(
                &want.into_data(),
                burn::tensor::Tolerance::absolute(1e-5),
            );
        }
        let big = Tensor::<B, 2>::zeros([MAX_ROWS + 1, inp], &device);
        assert!(flex_linear(&big, &w_t, None).is_none());
        // A contiguous [in, out] weight is not the layout the kernel reads.
        let contiguous = Tensor::<B, 2>::zeros([inp, out], &device);
        let x = Tensor::<B, 2>::zeros([1, inp], &device);
        assert!(flex_linear(&x, &contiguous, None).is_none());
    }
}
