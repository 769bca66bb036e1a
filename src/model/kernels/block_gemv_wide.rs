//! The exact AVX-512 projection over ggml blocks for more than
//! [`WIDE_FROM`] activation rows (a batched decode step's 9–16 rows):
//! the pipelined tasks of [`super::block_gemv`] with two changes that pay
//! only when a group of four weight rows meets two or more tiles of
//! activation pairs.
//!
//! - Each tile writes its sums straight into the row-major result, one
//!   4-float store per activation row ([`TaskOut::put4`]), instead of a
//!   feature-major block that [`super::gemv::by_feature_blocks`] scatters
//!   float by float afterwards.
//! - Each tile sums its lanes with [`hsum8_avx512`] (both rows of a pair
//!   at once, in [`super::gemv::hsum`]'s order) instead of two
//!   `hsum4_avx2`s.
//! - The tiles read the activation pairs and the dequantized weights
//!   from buffers that start on a cache line ([`Aligned`]), so that no
//!   16-lane load of a pair and no 8-float weight load straddles two
//!   lines. (A copy of the pairs per call, because [`Rows`] is shared
//!   with the paths for fewer rows. In a single-thread copy of this
//!   kernel timed in thread CPU time on the 2-core AMD EPYC VM,
//!   2026-12-07, SmolLM2's projections at 10, 13 and 16 rows took 3–5%
//!   less time in the layers' Q4_1 weights and 2–10% less in the Q8_0
//!   lm head, the best of 20–30 passes each, alternated with the old
//!   kernel.)
//!
//! Every output gets the FMAs, lane sums and bias addition of
//! [`super::block_gemv::gemv_blocks`]' other paths in the same order, so
//! the result is the same bits (`tests`). The code is separate from the
//! paths for up to [`WIDE_FROM`] rows so that those compile exactly as
//! before: sharing the tiles with them once made 8 rows' projections 19%
//! slower in a non-incremental release build.

use crate::model::formats::gguf::GgmlType;
use crate::model::kernels::block_gemv::{
    BlockWeight, GROUP, Q4_0, Q4_1, Q8_0, dequantize_block16, dequantize_blocks_avx512,
};
use crate::model::kernels::gemv::{self, Rows};
use crate::model::kernels::isa::Isa;

/// Above this many activation rows [`super::block_gemv::gemv_blocks`] on
/// AVX-512 runs this module's kernel.
pub(super) const WIDE_FROM: usize = 8;

/// Activation pairs per register tile, as in [`super::gemv`]'s AVX-512
/// tiles: 4 weight rows × 4 pairs are 16 FMA chains of 16 lanes.
const PAIR_TILE: usize = 4;

/// [`super::block_gemv::gemv_blocks`] for `WIDE_FROM < n ≤ 16` rows with
/// AVX-512, in tasks of `task_rows` weight rows. Kept out of line so that
/// its caller, and through it the paths for fewer rows, compile as they
/// did without it.
///
/// # Shapes
/// `w`: `[out, inp]` blocks; `x`: `[n, inp]`; `bias`: `[out]`; returns
/// `[n, out]`.
///
/// # Panics
/// If the CPU does not run AVX-512 or `n` is outside `WIDE_FROM + 1..=16`.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub(super) fn gemv_blocks(
    w: &BlockWeight,
    x: &Rows,
    task_rows: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(
        Isa::Avx512.runs_here(),
        "this CPU does not run avx512 kernels"
    );
    let n = x.n();
    assert!(
        n > WIDE_FROM && n <= gemv::MAX_ROWS,
        "block_gemv_wide: {n} rows"
    );
    let row_bytes = w.row_bytes();
    // The pairs again, on cache-line boundaries: [`Rows::pairs`] starts
    // wherever the allocator put it, and then every 64-byte load of a
    // pair straddles two lines.
    let pairs = Aligned::copy_of(x.pairs());
    row_major_blocks(w.rows, n, task_rows, bias, |o0, y| {
        let src = &w.bytes[o0 * row_bytes..(o0 + y.count) * row_bytes];
        // SAFETY: the CPU runs AVX-512 (asserted), and AVX-512 F + DQ
        // come with AVX2, FMA and F16C (`Isa::runs_here`).
        unsafe { task(w.kind, src, x, pairs.as_slice(), y) };
    })
}

