//! The decode-time projection with 8-bit activations (`--decode-weights
//! q8act`): `y ≈ x·Wᵀ (+ b)` with `W` in its file's Q4_0 / Q4_1 / Q5_0 /
//! Q8_0 / Q4_K / Q6_K blocks, read as stored, and each row of `x` quantized
//! per 32-value block to int8 with an f32 scale (llama.cpp's Q8_0/Q8_1
//! activation blocks).
//!
//! # Numerics
//! An activation block `x[32]` becomes `d = max|x| / 127` and
//! `q[j] = round(x[j] / d)` (ties away from zero, clamped to ±127; an
//! all-zero block has `d = 0`, `q = 0`), so each activation moves by at most
//! `d / 2`. Unlike ggml, `d` (and `s = d·Σq`, Q8_1's sum) stays f32 instead
//! of being rounded to f16, and K-quant weights meet the same 32-value
//! activation blocks (ggml uses one Q8_K scale per 256 values).
//!
//! Every weight format is read as 32-value sub-blocks `b` with integer
//! values `w[j]`, one f32 scale `dw` and a minimum `mw`:
//!
//! | format | `w[j]` | `dw` | `mw` |
//! |---|---|---|---|
//! | Q4_0 | nibble − 8 | `d` | – |
//! | Q4_1 | nibble | `d` | `m` |
//! | Q5_0 | 5-bit value − 16 | `d` | – |
//! | Q8_0 | byte | `d` | – |
//! | Q4_K | `sc_b`·nibble | `d` | `−(dmin·m_b)` |
//! | Q6_K | `sc`·(6-bit value − 32), `sc` the value's 16-group scale | `d` | – |
//!
//! (`d`, `m`, `dmin`: the block's f16 fields; `sc_b`, `m_b`: sub-block `b`'s
//! 6-bit scale and minimum, Q6_K's `sc` its int8 scales; `dmin·m_b` in f32.)
//! The integer dot `I_b = Σ_j w[j]·q[j]` is exact (|I_b| < 2²⁴, so its f32
//! is too). Per output and activation row, eight f32 accumulators take the
//! sub-blocks in order, block `b` into `A[b mod 8]`:
//! `A = fma(dw·dx_b, I_b, A)`, then for formats with a minimum
//! `A = fma(mw, s_b, A)`; the result is
//! `((A0+A4) + (A1+A5)) + ((A2+A6) + (A3+A7))`. Those f32 operations are
//! the same on the portable, AVX2 (`vpmaddubsw`/`vpmaddwd`) and AVX-512
//! VNNI (`vpdpbusd`) paths, and the integer parts are exact, so the result
//! is **bit for bit** the same on every path and for any batch composition
//! (a row's output depends only on that row and the weight): see the
//! tests. It is *not* the exact f32 result of [`super::block_gemv`]; the
//! difference is bounded by `Σ_i |w_i|·d_b(i)/2` plus f32 rounding
//! (`tests::error_is_within_the_activation_rounding_bound`).
//!
//! # Speed
//! Weights with [`BlockWeight::interleaved`] (every format above, loaded
//! for q8act with at least eight rows) run their whole 8-row groups on the SIMD paths in
//! [`super::q8act_interleaved`]'s layout: eight weight rows per vector
//! lane set, no horizontal sums, the same integers and f32 operations. The
//! rest (tail rows, the portable path) run as follows.
//! The eight accumulators let the f32 part run in vectors both ways: one
//! activation row takes eight consecutive sub-blocks per vector (their
//! integer dots reduced together), and eight activation rows take one
//! sub-block per vector (lanes are rows, the eight accumulators in
//! registers), so each weight sub-block is unpacked once per eight rows and
//! no scalar f32 work is left per block. Rows beyond a multiple of eight
//! run one by one. Output features are split in tasks of 64 weight rows
//! over the decode step's spinning workers ([`super::step_pool`]; rayon's
//! pool outside a step). With several activation rows a task writes its
//! outputs straight into the row-major result: the 512-bit kernel stores
//! each row's sixteen outputs of a pair of groups at once, the rest go
//! through a per-thread feature-major tile (no whole-output transpose). The
//! instruction set follows [`Isa::active`]; [`Isa::Avx512`] uses VNNI's
//! `vpdpbusd` where the CPU has AVX-512 VNNI (else the AVX2 kernel), on
//! 512-bit vectors for the interleaved groups, two at a time
//! ([`super::q8act_interleaved_512`], [`IntPath::Vnni512`]).
//!
//! [`flex_linear_q8act`] is the entry used by [`crate::model::layers::linear::Linear`].

use std::cell::{Cell, RefCell};

use super::block_gemv::BlockWeight;
use super::gemv::{self, MAX_ROWS};
use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::q8act_interleaved_512::x86::MIN_ROWS as MIN_ROWS_512;
use super::step_pool;
use crate::model::formats::gguf::GgmlType;
use crate::model::formats::gguf::quant::scale_min_k4;
use burn::backend::flex::Flex;
use burn::prelude::*;

/// Values per activation block and per weight sub-block.
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
    /// [`IntPath::Vnni`] with the interleaved groups in pairs on 512-bit
    /// vectors (sixteen weight rows per instruction,
    /// [`super::q8act_interleaved_512`]); the row kernels as `Vnni`.
    Vnni512,
}

impl IntPath {
    /// The path for instruction set `isa` (which the CPU must run):
    /// [`Isa::Avx512`] is 512-bit VNNI where the CPU has it, else AVX2.
    ///
    /// # Panics
    /// If the CPU does not run `isa`.
    pub fn for_isa(isa: Isa) -> IntPath {
        assert!(isa.runs_here(), "this CPU does not run {isa} kernels");
        match isa {
            Isa::Portable => IntPath::Portable,
            Isa::Avx2 => IntPath::Avx2,
            Isa::Avx512 if IntPath::Vnni512.runs_here() => IntPath::Vnni512,
            Isa::Avx512 if IntPath::Vnni.runs_here() => IntPath::Vnni,
            Isa::Avx512 => IntPath::Avx2,
        }
    }

