//! The decode-time projection over weights kept in their file's ggml block
//! format (Q4_0, Q4_1, Q8_0): `y = x·Wᵀ (+ b)` reading 4.5–8.5 bits per
//! weight from memory instead of 32.
//!
//! Decode streams every weight once per step, so the bytes read set the
//! speed. This kernel reads the blocks, dequantizes four weight rows at a
//! time into an L1-resident buffer with exactly the loader's f32 values
//! (`d·q + m` rounded as the loader rounds it; see `dequantize_block16`
//! for the AVX-512 form), and runs the f32 kernel of
//! [`crate::model::kernels::gemv`] on that buffer (with AVX-512 and 2–16
//! rows the next four rows are dequantized inside its FMA loop,
//! `task_avx512`; above 8 rows the copy in `block_gemv_wide`). The
//! result is therefore **bit for bit** what [`crate::model::kernels::gemv::gemv`] computes over the dequantized
//! f32 weights (`tests::equals_the_f32_kernel_on_dequantized_weights`):
//! keeping the blocks changes the speed, never a logit. (Feeding the
//! dequantized registers straight into the accumulators, without the
//! buffer, measured 1.3× slower for one activation row here.)
//!
//! [`flex_linear_blocks`] is the entry used by [`crate::model::layers::linear::Linear`].

use std::sync::Arc;

use burn::backend::flex::Flex;
use burn::prelude::*;

use crate::model::formats::gguf::GgmlType;
use crate::model::formats::gguf::quant::dequantize_block_row;
use crate::model::kernels::gemv::{self, MAX_ROWS, Rows};
use crate::model::kernels::isa::Isa;

/// Weight rows per parallel task: 128 rows of a 576-wide Q4_1 weight are
/// 45 KiB of blocks, 288 KiB of f32 work.
const TASK_ROWS: usize = 128;

/// Weight rows dequantized at once: four rows of 1 536 f32 are 24 KiB, in L1.
pub(super) const GROUP: usize = 4;

/// A `[rows, cols]` weight matrix in a ggml block format, rows in the
/// Hugging Face order (llama Q/K rows already un-permuted).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockWeight {
    pub kind: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// `rows × kind.bytes_for(cols)` bytes, row after row.
    pub bytes: Arc<Vec<u8>>,
    /// Whether decode steps quantize activations to 8 bits and run the
    /// integer kernel of [`super::q8act`] (`--decode-weights q8act`)
    /// instead of this module's exact f32 one.
    pub int8_activations: bool,
    /// With [`BlockWeight::int8_activations`], the whole 8-row groups in
    /// [`super::q8act_interleaved`]'s layout (every q8act format), built
    /// once at load; the q8act SIMD kernels read it instead of `bytes`.
    pub interleaved: Option<Arc<super::q8act_interleaved::Interleaved>>,
}

impl BlockWeight {
    /// Whether a decode kernel reads `kind`: this module's exact one
    /// ([`BlockWeight::exact_kernel_reads`]) or the 8-bit-activation one
    /// ([`super::q8act::supports`]).
    pub fn supports(kind: GgmlType) -> bool {
        Self::exact_kernel_reads(kind) || super::q8act::supports(kind)
    }