/// `y` (`[n, out]`, row-major) computed in tasks of `task_rows` output
/// features in parallel ([`super::step_pool::for_each_mut`]): `f(o0, t)`
/// writes every output of features `o0..o0 + t.count` once through `t`,
/// which adds the bias as [`super::gemv::by_feature_blocks`] does (`v +
/// bias[o]`, one rounding). (The scalar scatter of feature-major blocks
/// was ≈ 6% of a 16-row SmolLM2 step's samples in `perf record` on the
/// 2-core AMD EPYC VM.)
fn row_major_blocks(
    out: usize,
    n: usize,
    task_rows: usize,
    bias: Option<&[f32]>,
    f: impl Fn(usize, &mut TaskOut) + Sync,
) -> Vec<f32> {
    assert!(task_rows > 0, "row_major_blocks: empty tasks");
    if let Some(b) = bias {
        assert_eq!(b.len(), out, "row_major_blocks: bias is not [out]");
    }
    let mut y: Vec<f32> = Vec::with_capacity(n * out);
    let base = OutPtr(y.as_mut_ptr());
    let mut tasks = vec![(); out.div_ceil(task_rows)];
    super::step_pool::for_each_mut(&mut tasks, |t, _| {
        let o0 = t * task_rows;
        let mut task = TaskOut {
            y: &base,
            out,
            n,
            o0,
            count: task_rows.min(out - o0),
            bias: bias.map(|b| &b[o0..]),
        };
        f(o0, &mut task);
    });
    // SAFETY: the tasks cover every feature `0..out`, and each writes
    // every row's output of each of its features (the contract of `f`).
    unsafe { y.set_len(n * out) };
    y
}

/// `len` floats starting on a 64-byte boundary (a cache line, and the
/// width of the 16-lane loads), zeroed or copied.
struct Aligned {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl Aligned {
    /// `len` zeros.
    fn zeros(len: usize) -> Self {
        let buf = vec![0.0f32; len + 15];
        let off = buf.as_ptr().align_offset(64);
        assert!(off < 16, "Aligned: f32s are 4-byte aligned");
        Self { buf, off, len }
    }

    /// A copy of `src` (written once, not zeroed first).
    fn copy_of(src: &[f32]) -> Self {
        let mut buf: Vec<f32> = Vec::with_capacity(src.len() + 15);
        let off = buf.as_ptr().align_offset(64);
        assert!(off < 16, "Aligned: f32s are 4-byte aligned");
        buf.resize(off, 0.0);
        buf.extend_from_slice(src);
        Self {
            buf,
            off,
            len: src.len(),
        }
    }