    /// Every path this CPU runs.
    pub fn supported() -> Vec<IntPath> {
        [
            IntPath::Portable,
            IntPath::Avx2,
            IntPath::Vnni,
            IntPath::Vnni512,
        ]
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
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            IntPath::Vnni512 => {
                IntPath::Vnni.runs_here() && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            IntPath::Vnni | IntPath::Vnni512 => false,
        }
    }
}

/// Whether the q8act kernel reads weights of `kind`.
pub fn supports(kind: GgmlType) -> bool {
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

/// Codes of the formats for the monomorphized kernels.
const F_Q4_0: u8 = 0;
const F_Q4_1: u8 = 1;
const F_Q5_0: u8 = 2;
const F_Q8_0: u8 = 3;
const F_Q4K: u8 = 4;
const F_Q6K: u8 = 5;

/// Whether format `f`'s integer values are signed (else nibbles 0..16).
const fn signed(f: u8) -> bool {
    !matches!(f, F_Q4_1 | F_Q4K)
}

/// Whether format `f` has a minimum term.
const fn has_min(f: u8) -> bool {
    matches!(f, F_Q4_1 | F_Q4K)
}

/// The format code, block bytes and 32-value sub-blocks per block of `kind`.
fn geometry(kind: GgmlType) -> (u8, usize, usize) {
    match kind {
        GgmlType::Q4_0 => (F_Q4_0, 18, 1),
        GgmlType::Q4_1 => (F_Q4_1, 20, 1),
        GgmlType::Q5_0 => (F_Q5_0, 22, 1),
        GgmlType::Q8_0 => (F_Q8_0, 34, 1),
        GgmlType::Q4K => (F_Q4K, 144, 8),
        GgmlType::Q6K => (F_Q6K, 210, 8),
        other => unreachable!("q8act does not read {other}"),
    }
}

/// Activation rows quantized per [`QK`]-value block.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// `[n, blocks]` `Σ q` over each block's first 16 values (Q6_K's
    /// interleaved kernels take its two halves apart).
    pub sum_lo: Vec<i32>,
    /// `[n, blocks]` `d · Σq` (the minimum terms' factor).
    pub s: Vec<f32>,
    /// `[blocks, n]`: `d` transposed (the row-vectorized kernels' loads).
    pub d_t: Vec<f32>,
    /// `[blocks, n]`: `s` transposed.
    pub s_t: Vec<f32>,
}

impl QuantRows {
    /// # Shapes
    /// `x`: `[n, inp]`, `inp` a multiple of [`QK`].
    ///
    /// # Panics
    /// If `x` is not `[n, inp]` or `inp` is not whole blocks.
    pub fn new(x: &[f32], n: usize, inp: usize) -> Self {
        let mut rows = Self::default();
        rows.quantize(x, n, inp);
        rows
    }

    /// [`QuantRows::new`] into `self`'s buffers (no allocation once they
    /// are large enough).
    pub fn quantize(&mut self, x: &[f32], n: usize, inp: usize) {
        assert_eq!(x.len(), n * inp, "q8act: x is not [n, in]");
        assert_eq!(inp % QK, 0, "q8act: {inp} columns are not whole blocks");
        let total = x.len() / QK;
        self.n = n;
        self.blocks = inp / QK;
        self.q.resize(x.len(), 0);
        self.d.resize(total, 0.0);
        self.sum.resize(total, 0);
        self.sum_lo.resize(total, 0);
        self.s.resize(total, 0.0);
        let avx2 = Isa::Avx2.runs_here();
        let blocks = x.chunks_exact(QK).zip(self.q.chunks_exact_mut(QK));
        for (i, (xb, qb)) in blocks.enumerate() {
            let xb: &[f32; QK] = xb.try_into().expect("QK values");
            let qb: &mut [i8; QK] = qb.try_into().expect("QK quants");
            let (scale, sum) = match avx2 {
                // SAFETY: the CPU runs AVX2, FMA and F16C.
                #[cfg(target_arch = "x86_64")]
                true => unsafe { x86::quantize_block(xb, qb) },
                _ => quantize_block(xb, qb),
            };
            self.d[i] = scale;
            self.sum[i] = sum;
            self.sum_lo[i] = qb[..QK / 2].iter().map(|&v| i32::from(v)).sum();
            self.s[i] = scale * sum as f32;
        }
        let nb = self.blocks;
        self.d_t.resize(total, 0.0);
        self.s_t.resize(total, 0.0);
        for r in 0..n {
            for b in 0..nb {
                self.d_t[b * n + r] = self.d[r * nb + b];
                self.s_t[b * n + r] = self.s[r * nb + b];
            }
        }
    }

    /// Row `r`'s quants of block `b`.
    fn block(&self, r: usize, b: usize) -> &[i8; QK] {
        let at = (r * self.blocks + b) * QK;
        self.q[at..at + QK].try_into().expect("QK quants")
    }
}

/// One activation block: its quants into `qb`, returns `(d, Σq)`. The
/// definition; [`x86::quantize_block`] gives the same bits.
fn quantize_block(xb: &[f32; QK], qb: &mut [i8; QK]) -> (f32, i32) {
    let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = amax / 127.0;
    let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    let mut sum = 0i32;
    for (v, o) in xb.iter().zip(qb.iter_mut()) {
        // `as` maps NaN to 0; finite values are clamped first.
        *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
        sum += i32::from(*o);
    }
    (scale, sum)
}

thread_local! {
    /// Each calling thread's activation buffers, reused across calls.
    static SCRATCH: RefCell<QuantRows> = RefCell::default();
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
/// If the CPU does not run `path`, `w`'s format is not [`supports`]ed,
/// `x` is not `[n, w.cols]` or `n` exceeds [`MAX_ROWS`].
pub fn gemv_q8act_with(
    path: IntPath,
    w: &BlockWeight,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut rows) => {
            rows.quantize(x, n, w.cols);
            gemv_quantized(path, w, &rows, bias)
        }
        // Re-entered on this thread (a stolen rayon job): fresh buffers.
        Err(_) => gemv_quantized(path, w, &QuantRows::new(x, n, w.cols), bias),
    })
}