    /// Whether this module's exact kernel ([`gemv_blocks`]) reads `kind`.
    pub fn exact_kernel_reads(kind: GgmlType) -> bool {
        matches!(kind, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
    }

    /// Checks that `kind` is supported and the byte count matches the shape.
    pub fn new(kind: GgmlType, rows: usize, cols: usize, bytes: Vec<u8>) -> Result<Self, String> {
        if !Self::supports(kind) {
            return Err(format!("{kind} is not a decode block format"));
        }
        let row_bytes = kind
            .bytes_for(cols)
            .ok_or_else(|| format!("{cols} columns are not whole {kind} blocks"))?;
        if cols == 0 || bytes.len() != rows * row_bytes {
            return Err(format!(
                "{} bytes do not hold [{rows}, {cols}] {kind}",
                bytes.len()
            ));
        }
        Ok(Self {
            kind,
            rows,
            cols,
            bytes: Arc::new(bytes),
            int8_activations: false,
            interleaved: None,
        })
    }

    /// The same blocks, read with 8-bit activations or not
    /// ([`BlockWeight::int8_activations`]).
    pub fn with_int8_activations(mut self, on: bool) -> Self {
        self.int8_activations = on;
        self.interleaved = if on {
            super::q8act_interleaved::Interleaved::new(&self).map(Arc::new)
        } else {
            None
        };
        self
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.bytes.len() / self.rows.max(1)
    }

    /// Several weights with the same width, stacked along the rows (a fused
    /// q/k/v or gate/up projection). Parts of one format stack as they are;
    /// a mix of Q4_0, Q5_0 and Q8_0 (llama.cpp's fallbacks in a "Q4_K_M"
    /// file) stacks as Q8_0 ([`BlockWeight::to_q8_0`], the same values);
    /// `None` for any other mix.
    pub fn stack(parts: &[BlockWeight]) -> Option<BlockWeight> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.cols != first.cols) {
            return None;
        }
        let widened: Vec<BlockWeight>;
        let parts = if parts.iter().all(|p| p.kind == first.kind) {
            parts
        } else {
            widened = parts
                .iter()
                .map(BlockWeight::to_q8_0)
                .collect::<Option<_>>()?;
            &widened
        };
        let bytes: Vec<u8> = parts.iter().flat_map(|p| p.bytes.iter().copied()).collect();
        let rows = parts.iter().map(|p| p.rows).sum();
        Self::new(parts[0].kind, rows, first.cols, bytes)
            .ok()
            .map(|b| b.with_int8_activations(first.int8_activations))
    }

    /// The same weight in Q8_0 blocks when it is Q4_0, Q5_0 or Q8_0: each
    /// block keeps its f16 scale `d` and stores its signed integer values
    /// (`q − 8`, `q − 16`) as bytes, so every value dequantizes to the same
    /// f32 (`d·v`). `None` for other formats.
    pub fn to_q8_0(&self) -> Option<BlockWeight> {
        let size = match self.kind {
            GgmlType::Q8_0 => return Some(self.clone()),
            GgmlType::Q4_0 => 18,
            GgmlType::Q5_0 => 22,
            _ => return None,
        };
        let mut bytes = Vec::with_capacity(self.bytes.len() / size * 34);
        for blk in self.bytes.chunks_exact(size) {
            bytes.extend_from_slice(&blk[..2]);
            let sub = super::q8act::sub_block(self.kind, blk, 0);
            bytes.extend(sub.w.iter().map(|&v| v as u8));
        }
        Self::new(GgmlType::Q8_0, self.rows, self.cols, bytes)
            .ok()
            .map(|b| b.with_int8_activations(self.int8_activations))
    }

    /// The weight as row-major f32, as the loader dequantizes it.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        // Rows are whole blocks: the weight dequantizes as one run.
        if Self::exact_kernel_reads(self.kind) {
            dequantize_run(Isa::active(), self.kind, &self.bytes, &mut out);
        } else {
            dequantize_block_row(self.kind, &self.bytes, &mut out);
        }
        out
    }
}

/// `y[r, o] = Σ_i x[r, i] · w[o, i] + bias[o]` with `w` in blocks.
///
/// # Shapes
/// `w`: `[out, inp]`; `x`: `[n, inp]`; `bias`: `[out]`; returns `[n, out]`.
pub fn gemv_blocks(w: &BlockWeight, x: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    gemv_blocks_with(Isa::active(), w, x, n, bias)
}