    fn as_slice(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

/// The output buffer of [`row_major_blocks`], shared by its tasks.
struct OutPtr(*mut f32);

// SAFETY: the tasks write disjoint floats (see `TaskOut`).
unsafe impl Sync for OutPtr {}

/// One task's features `o0..o0 + count` of the row-major result of
/// [`row_major_blocks`]; every write is bounds-checked against them, so
/// tasks never write each other's floats.
struct TaskOut<'a> {
    y: &'a OutPtr,
    out: usize,
    n: usize,
    o0: usize,
    count: usize,
    /// The bias of features `o0..`.
    bias: Option<&'a [f32]>,
}

impl TaskOut<'_> {
    /// `y[r, o0 + k + j] = s[j] (+ bias[o0 + k + j])` for the lanes `j`
    /// of `s` whose feature `k + j` is one of the task's (all four but in
    /// a partial last group): one 4-float store. The bias is added lane
    /// by lane, as `v + b` ([`super::gemv::by_feature_blocks`]). (SSE
    /// only, so that it inlines into every tile: called out of line it
    /// kept the tile's accumulators on the stack.)
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn put4(&mut self, r: usize, k: usize, s: std::arch::x86_64::__m128) {
        use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_storeu_ps};
        assert!(r < self.n && k < self.count, "TaskOut::put4: ({r}, {k})");
        if k + 4 > self.count {
            self.put_partial(r, k, s);
            return;
        }
        let s = match self.bias {
            // SAFETY: `k + 4 <= count <= bias.len()`; SSE is part of
            // x86_64.
            Some(b) => unsafe { _mm_add_ps(s, _mm_loadu_ps(b[k..k + 4].as_ptr())) },
            None => s,
        };
        // SAFETY: `r < n` and `o0 + k + 4 <= o0 + count <= out`, inside
        // the `n · out` floats of `y`; only this task writes features
        // `o0..o0 + count`.
        unsafe { _mm_storeu_ps(self.y.0.add(r * self.out + self.o0 + k), s) };
    }

    /// [`TaskOut::put4`] for the lanes of a partial last group.
    #[cfg(target_arch = "x86_64")]
    #[cold]
    #[inline(never)]
    fn put_partial(&mut self, r: usize, k: usize, s: std::arch::x86_64::__m128) {
        let mut lanes = [0.0f32; 4];
        // SAFETY: `lanes` holds 4 floats.
        unsafe { std::arch::x86_64::_mm_storeu_ps(lanes.as_mut_ptr(), s) };
        for (j, v) in lanes.into_iter().enumerate().take(self.count - k) {
            let v = match self.bias {
                Some(b) => v + b[k + j],
                None => v,
            };
            // SAFETY: `r < n` and `o0 + k + j < o0 + count <= out` (the
            // caller's assertion and `take`), as in `put4`.
            unsafe { self.y.0.add(r * self.out + self.o0 + k + j).write(v) };
        }
    }
}

/// One task's weight rows (`bytes`, whole rows of blocks) against `x`,
/// into the task's features of the result, pipelined as
/// `block_gemv::pipelined_avx512` is: while the tiles of one group of
/// four weight rows run their FMAs, the first tile dequantizes the next
/// group into a second buffer, one block per chunk, and the second
/// prefetches the group after it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn task(kind: GgmlType, bytes: &[u8], x: &Rows, pairs: &[f32], y: &mut TaskOut) {
    match kind {
        GgmlType::Q4_0 => pipelined::<Q4_0, 18>(bytes, x, pairs, y),
        GgmlType::Q4_1 => pipelined::<Q4_1, 20>(bytes, x, pairs, y),
        GgmlType::Q8_0 => pipelined::<Q8_0, 34>(bytes, x, pairs, y),
        _ => unreachable!("BlockWeight::new admits only Q4_0, Q4_1 and Q8_0"),
    }
}