/// The product for activations already quantized ([`QuantRows`]), so one
/// quantization can serve several weights that read the same input.
///
/// # Panics
/// As [`gemv_q8act_with`]; `rows` must be `[n, w.cols]`.
pub fn gemv_quantized(
    path: IntPath,
    w: &BlockWeight,
    rows: &QuantRows,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(
        path.runs_here(),
        "this CPU does not run the {path:?} kernels"
    );
    assert!(supports(w.kind), "q8act does not read {}", w.kind);
    assert_eq!(rows.blocks * QK, w.cols, "q8act: activation width");
    let (out, n) = (w.rows, rows.n);
    assert!(n <= MAX_ROWS, "q8act: {n} rows (at most {MAX_ROWS})");
    let row_bytes = w.row_bytes();
    // A task's outputs `yt[k·n + r]` (`k` from `o0`) for weight rows `o0 ..
    // o0 + count`: whole 8-row groups from the interleaved layout, the rest
    // (and the portable path) row by row: the same arithmetic.
    let task = |o0: usize, count: usize, yt: &mut [f32]| {
        let grouped = interleaved_rows(path, w, o0, count, rows, yt);
        let wrows = &w.bytes[(o0 + grouped) * row_bytes..(o0 + count) * row_bytes];
        weight_rows(path, w.kind, wrows, row_bytes, rows, &mut yt[grouped * n..]);
    };
    if n == 1 {
        // One row: feature-major is row-major.
        return gemv::by_feature_blocks(out, 1, TASK_ROWS, bias, |o0, yt| task(o0, yt.len(), yt));
    }
    // Several rows: each task writes its outputs straight into the
    // row-major result (its `n` slices of up to `TASK_ROWS` features) and
    // adds the bias as `gemv::by_feature_blocks` does, instead of a feature-major buffer
    // transposed afterwards.
    let mut y = vec![0.0f32; n * out];
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..out.div_ceil(TASK_ROWS))
        .map(|_| Vec::with_capacity(n))
        .collect();
    for row in y.chunks_mut(out) {
        for (t, piece) in row.chunks_mut(TASK_ROWS).enumerate() {
            tasks[t].push(piece);
        }
    }
    step_pool::for_each_mut(&mut tasks, |t, pieces| {
        let o0 = t * TASK_ROWS;
        let count = pieces[0].len();
        // Pairs of whole groups straight into the rows; the rest through
        // a feature-major tile.
        let direct = row_major_pairs(path, w, o0, count, rows, pieces);
        if direct < count {
            TILE.with(|cell| {
                let mut tile = cell.take();
                tile.clear();
                tile.resize((count - direct) * n, 0.0);
                task(o0 + direct, count - direct, &mut tile);
                for (k, col) in tile.chunks_exact(n).enumerate() {
                    for (piece, &v) in pieces.iter_mut().zip(col) {
                        piece[direct + k] = v;
                    }
                }
                cell.set(tile);
            });
        }
        if let Some(bias) = bias {
            for piece in pieces.iter_mut() {
                for (v, b) in piece.iter_mut().zip(&bias[o0..]) {
                    *v += b;
                }
            }
        }
    });
    y
}