/// [`gemv_blocks`] with the kernels of `isa`, which the CPU must run.
///
/// # Panics
/// If `w`'s format is not one [`BlockWeight::exact_kernel_reads`].
pub fn gemv_blocks_with(
    isa: Isa,
    w: &BlockWeight,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (out, inp) = (w.rows, w.cols);
    assert!(
        BlockWeight::exact_kernel_reads(w.kind),
        "gemv_blocks does not read {}",
        w.kind
    );
    assert_eq!(x.len(), n * inp, "gemv_blocks: x is not [n, in]");
    let rows = Rows::new(isa, x, n, inp);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && n > super::block_gemv_wide::WIDE_FROM {
        let task_rows = gemv::balanced_task_rows(out, TASK_ROWS);
        return super::block_gemv_wide::gemv_blocks(w, &rows, task_rows, bias);
    }
    let row_bytes = w.row_bytes();
    gemv::by_feature_blocks(
        out,
        n,
        gemv::balanced_task_rows(out, TASK_ROWS),
        bias,
        |o0, yt| {
            let count = yt.len() / n;
            let src = &w.bytes[o0 * row_bytes..(o0 + count) * row_bytes];
            task(isa, w.kind, src, &rows, yt);
        },
    )
}

/// One task's weight rows (`bytes`, whole rows of blocks) against `x`:
/// `yt[o, r]`, feature-major.
fn task(isa: Isa, kind: GgmlType, bytes: &[u8], x: &Rows, yt: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && x.n() >= 2 {
        // SAFETY: `Rows::new` checked that the CPU runs `isa`; AVX-512 F +
        // DQ come with AVX2, FMA and F16C (`Isa::runs_here`).
        unsafe { task_avx512(kind, bytes, x, yt) };
        return;
    }
    let (n, inp) = (x.n(), x.inp());
    let count = yt.len() / n;
    let row_bytes = bytes.len() / count;
    let mut buf = vec![0.0f32; GROUP * inp];
    for (g, ys) in yt.chunks_mut(GROUP * n).enumerate() {
        let rows = ys.len() / n;
        let src = &bytes[g * GROUP * row_bytes..(g * GROUP + rows) * row_bytes];
        let dst = &mut buf[..rows * inp];
        // Rows are whole blocks: the group dequantizes as one run.
        dequantize_run(isa, kind, src, dst);
        gemv::block(dst, x, ys);
    }
}

/// [`task`] with AVX-512 for two or more activation rows, pipelined: while
/// the tiles of one group of four weight rows run their FMAs, the first
/// tile dequantizes the next group into a second buffer, one block per
/// chunk, and a later tile prefetches the group after it. The FMAs and the
/// dequantization then share the cycles instead of taking turns (the tiles
/// are bound by the FMA pipes, the dequantization mostly by the others);
/// every output still gets exactly the FMAs of [`gemv::block`] over the
/// dequantized rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn task_avx512(kind: GgmlType, bytes: &[u8], x: &Rows, yt: &mut [f32]) {
    match kind {
        GgmlType::Q4_0 => pipelined_avx512::<Q4_0, 18>(bytes, x, yt),
        GgmlType::Q4_1 => pipelined_avx512::<Q4_1, 20>(bytes, x, yt),
        GgmlType::Q8_0 => pipelined_avx512::<Q8_0, 34>(bytes, x, yt),
        _ => unreachable!("BlockWeight::new admits only Q4_0, Q4_1 and Q8_0"),
    }
}