/// [`task`] for blocks of format `K`, `SIZE` bytes each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn pipelined<const K: u8, const SIZE: usize>(
    bytes: &[u8],
    x: &Rows,
    pairs: &[f32],
    y: &mut TaskOut,
) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch, _mm512_storeu_ps};
    let (n, inp) = (x.n(), x.inp());
    let count = y.count;
    let row_bytes = inp / 32 * SIZE;
    assert_eq!(
        bytes.len(),
        count * row_bytes,
        "block_gemv_wide: bytes are not the rows"
    );
    // A group's blocks: `GROUP · inp / 32 = inp / 8`, one per chunk of a tile.
    let group_bytes = GROUP * row_bytes;
    // Both buffers on cache-line boundaries (`GROUP · inp` floats are
    // whole lines, `inp` being whole 32-float blocks), like the pairs.
    let mut buffers = Aligned::zeros(2 * GROUP * inp);
    let (mut cur, mut next) = buffers.as_mut_slice().split_at_mut(GROUP * inp);
    let head = &bytes[..group_bytes.min(bytes.len())];
    dequantize_blocks_avx512::<K, SIZE>(head, &mut cur[..head.len() / SIZE * 32]);
    // A partial last group (dequantized by the previous one) runs as a
    // whole one: its missing rows hold stale floats, and their sums are
    // never stored (`TaskOut::put4`).
    for g in 0..count.div_ceil(GROUP) {
        let ahead = |k: usize| bytes.get((g + k) * group_bytes..).unwrap_or(&[]);
        let (src, after) = (ahead(1), ahead(2));
        let blocks = (src.len() / SIZE).min(GROUP * inp / 32);
        let dst = &mut *next;
        let mut dequantize_next = |c: usize| {
            if c < blocks {
                let b: &[u8; SIZE] = src[c * SIZE..(c + 1) * SIZE]
                    .try_into()
                    .expect("SIZE bytes");
                let [lo, hi] = dequantize_block16::<K, SIZE>(b);
                let o = &mut dst[c * 32..(c + 1) * 32];
                // SAFETY: `o` holds 32 floats.
                unsafe {
                    _mm512_storeu_ps(o.as_mut_ptr(), lo);
                    _mm512_storeu_ps(o[16..].as_mut_ptr(), hi);
                }
            }
        };
        let mut prefetch_after = |c: usize| {
            if (c + 1) * 64 <= after.len().min(group_bytes) {
                _mm_prefetch::<_MM_HINT_T0>(after[c * 64..].as_ptr() as *const i8);
            }
        };
        // More than 8 rows: a whole first tile, then 1 to 4 pairs.
        let k = g * GROUP;
        tile::<PAIR_TILE>(cur, x, pairs, 0, y, k, &mut dequantize_next);
        match n.div_ceil(2) - PAIR_TILE {
            4 => tile::<4>(cur, x, pairs, PAIR_TILE, y, k, &mut prefetch_after),
            3 => tile::<3>(cur, x, pairs, PAIR_TILE, y, k, &mut prefetch_after),
            2 => tile::<2>(cur, x, pairs, PAIR_TILE, y, k, &mut prefetch_after),
            1 => tile::<1>(cur, x, pairs, PAIR_TILE, y, k, &mut prefetch_after),
            _ => unreachable!("block_gemv_wide: 9 to 16 rows"),
        }
        std::mem::swap(&mut cur, &mut next);
    }
}

/// Four weight rows (`w`: `[4, inp]`, `inp` whole 8-float chunks) against
/// activation pairs `p0..p0 + P` (rows `2 p0..2 (p0 + P)` that exist;
/// `pairs`: `x`'s [`Rows::pairs`] or a copy of them):
/// puts row `r`'s sums of the task's features `k..k + 4` into `y`, each
/// as `gemv::tile_avx512` computes it (chunk by chunk in 8 lanes, the
/// lanes summed in [`gemv::hsum`]'s order). `side(c)` runs before chunk
/// `c`: work for the load and store ports that never touches `w`, `x` or
/// `y`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
fn tile<const P: usize>(
    w: &[f32],
    x: &Rows,
    pairs: &[f32],
    p0: usize,
    y: &mut TaskOut,
    k: usize,
    side: &mut impl FnMut(usize),
) {
    use std::arch::x86_64::{_mm_setzero_ps, _mm512_setzero_ps};
    let (inp, n) = (x.inp(), x.n());
    let chunks = inp / 8;
    assert!(
        chunks * 8 == inp && w.len() >= 4 * inp && pairs.len() >= (p0 + P) * chunks * 16,
        "block_gemv_wide: tile shapes"
    );
    // Plain loops rather than array `map`s here and below: a closure
    // left out of line spills the accumulators around its calls.
    let mut wp = [w.as_ptr(); 4];
    for (j, ptr) in wp.iter_mut().enumerate() {
        *ptr = w[j * inp..].as_ptr();
    }
    let mut xp = [pairs.as_ptr(); P];
    for (p, ptr) in xp.iter_mut().enumerate() {
        *ptr = pairs[(p0 + p) * chunks * 16..].as_ptr();
    }
    let mut acc = [[_mm512_setzero_ps(); 4]; P];
    for c in 0..chunks {
        side(c);
        // SAFETY: `c * 8 + 8 <= inp` floats from each `wp[j]`, and
        // `c * 16 + 16 <= chunks * 16` from each `xp[p]` (asserted).
        unsafe { gemv::fma_chunk_pairs(&mut acc, &wp, &xp, c) };
    }
    // Every pair's sums first, so that no accumulator lives across the
    // stores.
    let mut sums = [[_mm_setzero_ps(); 2]; P];
    for (s, acc) in sums.iter_mut().zip(&acc) {
        *s = hsum8_avx512(acc);
    }
    for (p, pair) in sums.iter().enumerate() {
        for (h, &s) in pair.iter().enumerate() {
            let r = 2 * (p0 + p) + h;
            if r >= n {
                break;
            }
            y.put4(r, k, s);
        }
    }
}