/// On the 512-bit VNNI path from its `MIN_ROWS` activation rows: the
/// outputs of the pairs of whole interleaved groups among weight rows `o0
/// .. o0 + count`, written into `out[r][k]` (`k` from `o0`); returns how
/// many weight rows (a multiple of 16; 0 elsewhere).
fn row_major_pairs(
    path: IntPath,
    w: &BlockWeight,
    o0: usize,
    count: usize,
    rows: &QuantRows,
    out: &mut [&mut [f32]],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if path == IntPath::Vnni512 && rows.n >= MIN_ROWS_512 {
        use super::q8act_interleaved::LANES;
        let Some(il) = w.interleaved.as_deref() else {
            return 0;
        };
        debug_assert_eq!(o0 % LANES, 0);
        let pairs = il.groups.saturating_sub(o0 / LANES).min(count / LANES) / 2;
        if pairs > 0 {
            // SAFETY: the caller checked that the CPU runs `path`.
            unsafe {
                super::q8act_interleaved_512::x86::pairs_row_major(il, o0 / LANES, rows, out, pairs)
            };
        }
        return 2 * LANES * pairs;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (path, w, o0, count, rows, out);
    0
}

thread_local! {
    /// Each thread's feature-major tile of one task (`TASK_ROWS × n`).
    static TILE: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// The outputs of weight rows `o0 .. o0 + count` that `w`'s interleaved
/// layout holds in whole groups, into `yt[k·n + r]` (`k` from `o0`), on
/// `path`'s SIMD kernels; returns how many rows (0 on the portable path
/// or without the layout). `o0` is a multiple of the group size.
fn interleaved_rows(
    path: IntPath,
    w: &BlockWeight,
    o0: usize,
    count: usize,
    rows: &QuantRows,
    yt: &mut [f32],
) -> usize {
    use super::q8act_interleaved::LANES;
    let Some(il) = w.interleaved.as_deref() else {
        return 0;
    };
    debug_assert_eq!(o0 % LANES, 0);
    let groups = il.groups.saturating_sub(o0 / LANES).min(count / LANES);
    let n = rows.n;
    let yt = &mut yt[..groups * LANES * n];
    match path {
        _ if groups == 0 => {}
        // SAFETY (each): the caller checked that the CPU runs `path`.
        #[cfg(target_arch = "x86_64")]
        IntPath::Avx2 => unsafe {
            super::q8act_interleaved::x86::groups_avx2(il, o0 / LANES, rows, yt)
        },
        #[cfg(target_arch = "x86_64")]
        IntPath::Vnni => unsafe {
            super::q8act_interleaved::x86::groups_vnni(il, o0 / LANES, rows, yt)
        },
        #[cfg(target_arch = "x86_64")]
        IntPath::Vnni512 => unsafe {
            super::q8act_interleaved_512::x86::groups_vnni512(il, o0 / LANES, rows, yt)
        },
        _ => return 0,
    }
    groups * LANES
}

/// `yt[k·n + r]` for weight rows `k` of `wrows` (`row_bytes` each) and
/// activation rows `r` of `rows`, on `path` (which the CPU runs).
fn weight_rows(
    path: IntPath,
    kind: GgmlType,
    wrows: &[u8],
    row_bytes: usize,
    rows: &QuantRows,
    yt: &mut [f32],
) {
    let (_, size, subs) = geometry(kind);
    assert_eq!(row_bytes * subs, rows.blocks * size, "q8act: weight row");
    let n = rows.n;
    for (wrow, ys) in wrows.chunks_exact(row_bytes).zip(yt.chunks_exact_mut(n)) {
        match path {
            // SAFETY (each): the caller checked that the CPU runs `path`;
            // `wrow` is `rows.blocks` sub-blocks (asserted above) and `ys`
            // holds `n` outputs.
            #[cfg(target_arch = "x86_64")]
            IntPath::Avx2 => unsafe { x86::weight_row_avx2(kind, wrow, rows, ys) },
            #[cfg(target_arch = "x86_64")]
            IntPath::Vnni | IntPath::Vnni512 => unsafe {
                x86::weight_row_vnni(kind, wrow, rows, ys)
            },
            _ => {
                for (r, y) in ys.iter_mut().enumerate() {
                    *y = row_portable(kind, wrow, rows, r);
                }
            }
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Sub-block `k` of weight block `blk` as the kernels read it: integer
/// values, scale and minimum (the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubBlock {
    /// The 32 integer weight values (K-quants' sub-scales included).
    pub w: [i32; QK],
    /// The f32 scale of the values.
    pub dw: f32,
    /// The minimum term's factor (0 where the format has none).
    pub mw: f32,
}

/// [`SubBlock`] `k` of a block of `kind` (the portable definition every
/// path follows).
pub fn sub_block(kind: GgmlType, blk: &[u8], k: usize) -> SubBlock {
    let mut w = [0i32; QK];
    let mut mw = 0.0f32;
    let dw = match kind {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 => {
            let (at, off) = match kind {
                GgmlType::Q4_0 => (2, 8),
                GgmlType::Q4_1 => (4, 0),
                _ => (6, 16),
            };
            let qh = if kind == GgmlType::Q5_0 {
                u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]])
            } else {
                0
            };
            for (j, &q) in blk[at..at + QK / 2].iter().enumerate() {
                let lo = (q & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
                let hi = (q >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                w[j] = i32::from(lo) - off;
                w[j + QK / 2] = i32::from(hi) - off;
            }
            if kind == GgmlType::Q4_1 {
                mw = f16_at(blk, 2);
            }
            f16_at(blk, 0)
        }
        GgmlType::Q8_0 => {
            for (v, &q) in w.iter_mut().zip(&blk[2..2 + QK]) {
                *v = i32::from(q as i8);
            }
            f16_at(blk, 0)
        }
        GgmlType::Q4K => {
            let (sc, m) = scale_min_k4(k, &blk[4..16]);
            mw = -(f16_at(blk, 2) * f32::from(m));
            let qs = &blk[16 + 32 * (k / 2)..16 + 32 * (k / 2) + 32];
            for (v, &q) in w.iter_mut().zip(qs) {
                *v = i32::from(sc) * i32::from((q >> (4 * (k % 2))) & 0x0F);
            }
            f16_at(blk, 0)
        }
        GgmlType::Q6K => {
            let (h, kk) = (k / 4, k % 4);
            let ql = &blk[h * 64 + 32 * (kk % 2)..][..32];
            let qh = &blk[128 + h * 32..][..32];
            for (j, v) in w.iter_mut().enumerate() {
                let lo = (ql[j] >> (4 * (kk / 2))) & 0x0F;
                let hi = (qh[j] >> (2 * kk)) & 0x03;
                let sc = i32::from(blk[192 + h * 8 + 2 * kk + j / 16] as i8);
                *v = sc * (i32::from(lo | (hi << 4)) - 32);
            }
            f16_at(blk, 208)
        }
        other => unreachable!("q8act does not read {other}"),
    };
    SubBlock { w, dw, mw }
}

/// Activation row `r` against one weight row, in plain Rust: the
/// definition of the arithmetic (module docs).
fn row_portable(kind: GgmlType, wrow: &[u8], rows: &QuantRows, r: usize) -> f32 {
    let (f, size, subs) = geometry(kind);
    let nb = rows.blocks;
    let mut acc = [0.0f32; 8];
    for (sb, blk) in wrow.chunks_exact(size).enumerate() {
        for k in 0..subs {
            let b = sb * subs + k;
            let sub = sub_block(kind, blk, k);
            let x = rows.block(r, b);
            let dot: i32 = sub.w.iter().zip(x).map(|(&w, &q)| w * i32::from(q)).sum();
            let (i, a) = (r * nb + b, &mut acc[b % 8]);
            *a = (sub.dw * rows.d[i]).mul_add(dot as f32, *a);
            if has_min(f) {
                *a = sub.mw.mul_add(rows.s[i], *a);
            }
        }
    }
    gemv::hsum(acc)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The kernels with x86 SIMD; each gives exactly the portable results.

    use std::arch::x86_64::*;

    use super::{
        F_Q4_0, F_Q4_1, F_Q4K, F_Q5_0, F_Q6K, F_Q8_0, GgmlType, QK, QuantRows, has_min,
        scale_min_k4, signed,
    };

    /// The f16 at `b[at..at + 2]`, widened exactly (F16C).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn f16(b: &[u8], at: usize) -> f32 {
        let bits = i32::from(u16::from_le_bytes([b[at], b[at + 1]]));
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load16(b: &[u8]) -> __m128i {
        assert!(b.len() >= 16);
        // SAFETY: 16 bytes lie inside `b` (asserted).
        unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
    }

    /// 32 bytes (weight bytes or activation quants).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load32<T: Copy>(b: &[T]) -> __m256i {
        assert!(size_of::<T>() == 1 && b.len() >= 32);
        // SAFETY: 32 bytes lie inside `b` (asserted).
        unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
    }

    /// Sixteen quant bytes as 32 nibbles: low nibbles (values 0..16), then
    /// high ones (16..32).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn nibbles(q: &[u8]) -> __m256i {
        let b = load16(q);
        let m = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(b, m);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
        _mm256_set_m128i(hi, lo)
    }

    /// Byte `j` is `0x10` where bit `j` of `bits` is set, else 0.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn bit4_bytes(bits: u32) -> __m256i {
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(bits as i32),
            _mm256_set_epi64x(
                0x0303_0303_0303_0303,
                0x0202_0202_0202_0202,
                0x0101_0101_0101_0101,
                0,
            ),
        );
        let probe = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
        let set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, probe), _mm256_set1_epi64x(-1));
        _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }

    /// A K-quant super-block's scalars: `d`, the eight `−(dmin·m_b)` (Q4_K)
    /// and each sub-block's integer scale per dot lane.
    #[derive(Default)]
    struct Head {
        d: f32,
        mw: [f32; 8],
        sc: [[i32; 8]; 8],
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn head<const F: u8>(blk: &[u8]) -> Head {
        let mut h = Head::default();
        if F == F_Q4K {
            h.d = f16(blk, 0);
            let dmin = f16(blk, 2);
            for k in 0..8 {
                let (sc, m) = scale_min_k4(k, &blk[4..16]);
                h.sc[k] = [i32::from(sc); 8];
                h.mw[k] = -(dmin * f32::from(m));
            }
        } else if F == F_Q6K {
            h.d = f16(blk, 208);
            for k in 0..8 {
                let at = 192 + 8 * (k / 4) + 2 * (k % 4);
                let (a, b) = (i32::from(blk[at] as i8), i32::from(blk[at + 1] as i8));
                // Lanes 0..4 are values 0..16, lanes 4..8 values 16..32.
                h.sc[k] = [a, a, a, a, b, b, b, b];
            }
        }
        h
    }

    /// Sub-block `k`'s 32 values as bytes, before K-quant sub-scales:
    /// signed where [`signed`], else nibbles.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn unpack<const F: u8>(blk: &[u8], k: usize) -> __m256i {
        match F {
            F_Q4_0 => _mm256_sub_epi8(nibbles(&blk[2..]), _mm256_set1_epi8(8)),
            F_Q4_1 => nibbles(&blk[4..]),
            F_Q5_0 => {
                let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
                let v = _mm256_or_si256(nibbles(&blk[6..]), bit4_bytes(qh));
                _mm256_sub_epi8(v, _mm256_set1_epi8(16))
            }
            F_Q8_0 => load32(&blk[2..]),
            F_Q4K => {
                let v = load32(&blk[16 + 32 * (k / 2)..]);
                let v = if k.is_multiple_of(2) {
                    v
                } else {
                    _mm256_srli_epi16::<4>(v)
                };
                _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
            }
            _ => {
                // Q6_K.
                let (hf, kk) = (k / 4, k % 4);
                let ql = load32(&blk[hf * 64 + 32 * (kk % 2)..]);
                let ql = if kk / 2 == 0 {
                    ql
                } else {
                    _mm256_srli_epi16::<4>(ql)
                };
                let lo = _mm256_and_si256(ql, _mm256_set1_epi8(0x0F));
                let qh = load32(&blk[128 + hf * 32..]);
                let qh = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * kk as i32));
                let hi = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)));
                _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32))
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load_ps(v: &[f32]) -> __m256 {
        assert!(v.len() >= 8);
        // SAFETY: 8 floats lie inside `v` (asserted).
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load_i32(v: &[i32; 8]) -> __m256i {
        // SAFETY: `v` is 8 i32.
        unsafe { _mm256_loadu_si256(v.as_ptr() as *const __m256i) }
    }

    /// Eight f16 values widened (exactly).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn f16x8(bits: &[u16; 8]) -> __m256 {
        // SAFETY: `bits` is 16 bytes.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr() as *const __m128i) })
    }

    /// One kernel set per path: `$dot(w, x)` gives the eight i32 lane
    /// partials of unsigned `w` × signed `x` bytes (bytes `4l..4l + 4` in
    /// lane `l`).
    macro_rules! path_kernels {
        ($entry:ident, $both:ident, $row1:ident, $rows8:ident, $features:literal, $dot:expr) => {
            #[target_feature(enable = $features)]
            pub(super) fn $entry(kind: GgmlType, wrow: &[u8], rows: &QuantRows, ys: &mut [f32]) {
                match kind {
                    GgmlType::Q4_0 => $both::<F_Q4_0, 18, 1>(wrow, rows, ys),
                    GgmlType::Q4_1 => $both::<F_Q4_1, 20, 1>(wrow, rows, ys),
                    GgmlType::Q5_0 => $both::<F_Q5_0, 22, 1>(wrow, rows, ys),
                    GgmlType::Q8_0 => $both::<F_Q8_0, 34, 1>(wrow, rows, ys),
                    GgmlType::Q4K => $both::<F_Q4K, 144, 8>(wrow, rows, ys),
                    GgmlType::Q6K => $both::<F_Q6K, 210, 8>(wrow, rows, ys),
                    other => unreachable!("q8act does not read {other}"),
                }
            }

            /// Rows in groups of eight, then the rest one by one.
            #[target_feature(enable = $features)]
            #[inline]
            fn $both<const F: u8, const SIZE: usize, const SUBS: usize>(
                wrow: &[u8],
                rows: &QuantRows,
                ys: &mut [f32],
            ) {
                let n = rows.n;
                let full = n / 8 * 8;
                for r0 in (0..full).step_by(8) {
                    $rows8::<F, SIZE, SUBS>(wrow, rows, r0, &mut ys[r0..r0 + 8]);
                }
                for (r, y) in ys.iter_mut().enumerate().skip(full) {
                    *y = $row1::<F, SIZE, SUBS>(wrow, rows, r);
                }
            }

            /// Activation row `r`: eight consecutive sub-blocks per vector.
            #[target_feature(enable = $features)]
            #[inline]
            fn $row1<const F: u8, const SIZE: usize, const SUBS: usize>(
                wrow: &[u8],
                rows: &QuantRows,
                r: usize,
            ) -> f32 {
                let nb = rows.blocks;
                assert!(r < rows.n && wrow.len() / SIZE * SUBS == nb);
                let xq = &rows.q[r * nb * QK..(r + 1) * nb * QK];
                let xd = &rows.d[r * nb..(r + 1) * nb];
                let xs = &rows.s[r * nb..(r + 1) * nb];
                let dot = $dot;
                let mut acc = _mm256_setzero_ps();
                let mut g0 = 0;
                while g0 < nb {
                    let cnt = (nb - g0).min(8);
                    let mut dots = [_mm256_setzero_si256(); 8];
                    let (mut dbits, mut mbits) = ([0u16; 8], [0u16; 8]);
                    let h = if SUBS == 8 {
                        head::<F>(&wrow[g0 / 8 * SIZE..(g0 / 8 + 1) * SIZE])
                    } else {
                        Head::default()
                    };
                    for (k, p) in dots.iter_mut().enumerate().take(cnt) {
                        let b = g0 + k;
                        let blk = &wrow[b / SUBS * SIZE..(b / SUBS + 1) * SIZE];
                        let w = unpack::<F>(blk, k % SUBS);
                        let x = load32(&xq[b * QK..]);
                        let v = if signed(F) {
                            dot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
                        } else {
                            dot(w, x)
                        };
                        *p = if SUBS == 8 {
                            _mm256_mullo_epi32(v, load_i32(&h.sc[k]))
                        } else {
                            v
                        };
                        if SUBS == 1 {
                            dbits[k] = u16::from_le_bytes([blk[0], blk[1]]);
                            if has_min(F) {
                                mbits[k] = u16::from_le_bytes([blk[2], blk[3]]);
                            }
                        }
                    }
                    let dots = _mm256_cvtepi32_ps(reduce8(&dots));
                    // Lanes past the row's last block: zero scales and dots,
                    // so `fma(0, 0, a)` leaves them as they are.
                    let (dx, sx) = if cnt == 8 {
                        (load_ps(&xd[g0..]), load_ps(&xs[g0..]))
                    } else {
                        let (mut dp, mut sp) = ([0.0f32; 8], [0.0f32; 8]);
                        dp[..cnt].copy_from_slice(&xd[g0..]);
                        sp[..cnt].copy_from_slice(&xs[g0..]);
                        (load_ps(&dp), load_ps(&sp))
                    };
                    let dw = if SUBS == 1 {
                        f16x8(&dbits)
                    } else {
                        _mm256_set1_ps(h.d)
                    };
                    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), dots, acc);
                    if has_min(F) {
                        let mw = if SUBS == 1 {
                            f16x8(&mbits)
                        } else {
                            load_ps(&h.mw)
                        };
                        acc = _mm256_fmadd_ps(mw, sx, acc);
                    }
                    g0 += 8;
                }
                hsum8(acc)
            }

            /// Activation rows `r0..r0 + 8`: one sub-block per vector, the
            /// lanes the rows.
            #[target_feature(enable = $features)]
            #[inline]
            fn $rows8<const F: u8, const SIZE: usize, const SUBS: usize>(
                wrow: &[u8],
                rows: &QuantRows,
                r0: usize,
                ys: &mut [f32],
            ) {
                let (n, nb) = (rows.n, rows.blocks);
                assert!(r0 + 8 <= n && ys.len() == 8 && wrow.len() / SIZE * SUBS == nb);
                assert!(rows.d_t.len() == n * nb && rows.s_t.len() == n * nb);
                let dot = $dot;
                let mut acc = [_mm256_setzero_ps(); 8];
                let mut h = Head::default();
                for b in 0..nb {
                    let k = b % SUBS;
                    let blk = &wrow[b / SUBS * SIZE..(b / SUBS + 1) * SIZE];
                    if SUBS == 8 && k == 0 {
                        h = head::<F>(blk);
                    }
                    let w = unpack::<F>(blk, k);
                    let wu = if signed(F) { _mm256_sign_epi8(w, w) } else { w };
                    let mut dots = [_mm256_setzero_si256(); 8];
                    for (i, p) in dots.iter_mut().enumerate() {
                        let x = load32(&rows.q[((r0 + i) * nb + b) * QK..]);
                        let x = if signed(F) { _mm256_sign_epi8(x, w) } else { x };
                        let v = dot(wu, x);
                        *p = if SUBS == 8 {
                            _mm256_mullo_epi32(v, load_i32(&h.sc[k]))
                        } else {
                            v
                        };
                    }
                    let dots = _mm256_cvtepi32_ps(reduce8(&dots));
                    let dw = if SUBS == 1 { f16(blk, 0) } else { h.d };
                    let dx = load_ps(&rows.d_t[b * n + r0..]);
                    let a = &mut acc[b % 8];
                    *a = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(dw), dx), dots, *a);
                    if has_min(F) {
                        let mw = if SUBS == 1 { f16(blk, 2) } else { h.mw[k] };
                        let sx = load_ps(&rows.s_t[b * n + r0..]);
                        *a = _mm256_fmadd_ps(_mm256_set1_ps(mw), sx, *a);
                    }
                }
                // Per lane (row): ((A0+A4) + (A1+A5)) + ((A2+A6) + (A3+A7)).
                let h0 = _mm256_add_ps(acc[0], acc[4]);
                let h1 = _mm256_add_ps(acc[1], acc[5]);
                let h2 = _mm256_add_ps(acc[2], acc[6]);
                let h3 = _mm256_add_ps(acc[3], acc[7]);
                let y = _mm256_add_ps(_mm256_add_ps(h0, h1), _mm256_add_ps(h2, h3));
                // SAFETY: `ys` holds 8 floats (asserted).
                unsafe { _mm256_storeu_ps(ys.as_mut_ptr(), y) };
            }
        };
    }

    // |w| ≤ 128 and |x| ≤ 127, so `vpmaddubsw`'s pair sums (≤ 32 512) never
    // saturate.
    path_kernels!(
        weight_row_avx2,
        both_avx2,
        row1_avx2,
        rows8_avx2,
        "avx2,fma,f16c",
        |w, x| _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1))
    );

    path_kernels!(
        weight_row_vnni,
        both_vnni,
        row1_vnni,
        rows8_vnni,
        "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
        |w, x| _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)
    );

    /// [`super::quantize_block`] in 8-lane vectors, bit for bit: the
    /// maximum ignores NaN as `f32::max` does, rounding is ties away from
    /// zero (truncate, then step away where the exact remainder is ≥ ½),
    /// NaN quants become 0.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn quantize_block(xb: &[f32; QK], qb: &mut [i8; QK]) -> (f32, i32) {
        // SAFETY: `xb` holds 32 floats.
        let v: [__m256; 4] =
            std::array::from_fn(|k| unsafe { _mm256_loadu_ps(xb.as_ptr().add(8 * k)) });
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut m = _mm256_setzero_ps();
        for v in v {
            // `maxps` returns its second operand when either is NaN.
            m = _mm256_max_ps(_mm256_and_ps(v, abs_mask), m);
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        let scale = amax / 127.0;
        let inv = _mm256_set1_ps(if scale != 0.0 { 1.0 / scale } else { 0.0 });
        let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
        let sign_mask = _mm256_set1_ps(-0.0);
        let q: [__m256i; 4] = v.map(|v| {
            let y = _mm256_mul_ps(v, inv);
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(y);
            let away =
                _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_and_ps(_mm256_sub_ps(y, t), abs_mask), half);
            let step = _mm256_or_ps(_mm256_and_ps(y, sign_mask), one);
            let r = _mm256_add_ps(t, _mm256_and_ps(away, step));
            let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(y, y));
            let r = _mm256_min_ps(
                _mm256_max_ps(r, _mm256_set1_ps(-127.0)),
                _mm256_set1_ps(127.0),
            );
            _mm256_cvttps_epi32(r)
        });
        let total = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let t4 = _mm_add_epi32(
            _mm256_castsi256_si128(total),
            _mm256_extracti128_si256::<1>(total),
        );
        let t2 = _mm_add_epi32(t4, _mm_unpackhi_epi64(t4, t4));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(t2, _mm_shuffle_epi32::<0b01>(t2)));
        let packed = _mm256_packs_epi16(
            _mm256_packs_epi32(q[0], q[1]),
            _mm256_packs_epi32(q[2], q[3]),
        );
        let packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: `qb` holds 32 bytes.
        unsafe { _mm256_storeu_si256(qb.as_mut_ptr() as *mut __m256i, packed) };
        (scale, sum)
    }

    /// `((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7))`, as [`super::gemv::hsum`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn hsum8(v: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let p = _mm_hadd_ps(h, h);
        _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)))
    }

    /// The eight i32 lane sums of `v[0..8]`, in that order (exact).
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn reduce8(v: &[__m256i; 8]) -> __m256i {
        let a01 = _mm256_hadd_epi32(v[0], v[1]);
        let a23 = _mm256_hadd_epi32(v[2], v[3]);
        let a45 = _mm256_hadd_epi32(v[4], v[5]);
        let a67 = _mm256_hadd_epi32(v[6], v[7]);
        // Per 128-bit half: the half-sums of v0..v3 (v4..v7).
        let b0 = _mm256_hadd_epi32(a01, a23);
        let b1 = _mm256_hadd_epi32(a45, a67);
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(b0, b1),
            _mm256_permute2x128_si256::<0x31>(b0, b1),
        )
    }
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

    /// Random blocks of `kind`: random quant and scale bytes, the f16
    /// scales and minima in a realistic range (Q8_0's −128 included).
    fn random_blocks(
        kind: GgmlType,
        rows: usize,
        cols: usize,
        rng: &mut ChaCha8Rng,
    ) -> BlockWeight {
        let size = kind.type_size();
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / kind.block_size() {
            let mut blk: Vec<u8> = (0..size).map(|_| rng.random::<u8>()).collect();
            let mut half = |at: usize, lo: f32, hi: f32| {
                let v = half::f16::from_f32(rng.random_range(lo..hi)).to_bits();
                blk[at..at + 2].copy_from_slice(&v.to_le_bytes());
            };
            match kind {
                GgmlType::Q4_1 => {
                    half(0, 0.001, 0.05);
                    half(2, -0.4, 0.0);
                }
                GgmlType::Q4K => {
                    half(0, 0.0005, 0.003);
                    half(2, 0.0005, 0.003);
                }
                GgmlType::Q6K => half(208, 0.0005, 0.003),
                _ => half(0, 0.001, 0.05),
            }
            bytes.extend(blk);
        }
        BlockWeight::new(kind, rows, cols, bytes)
            .unwrap()
            .with_int8_activations(true)
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

    const KINDS: [GgmlType; 6] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ];

    /// The narrowest width of `kind` times `k`.
    fn width(kind: GgmlType, k: usize) -> usize {
        kind.block_size() * k
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

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
        // Reused buffers give what fresh ones do, for a smaller input too.
        let mut reused = QuantRows::new(&random_x(4, 512, &mut rng), 4, 512);
        reused.quantize(&x, 3, 256);
        assert_eq!(reused, q);
    }

    #[test]
    fn simd_quantization_is_bit_identical_to_the_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        let mut blocks: Vec<[f32; QK]> = (0..200)
            .map(|k| {
                std::array::from_fn(|j| {
                    let v: f32 = rng.random_range(-3.0..3.0);
                    // Exact ties (·127/max lands on k + ½) and tiny values.
                    match (k + j) % 7 {
                        0 => (j as f32 - 16.5) / 127.0 * 4.0,
                        1 => v * 1e-30,
                        _ => v,
                    }
                })
            })
            .collect();
        // Ties at ±½ steps: max 127 so `x·127/max = x`.
        blocks.push(std::array::from_fn(|j| {
            if j == 0 { 127.0 } else { j as f32 - 15.5 }
        }));
        blocks.push([0.0; QK]);
        blocks.push(std::array::from_fn(|j| {
            if j == 3 { f32::NAN } else { j as f32 }
        }));
        blocks.push(std::array::from_fn(|j| {
            if j == 5 { f32::INFINITY } else { -1.0 }
        }));
        blocks.push(std::array::from_fn(|j| if j == 9 { -0.0 } else { 1e-40 }));
        blocks.push(std::array::from_fn(|j| (j as f32) * -1e38));
        for (k, xb) in blocks.iter().enumerate() {
            let mut want = [0i8; QK];
            let (d, sum) = quantize_block(xb, &mut want);
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx2.runs_here() {
                let mut got = [0i8; QK];
                // SAFETY: the CPU runs AVX2 (checked).
                let (gd, gsum) = unsafe { x86::quantize_block(xb, &mut got) };
                assert_eq!(
                    (gd.to_bits(), gsum, got),
                    (d.to_bits(), sum, want),
                    "block {k}"
                );
            }
            let _ = (d, sum);
        }
    }

    #[test]
    fn sub_blocks_dequantize_as_the_loader_does() {
        // `dw·w + mw` per value is the loader's formula with its roundings,
        // except K-quants' `d·(sc·q)` for the loader's `(d·sc)·q`: one
        // rounding apart.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for kind in KINDS {
            let w = random_blocks(kind, 2, width(kind, 2), &mut rng);
            let want = crate::model::formats::gguf::quant::dequantize(kind, &w.bytes).unwrap();
            let (f, size, subs) = geometry(kind);
            let (mut got, mut mag) = (Vec::new(), Vec::new());
            for blk in w.bytes.chunks_exact(size) {
                for k in 0..subs {
                    let s = sub_block(kind, blk, k);
                    for &v in &s.w {
                        let x = s.dw * v as f32;
                        got.push(if has_min(f) { x + s.mw } else { x });
                        mag.push(x.abs() + s.mw.abs());
                    }
                }
            }
            if matches!(kind, GgmlType::Q4K | GgmlType::Q6K) {
                for ((g, w), m) in got.iter().zip(&want).zip(&mag) {
                    assert!(
                        (g - w).abs() <= 4.0 * f32::EPSILON * m,
                        "{kind}: {g} vs {w}"
                    );
                }
            } else {
                assert_eq!(bits(&got), bits(&want), "{kind}");
            }
        }
    }

    #[test]
    fn matches_a_scalar_reference_on_the_quantized_activations() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for kind in KINDS {
            let (out, inp, n) = (37, width(kind, 320 / kind.block_size() + 1), 5);
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
        // the 8-row groups included).
        for &(kind, out, k, n) in &[
            (GgmlType::Q4_1, 131, 18, 16),
            (GgmlType::Q4_1, 5, 1, 7),
            (GgmlType::Q4_0, 70, 3, 13),
            (GgmlType::Q5_0, 67, 5, 6),
            (GgmlType::Q8_0, 66, 5, 9),
            (GgmlType::Q8_0, 3, 2, 2),
            (GgmlType::Q4K, 69, 2, 11),
            (GgmlType::Q6K, 70, 3, 5),
            (GgmlType::Q4K, 136, 3, 16),
            (GgmlType::Q4K, 8, 1, 1),
            (GgmlType::Q6K, 131, 2, 16),
            (GgmlType::Q6K, 9, 1, 8),
            (GgmlType::Q6K, 5, 1, 3),
            // Nine rows or more: the 512-bit path's pairs of groups, with
            // an odd last group (24 and 40 rows: 3 and 5 groups).
            (GgmlType::Q5_0, 40, 4, 10),
            (GgmlType::Q6K, 24, 1, 12),
            (GgmlType::Q4_1, 24, 3, 9),
            // 107 weight rows: a task of four pairs written row-major, then
            // one of two pairs, an odd group and three rows through the
            // feature-major tile.
            (GgmlType::Q8_0, 107, 2, 16),
            (GgmlType::Q4_1, 107, 3, 9),
            // One activation row (its accumulators rotate through
            // registers): block counts 7 and 15 leave them mid-rotation.
            (GgmlType::Q5_0, 24, 7, 1),
            (GgmlType::Q4_1, 16, 15, 1),
        ] {
            let inp = width(kind, k);
            let w = random_blocks(kind, out, inp, &mut rng);
            let x = random_x(n, inp, &mut rng);
            let b: Vec<f32> = (0..out).map(|_| rng.random_range(-1.0..1.0)).collect();
            let want = gemv_q8act_with(IntPath::Portable, &w, &x, n, Some(&b));
            // Every format with 8 rows or more has the interleaved layout;
            // the row kernels without it must agree too.
            let layout = super::super::q8act_interleaved::Interleaved::reads(kind) && out >= 8;
            assert_eq!(w.interleaved.is_some(), layout, "{kind}");
            let rowwise = BlockWeight {
                interleaved: None,
                ..w.clone()
            };
            for path in IntPath::supported() {
                let got = gemv_q8act_with(path, &w, &x, n, Some(&b));
                assert_eq!(bits(&got), bits(&want), "{path:?} {kind} n={n}");
                let got = gemv_q8act_with(path, &rowwise, &x, n, Some(&b));
                assert_eq!(bits(&got), bits(&want), "{path:?} {kind} n={n} row kernels");
                // Each row alone, and the rows in reverse order.
                for r in 0..n {
                    let alone = gemv_q8act_with(path, &w, &x[r * inp..(r + 1) * inp], 1, Some(&b));
                    assert_eq!(bits(&alone), bits(&want[r * out..(r + 1) * out]));
                }
                let rev: Vec<f32> = x.chunks(inp).rev().flatten().copied().collect();
                let got = gemv_q8act_with(path, &w, &rev, n, Some(&b));
                let back: Vec<f32> = got.chunks(out).rev().flatten().copied().collect();
                assert_eq!(bits(&back), bits(&want), "{path:?} {kind} reversed");
                // One quantization shared by two products.
                let rows = QuantRows::new(&x, n, inp);
                let shared = gemv_quantized(path, &w, &rows, Some(&b));
                assert_eq!(bits(&shared), bits(&want), "{path:?} {kind} shared");
            }
            assert_eq!(
                bits(&gemv_q8act(&w, &x, n, Some(&b))),
                bits(&want),
                "the active path is one of them"
            );
        }
    }

    #[test]
    fn error_is_within_the_activation_rounding_bound() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for kind in KINDS {
            let (out, inp, n) = (40, width(kind, 768 / kind.block_size()), 3);
            let w = random_blocks(kind, out, inp, &mut rng);
            let dense = w.dequantize();
            let x = random_x(n, inp, &mut rng);
            let rows = QuantRows::new(&x, n, inp);
            let exact = gemv::gemv(&dense, out, inp, &x, n, None);
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