/// [`task_avx512`] for blocks of format `K`, `SIZE` bytes each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn pipelined_avx512<const K: u8, const SIZE: usize>(bytes: &[u8], x: &Rows, yt: &mut [f32]) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch, _mm512_storeu_ps};
    let (n, inp) = (x.n(), x.inp());
    let count = yt.len() / n;
    let row_bytes = inp / 32 * SIZE;
    assert_eq!(
        bytes.len(),
        count * row_bytes,
        "pipelined_avx512: bytes are not the rows"
    );
    // A group's blocks: `GROUP · inp / 32 = inp / 8`, one per chunk of a tile.
    let group_bytes = GROUP * row_bytes;
    let mut cur = vec![0.0f32; GROUP * inp];
    let mut next = vec![0.0f32; GROUP * inp];
    let head = &bytes[..group_bytes.min(bytes.len())];
    dequantize_blocks_avx512::<K, SIZE>(head, &mut cur[..head.len() / SIZE * 32]);
    for (g, ys) in yt.chunks_mut(GROUP * n).enumerate() {
        let rows = ys.len() / n;
        if rows < GROUP {
            // The last, partial group (dequantized by the previous one).
            gemv::block(&cur[..rows * inp], x, ys);
            break;
        }
        let ahead = |k: usize| bytes.get((g + k) * group_bytes..).unwrap_or(&[]);
        let (src, after) = (ahead(1), ahead(2));
        let blocks = (src.len() / SIZE).min(GROUP * inp / 32);
        let dst = &mut next;
        let dequantize_next = |c: usize| {
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
        let prefetch_after = |c: usize| {
            if (c + 1) * 64 <= after.len().min(group_bytes) {
                _mm_prefetch::<_MM_HINT_T0>(after[c * 64..].as_ptr() as *const i8);
            }
        };
        gemv::rows4_avx512(&cur, x, ys, dequantize_next, prefetch_after);
        std::mem::swap(&mut cur, &mut next);
    }
}

/// Whole blocks (rows of them) into f32 with the kernels of `isa`; every
/// path gives the loader's values bit for bit.
///
/// # Panics
/// If the CPU does not run `isa`.
fn dequantize_run(isa: Isa, kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
    assert!(isa.runs_here(), "this CPU does not run {isa} kernels");
    match isa {
        // SAFETY (both): the CPU runs `isa` (asserted); AVX-512 F + DQ come
        // with AVX2, FMA and F16C (`Isa::runs_here`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { dequantize_run_avx512(kind, bytes, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dequantize_run_avx2(kind, bytes, out) },
        _ => dequantize_block_row(kind, bytes, out),
    }
}

/// Codes of the block formats for the monomorphized loops below.
pub(super) const Q4_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q8_0: u8 = 2;

/// Whole blocks of Q4_0 / Q4_1 / Q8_0 (one or more rows) into f32 with
/// [`dequantize_block`], one loop per format so the block size is a
/// constant.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dequantize_run_avx2(kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
    match kind {
        GgmlType::Q4_0 => dequantize_blocks_avx2::<Q4_0, 18>(bytes, out),
        GgmlType::Q4_1 => dequantize_blocks_avx2::<Q4_1, 20>(bytes, out),
        GgmlType::Q8_0 => dequantize_blocks_avx2::<Q8_0, 34>(bytes, out),
        _ => unreachable!("BlockWeight::new admits only Q4_0, Q4_1 and Q8_0"),
    }
}

/// Blocks of format `K`, `SIZE` bytes each, into 32 floats each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dequantize_blocks_avx2<const K: u8, const SIZE: usize>(bytes: &[u8], out: &mut [f32]) {
    use std::arch::x86_64::_mm256_storeu_ps;
    for (b, o) in bytes.chunks_exact(SIZE).zip(out.chunks_exact_mut(32)) {
        let b: &[u8; SIZE] = b.try_into().expect("chunks_exact(SIZE)");
        for (k, v) in dequantize_block::<K, SIZE>(b).into_iter().enumerate() {
            // SAFETY: 8 floats at 8k lie inside the 32 of `o`.
            unsafe { _mm256_storeu_ps(o[8 * k..].as_mut_ptr(), v) };
        }
    }
}