/// The lane sums of four 16-lane accumulators of one activation pair
/// (`v[j]`: weight row `j`; lanes 0–7 the pair's first row, 8–15 its
/// second), each 8-lane half added exactly as [`gemv::hsum`] adds it:
/// `h_i = a_i + a_{i+4}`, then `(h0 + h1) + (h2 + h3)` (a float sum of
/// two values does not depend on their order, only the grouping counts).
/// Returns the first row's four sums (lane `j`: `v[j]`), then the
/// second's: the work of two `hsum4_avx2`s in 12 vector operations.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
fn hsum8_avx512(v: &[std::arch::x86_64::__m512; 4]) -> [std::arch::x86_64::__m128; 2] {
    use std::arch::x86_64::{
        _mm512_add_ps, _mm512_castps512_ps128, _mm512_extractf32x4_ps, _mm512_permutexvar_ps,
        _mm512_setr_epi32, _mm512_shuffle_f32x4, _mm512_shuffle_ps,
    };
    // 128-bit quarters of `v[j]`: A_j lanes 0–3, A_j 4–7, B_j 0–3, B_j
    // 4–7. Quarters [v0.A, v0.B, v1.A, v1.B] of `s01` each hold h_0..h_3
    // of that half (`a_i + a_{i+4}`); `s23` the same for v2, v3.
    let s01 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(v[0], v[1]),
        _mm512_shuffle_f32x4::<0xDD>(v[0], v[1]),
    );
    let s23 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(v[2], v[3]),
        _mm512_shuffle_f32x4::<0xDD>(v[2], v[3]),
    );
    // Per quarter q: [h0 + h1, h2 + h3] of s01's quarter q, then s23's.
    let t = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(s01, s23),
        _mm512_shuffle_ps::<0xDD>(s01, s23),
    );
    // Lane 4q: (h0 + h1) + (h2 + h3) of s01's quarter q; lane 4q + 1: s23's.
    let u = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(t, t),
        _mm512_shuffle_ps::<0xDD>(t, t),
    );
    // v0.A = u[0], v1.A = u[8], v2.A = u[1], v3.A = u[9]; the B halves 4 on.
    let order = _mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    let rows = _mm512_permutexvar_ps(order, u);
    [
        _mm512_castps512_ps128(rows),
        _mm512_extractf32x4_ps::<1>(rows),
    ]
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::model::kernels::block_gemv::gemv_blocks_with;
    use crate::model::kernels::isa::Isa;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// [`hsum8_avx512`] adds each half of each accumulator exactly as
    /// [`gemv::hsum`] does: lanes spread over 2^±24, so any other grouping
    /// of the eight additions would round differently somewhere in 4,000
    /// sums.
    #[test]
    fn hsum8_sums_each_half_in_the_order_of_hsum() {
        use std::arch::x86_64::{__m128, __m512, _mm_storeu_ps, _mm512_loadu_ps};
        if !Isa::Avx512.runs_here() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        for _ in 0..500 {
            let lanes: [[f32; 16]; 4] = std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-24..=24))
                })
            });
            // SAFETY: each array holds 16 floats; the CPU runs AVX-512
            // (checked above).
            let v: [__m512; 4] = lanes.map(|l| unsafe { _mm512_loadu_ps(l.as_ptr()) });
            // SAFETY: as above.
            let got: [__m128; 2] = unsafe { hsum8_avx512(&v) };
            for (h, s) in got.into_iter().enumerate() {
                let mut sums = [0.0f32; 4];
                // SAFETY: `sums` holds 4 floats.
                unsafe { _mm_storeu_ps(sums.as_mut_ptr(), s) };
                for (j, got) in sums.into_iter().enumerate() {
                    let half: [f32; 8] = lanes[j][8 * h..8 * h + 8].try_into().unwrap();
                    assert_eq!(
                        got.to_bits(),
                        gemv::hsum(half).to_bits(),
                        "half {h} row {j}"
                    );
                }
            }
        }
    }

    /// [`Aligned`] buffers start on a 64-byte boundary and hold exactly
    /// their floats, whatever the allocator returns (many lengths, so that
    /// some allocations start off a line).
    #[test]
    fn aligned_buffers_start_on_a_cache_line() {
        for len in (1..200).chain([4 * 576, 16 * 1536]) {
            let src: Vec<f32> = (0..len).map(|k| k as f32 + 0.5).collect();
            let copy = Aligned::copy_of(&src);
            let mut zeros = Aligned::zeros(len);
            assert_eq!(copy.as_slice(), src.as_slice(), "copy of {len}");
            assert_eq!(copy.as_slice().as_ptr() as usize % 64, 0, "copy of {len}");
            assert!(zeros.as_mut_slice().iter().all(|&v| v == 0.0));
            assert_eq!(zeros.as_slice().len(), len);
            assert_eq!(zeros.as_slice().as_ptr() as usize % 64, 0, "{len} zeros");
        }
    }

    /// Every row count this kernel takes (9..=16, odd ones leaving a half
    /// pair), with and without a bias, on SmolLM2's widths and on weight
    /// row counts around the 4-row groups and 128-row tasks (a partial
    /// last group, several tasks): each output equals the portable f32
    /// kernel on the dequantized weights, bit for bit, and so equals what
    /// the same rows get through the paths for fewer rows.
    #[test]
    fn wide_rows_equal_the_f32_kernel_bit_for_bit() {
        if !Isa::Avx512.runs_here() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (kind, out, inp) in [
            (GgmlType::Q4_1, 260, 576),
            (GgmlType::Q4_1, 70, 1536),
            (GgmlType::Q4_0, 133, 64),
            (GgmlType::Q8_0, 9, 96),
        ] {
            let w =
                crate::model::kernels::block_gemv::tests::random_blocks(kind, out, inp, &mut rng);
            let dense = w.dequantize();
            let b: Vec<f32> = (0..out).map(|_| rng.random_range(-1.0..1.0)).collect();
            for n in WIDE_FROM + 1..=gemv::MAX_ROWS {
                // Activations spread over 2^±12: a changed order of any
                // addition shows in some output's bits.
                let x: Vec<f32> = (0..n * inp)
                    .map(|_| rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-12..=12)))
                    .collect();
                for bias in [None, Some(b.as_slice())] {
                    let want = gemv::gemv_with(Isa::Portable, &dense, out, inp, &x, n, bias);
                    let got = gemv_blocks_with(Isa::Avx512, &w, &x, n, bias);
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{kind} {out}x{inp} n={n} bias={}",
                        bias.is_some()
                    );
                }
            }
        }
    }
}