/// The 32 values of one block in four 8-lane vectors. Each lane is the
/// scalar formula of `gguf::quant` with the same roundings (a multiply,
/// then for Q4_1 an add; never fused), and F16C widens the f16 scales
/// exactly as `half` does, so the values are identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dequantize_block<const K: u8, const SIZE: usize>(
    b: &[u8; SIZE],
) -> [std::arch::x86_64::__m256; 4] {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_cvtph_ps, _mm_cvtsi32_si128, _mm_loadl_epi64, _mm256_add_ps,
        _mm256_and_si256, _mm256_broadcastss_ps, _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps,
        _mm256_cvtepu8_epi32, _mm256_mul_ps, _mm256_set1_epi32, _mm256_setzero_ps,
        _mm256_srli_epi32, _mm256_sub_epi32,
    };
    // The f16 at `b[at..at + 2]` widened and broadcast to 8 lanes.
    let half8 = |at: usize| -> __m256 {
        let bits = i32::from(u16::from_le_bytes([b[at], b[at + 1]]));
        _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
    };
    // Eight bytes from `b[at..at + 8]` zero- or sign-extended to 8 lanes.
    let bytes8 = |at: usize, signed: bool| {
        assert!(at + 8 <= SIZE);
        // SAFETY: bytes `at..at + 8` lie inside the block (asserted).
        let q = unsafe { _mm_loadl_epi64(b[at..].as_ptr() as *const __m128i) };
        if signed {
            _mm256_cvtepi8_epi32(q)
        } else {
            _mm256_cvtepu8_epi32(q)
        }
    };
    let d = half8(0);
    let mut v = [_mm256_setzero_ps(); 4];
    if K == Q8_0 {
        for (k, v) in v.iter_mut().enumerate() {
            *v = _mm256_mul_ps(_mm256_cvtepi32_ps(bytes8(2 + 8 * k, true)), d);
        }
        return v;
    }
    let at = if K == Q4_1 { 4 } else { 2 };
    let m = if K == Q4_1 { half8(2) } else { d };
    let mask = _mm256_set1_epi32(0x0F);
    let value = |q| {
        if K == Q4_1 {
            _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q)), m)
        } else {
            _mm256_mul_ps(
                d,
                _mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(8))),
            )
        }
    };
    // Values 0..16 are the low nibbles of the 16 quant bytes, 16..32 the
    // high ones: each 8 bytes widened once give 8 of each.
    for half in 0..2 {
        let q = bytes8(at + 8 * half, false);
        v[half] = value(_mm256_and_si256(q, mask));
        v[2 + half] = value(_mm256_srli_epi32::<4>(q));
    }
    v
}

/// [`dequantize_run_avx2`] 16 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
fn dequantize_run_avx512(kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
    match kind {
        GgmlType::Q4_0 => dequantize_blocks_avx512::<Q4_0, 18>(bytes, out),
        GgmlType::Q4_1 => dequantize_blocks_avx512::<Q4_1, 20>(bytes, out),
        GgmlType::Q8_0 => dequantize_blocks_avx512::<Q8_0, 34>(bytes, out),
        _ => unreachable!("BlockWeight::new admits only Q4_0, Q4_1 and Q8_0"),
    }
}

/// Blocks of format `K`, `SIZE` bytes each, into 32 floats each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
pub(super) fn dequantize_blocks_avx512<const K: u8, const SIZE: usize>(
    bytes: &[u8],
    out: &mut [f32],
) {
    use std::arch::x86_64::_mm512_storeu_ps;
    for (b, o) in bytes.chunks_exact(SIZE).zip(out.chunks_exact_mut(32)) {
        let b: &[u8; SIZE] = b.try_into().expect("chunks_exact(SIZE)");
        let [lo, hi] = dequantize_block16::<K, SIZE>(b);
        // SAFETY: `o` holds 32 floats.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), lo);
            _mm512_storeu_ps(o[16..].as_mut_ptr(), hi);
        }
    }
}

/// The 32 values of one block in two 16-lane vectors, each lane the value
/// [`dequantize_block`] computes, bit for bit.
///
/// Q8_0 runs the same operations (`d·q`). A Q4_0 or Q4_1 value depends
/// only on the block's scales and its 4-bit quant `k`, so the block's 16
/// possible values are computed once, in one vector, and each value is
/// looked up by its nibble (`vpermps` reads an index's low 4 bits):
/// Q4_0's `d·(k − 8)` is the same multiplication; Q4_1's `d·k + m` is one
/// fused multiply-add where the loader rounds a product and then a sum,
/// which is the same value because the product is exact (`d` is a
/// widened f16, 11 significant bits, `k` has 4, so `d·k` has at most 15
/// and neither overflows nor underflows f32): only the sum is rounded,
/// once, either way.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
#[inline]
pub(super) fn dequantize_block16<const K: u8, const SIZE: usize>(
    b: &[u8; SIZE],
) -> [std::arch::x86_64::__m512; 2] {
    use std::arch::x86_64::{
        __m128i, _mm_cvtph_ps, _mm_cvtsi32_si128, _mm_loadu_si128, _mm_movehdup_ps,
        _mm512_broadcastss_ps, _mm512_cvtepi8_epi32, _mm512_cvtepi32_ps, _mm512_cvtepu8_epi32,
        _mm512_fmadd_ps, _mm512_mul_ps, _mm512_permutexvar_ps, _mm512_setr_ps, _mm512_srli_epi32,
    };
    // The f16 scale (and Q4_1's f16 minimum after it), widened.
    let scales = {
        let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
    };
    let d = _mm512_broadcastss_ps(scales);
    // Sixteen bytes from `b[at..at + 16]` zero- or sign-extended.
    let bytes16 = |at: usize, signed: bool| {
        assert!(at + 16 <= SIZE);
        // SAFETY: bytes `at..at + 16` lie inside the block (asserted).
        let q = unsafe { _mm_loadu_si128(b[at..].as_ptr() as *const __m128i) };
        if signed {
            _mm512_cvtepi8_epi32(q)
        } else {
            _mm512_cvtepu8_epi32(q)
        }
    };
    if K == Q8_0 {
        // Two plain calls, not an array `map`: inside the pipelined tile
        // loop the map's closure was left a call, which spilled all 16
        // accumulators around it every chunk.
        let lo = _mm512_mul_ps(_mm512_cvtepi32_ps(bytes16(2, true)), d);
        let hi = _mm512_mul_ps(_mm512_cvtepi32_ps(bytes16(18, true)), d);
        return [lo, hi];
    }
    let table = if K == Q4_1 {
        let k = _mm512_setr_ps(
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        );
        let m = _mm512_broadcastss_ps(_mm_movehdup_ps(scales));
        _mm512_fmadd_ps(d, k, m)
    } else {
        let k_minus_8 = _mm512_setr_ps(
            -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
        );
        _mm512_mul_ps(d, k_minus_8)
    };
    // Values 0..16 are the low nibbles of the 16 quant bytes, 16..32 the
    // high ones (the lookup ignores the bits above an index's low 4).
    let q = bytes16(if K == Q4_1 { 4 } else { 2 }, false);
    [
        _mm512_permutexvar_ps(q, table),
        _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(q), table),
    ]
}

/// `x·Wᵀ (+ b)` through [`gemv_blocks`] when the backend is Flex, `x` has
/// at most [`MAX_ROWS`] rows and the kernel reads `w`'s format; `None`
/// otherwise (the caller uses its f32 weight).
///
/// # Shapes
/// `x`: `[n, in]`; `w`: `[out, in]` blocks; `bias`: `[out]`; returns `[n, out]`.
pub fn flex_linear_blocks<B: Backend>(
    x: &Tensor<B, 2>,
    w: &BlockWeight,
    bias: Option<&Tensor<B, 1>>,
) -> Option<Tensor<B, 2>> {
    if std::any::TypeId::of::<B>() != std::any::TypeId::of::<Flex>()
        || !BlockWeight::exact_kernel_reads(w.kind)
    {
        return None;
    }
    let [n, inp] = x.dims();
    if n == 0 || n > MAX_ROWS || inp != w.cols {
        return None;
    }
    gemv::with_flex_slices(x, bias, |xs, bs| gemv_blocks(w, xs, n, bs), [n, w.rows])
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random blocks of `kind`: f16 scales in a realistic range, random
    /// quants.
    pub(crate) fn random_blocks(
        kind: GgmlType,
        rows: usize,
        cols: usize,
        rng: &mut ChaCha8Rng,
    ) -> BlockWeight {
        let blocks = rows * cols / 32;
        let mut bytes = Vec::new();
        for _ in 0..blocks {
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

    #[test]
    fn dequantizes_as_the_loader_does_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for kind in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let w = random_blocks(kind, 3, 96, &mut rng);
            let want = crate::model::formats::gguf::quant::dequantize(kind, &w.bytes).unwrap();
            assert_eq!(w.dequantize(), want, "{kind}");
            let mut portable = vec![0.0; want.len()];
            for (o, b) in portable.chunks_mut(96).zip(w.bytes.chunks(w.row_bytes())) {
                dequantize_block_row(kind, b, o);
            }
            assert_eq!(portable, want, "{kind} portable");
            for isa in Isa::supported() {
                let mut got = vec![f32::NAN; want.len()];
                dequantize_run(isa, kind, &w.bytes, &mut got);
                assert_eq!(got, want, "{kind} {isa}");
            }
        }
    }

    #[test]
    fn equals_the_f32_kernel_on_dequantized_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // Row counts off the 4-row group and 128-row task grids, 1..=16
        // activation rows (odd and even, below and above one tile),
        // widths of 1 to 48 blocks.
        for &(kind, out, inp, n) in &[
            (GgmlType::Q4_1, 1, 32, 1),
            (GgmlType::Q4_1, 259, 576, 1),
            (GgmlType::Q4_1, 130, 1536, 3),
            (GgmlType::Q4_1, 133, 576, 8),
            (GgmlType::Q8_0, 517, 576, 2),
            (GgmlType::Q8_0, 9, 96, 11),
            (GgmlType::Q4_0, 67, 64, 16),
            (GgmlType::Q4_0, 5, 32, 5),
        ] {
            let w = random_blocks(kind, out, inp, &mut rng);
            let x: Vec<f32> = (0..n * inp).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..out).map(|_| rng.random_range(-1.0..1.0)).collect();
            let dense = w.dequantize();
            for bias in [None, Some(b.as_slice())] {
                let want = gemv::gemv_with(Isa::Portable, &dense, out, inp, &x, n, bias);
                assert_eq!(
                    gemv_blocks(&w, &x, n, bias),
                    want,
                    "{kind} {out}x{inp} n={n}"
                );
                for isa in Isa::supported() {
                    let got = gemv_blocks_with(isa, &w, &x, n, bias);
                    assert_eq!(got, want, "{isa} {kind} {out}x{inp} n={n}");
                }
            }
        }
    }

    /// The pipelined AVX-512 tasks ([`task_avx512`]) on every row count
    /// 1..=16 and every weight-row count around the 4-row groups (one
    /// partial group alone, whole groups only, a partial last group, more
    /// than one 128-row task): each output equals the portable f32 kernel
    /// on the dequantized weights, bit for bit.
    #[test]
    fn pipelined_groups_equal_the_f32_kernel_on_every_row_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        for kind in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for (out, inp) in [(3, 64), (4, 32), (8, 96), (11, 32), (262, 64)] {
                let w = random_blocks(kind, out, inp, &mut rng);
                let dense = w.dequantize();
                for n in 1..=MAX_ROWS {
                    let x: Vec<f32> = (0..n * inp).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let want = gemv::gemv_with(Isa::Portable, &dense, out, inp, &x, n, None);
                    for isa in Isa::supported() {
                        let got = gemv_blocks_with(isa, &w, &x, n, None);
                        assert_eq!(got, want, "{isa} {kind} {out}x{inp} n={n}");
                    }
                }
            }
        }
    }

    /// Every finite or infinite f16 scale, against a spread of minimums
    /// (and every minimum against a spread of scales), each with all 16
    /// quants: the vector dequantization (a 16-value table per block) gives
    /// the loader's values bit for bit.
    #[test]
    fn nibble_tables_equal_the_loader_for_every_f16_scale() {
        let halves: Vec<u16> = (0..=u16::MAX)
            .filter(|&h| !half::f16::from_bits(h).is_nan())
            .collect();
        let spread: Vec<u16> = halves
            .iter()
            .copied()
            .step_by(4093)
            .chain([0, 0x8000])
            .collect();
        // Byte j: low nibble j, high nibble 15 − j.
        let quants: Vec<u8> = (0..16u8).map(|j| j | (15 - j) << 4).collect();
        let pairs: Vec<(u16, u16)> = halves
            .iter()
            .flat_map(|&d| spread.iter().map(move |&m| (d, m)))
            .chain(
                halves
                    .iter()
                    .flat_map(|&m| spread.iter().map(move |&d| (d, m))),
            )
            .collect();
        for kind in [GgmlType::Q4_0, GgmlType::Q4_1] {
            for part in pairs.chunks(8192) {
                let mut bytes = Vec::new();
                for &(d, m) in part {
                    bytes.extend(d.to_le_bytes());
                    if kind == GgmlType::Q4_1 {
                        bytes.extend(m.to_le_bytes());
                    }
                    bytes.extend(&quants);
                }
                let values = part.len() * 32;
                let mut want = vec![0.0f32; values];
                dequantize_block_row(kind, &bytes, &mut want);
                for isa in Isa::supported() {
                    let mut got = vec![f32::NAN; values];
                    dequantize_run(isa, kind, &bytes, &mut got);
                    let same =
                        |g: &f32, w: &f32| g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan();
                    let differ = got.iter().zip(&want).filter(|(g, w)| !same(g, w)).count();
                    assert_eq!(
                        differ, 0,
                        "{isa} {kind}: {differ} of {values} values differ"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_mismatched_shapes_and_formats() {
        assert!(BlockWeight::new(GgmlType::Q4_1, 2, 32, vec![0; 40]).is_ok());
        assert!(BlockWeight::new(GgmlType::Q4_1, 2, 32, vec![0; 39]).is_err());
        assert!(BlockWeight::new(GgmlType::Q4_1, 1, 20, vec![0; 20]).is_err());
        assert!(BlockWeight::new(GgmlType::Q5K, 1, 256, vec![0; 176]).is_err());
        assert!(BlockWeight::new(GgmlType::Q6K, 1, 256, vec![0; 210]).is_ok());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = random_blocks(GgmlType::Q4_1, 2, 64, &mut rng);
        let b = random_blocks(GgmlType::Q4_1, 3, 64, &mut rng);
        let c = random_blocks(GgmlType::Q8_0, 3, 64, &mut rng);
        let s = BlockWeight::stack(&[a.clone(), b.clone()]).unwrap();
        assert_eq!((s.rows, s.cols), (5, 64));
        assert_eq!(s.dequantize(), [a.dequantize(), b.dequantize()].concat());
        assert!(BlockWeight::stack(&[a, c.clone()]).is_none());
        // Q4_0 / Q5_0 / Q8_0 mixes stack as Q8_0 with the same values.
        let d = random_blocks(GgmlType::Q4_0, 2, 64, &mut rng);
        let mut e = random_blocks(GgmlType::Q4_0, 1, 64, &mut rng);
        e.kind = GgmlType::Q5_0;
        e.bytes = Arc::new(
            e.bytes
                .chunks(18)
                .flat_map(|b| [&b[..2], &[0x5a, 0x0f, 0xf0, 0xa5][..], &b[2..]].concat())
                .collect(),
        );
        let s = BlockWeight::stack(&[d.clone(), e.clone(), c.clone()]).unwrap();
        assert_eq!((s.kind, s.rows), (GgmlType::Q8_0, 6));
        let want = [d.dequantize(), e.dequantize(), c.dequantize()].concat();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&s.dequantize()), bits(&want));
    }
}
