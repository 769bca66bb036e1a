//! The CPU decode-attention kernel over the paged layout: one query step of
//! G grouped query heads per (sequence, KV head) row, attending over the
//! row's blocks.
//!
//! Work is split across rayon into (row, span) items: each row's entries in
//! spans of [`SPAN`] from its first (split-K), merged afterwards with the
//! log-sum-exp rule. The spans are fixed, so a row's output depends on its
//! own entries only: the same bits alone or beside any other rows, on any
//! number of threads (which rows and how many threads once chose the
//! spans, and so changed the last bits). Each item
//! reads every key and value of its span once for all G query heads, keeps
//! the scores in a thread-local scratch (three passes: scores, max-subtracted
//! exponentials, weighted values) and accumulates in f32. The inner loops run
//! over `head_dim` with eight independent accumulators; on x86-64 with AVX2 +
//! FMA (detected at run time) they are compiled with those features, and
//! with AVX-512 the `head_dim` 64 and 128 passes run as register tiles of
//! up to three query heads (`tile.rs`), the same bits as AVX2's.
//! `HYPERSCALE_CPU_KERNELS=avx2` (or lower; [`Isa::active`]) keeps the
//! AVX2 passes.

use std::cell::RefCell;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::simd::Avx2;
#[cfg(target_arch = "aarch64")]
use super::simd::Fused;
use super::simd::{Madd, Plain, axpy, dot, exp_fast, exp_sum};
#[cfg(target_arch = "x86_64")]
use super::tile;
#[cfg(target_arch = "x86_64")]
use crate::model::kernels::isa::Isa;

/// One layer's pool of keys and values, borrowed.
///
/// # Shapes
/// `keys`, `values`: `[slots, head_dim]`; slot `s` of a row lives at global
/// slot `blocks[s / block_size] * block_size + s % block_size`.
#[derive(Debug, Clone, Copy)]
pub struct PagedKv<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub block_size: usize,
    pub head_dim: usize,
}

/// One row to attend over: its block table and its length (slots
/// `0..len` are live).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub blocks: &'a [u32],
    pub len: usize,
}

/// Entries per split-K span: row entries `s·SPAN .. (s + 1)·SPAN` are
/// one work item. A constant, not a function of the batch or the thread
/// count, so that no row's bits depend on either. A span's merge (an
/// `exp` and `head_dim` multiply-adds per query head) is small beside its
/// 512 keys and values, and a long row still spreads over the threads (a
/// 4 096-entry row is eight items per KV head).
pub(super) const SPAN: usize = 512;

/// Decode attention of `rows.len()` rows, each with `group` query heads.
/// An empty row yields zeros.
///
/// # Shapes
/// `q`, `out`: `[rows, group, head_dim]` (that is `[batch, n_heads,
/// head_dim]` with row `b * kv_heads + h` owning query heads `h * group ..
/// (h + 1) * group`).
pub fn decode_attention(
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
) {
    attend(Passes::best(), kv, rows, q, group, scale, out, None);
}

/// [`decode_attention`] that also writes each entry's attention weight,
/// averaged over the row's G query heads (what TOVA and H2O score by).
/// Rows are not split across threads.
///
/// # Shapes
/// As [`decode_attention`]; `weights`: `[Σ rows' len]`, row after row, each
/// row's entries in slot order.
pub fn decode_attention_weights(
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    weights: &mut [f32],
) {
    attend(
        Passes::best(),
        kv,
        rows,
        q,
        group,
        scale,
        out,
        Some(weights),
    );
}

/// How a kernel call computes its passes. Every form but [`Passes::Plain`]
/// (no fused multiply-add) gives the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passes {
    /// Portable, unfused.
    Plain,
    /// Portable, fused (aarch64 always has FMA).
    #[cfg(target_arch = "aarch64")]
    Fused,
    /// 256-bit AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2's passes with [`super::tile`]'s AVX-512 tiles for `head_dim`
    /// 64 and 128.
    #[cfg(target_arch = "x86_64")]
    Tiles,
}

impl Passes {
    /// The fastest this CPU runs, within [`Isa::active`]'s choice for the
    /// tiles.
    fn best() -> Passes {
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::active() >= Isa::Avx512 && tile::runs_here() {
                return Passes::Tiles;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Passes::Avx2;
            }
        }
        #[cfg(target_arch = "aarch64")]
        return Passes::Fused;
        #[cfg_attr(
            target_arch = "aarch64",
            expect(unreachable_code, reason = "aarch64 always has FMA")
        )]
        Passes::Plain
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the public entries' arguments plus the passes"
)]
fn attend(
    passes: Passes,
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    weights: Option<&mut [f32]>,
) {
    let d = kv.head_dim;
    assert_eq!(
        q.len(),
        rows.len() * group * d,
        "q is not [rows, group, head_dim]"
    );
    assert_eq!(out.len(), q.len(), "out is not [rows, group, head_dim]");
    let mut row_weights: Vec<Option<&mut [f32]>> = match weights {
        Some(w) => {
            let total: usize = rows.iter().map(|r| r.len).sum();
            assert_eq!(w.len(), total, "weights is not [Σ row lengths]");
            let mut rest = w;
            rows.iter()
                .map(|r| {
                    let (mine, tail) = std::mem::take(&mut rest).split_at_mut(r.len);
                    rest = tail;
                    Some(mine)
                })
                .collect()
        }
        None => Vec::new(),
    };
    let span = if row_weights.is_empty() {
        SPAN
    } else {
        usize::MAX
    };
    // Rows that start with the same block (forks of one prompt: their
    // shared prefix) run one after another, so a thread reads the same
    // keys and values again while they are still in its cache. Every item
    // computes the same whatever the order. (With weights, items are the
    // rows in order.)
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if row_weights.is_empty() {
        order.sort_by_key(|&r| (rows[r].blocks.first().copied(), r));
    }
    let mut items = Vec::with_capacity(rows.len());
    // Row `r`'s items are `row_items[r].0 .. row_items[r].1`.
    let mut row_items = vec![(0, 0); rows.len()];
    for &r in &order {
        let first = items.len();
        let mut start = 0;
        loop {
            let end = (start + span).min(rows[r].len);
            items.push((r, start, end));
            start = end;
            if start >= rows[r].len {
                break;
            }
        }
        row_items[r] = (first, items.len());
    }
    let stride = group * (d + 2);
    let mut partials = vec![0.0f32; items.len() * stride];
    // With weights, items are the rows one to one (no split).
    if row_weights.is_empty() {
        row_weights.resize_with(items.len(), || None);
    }
    partials
        .par_chunks_mut(stride)
        .zip(items.par_iter())
        .zip(row_weights.par_iter_mut())
        .for_each(|((part, &(r, start, end)), w)| {
            let job = Span {
                passes,
                kv,
                blocks: rows[r].blocks,
                start,
                end,
                q: &q[r * group * d..(r + 1) * group * d],
                group,
                scale,
            };
            job.run(part, w.take());
        });
    out.par_chunks_mut(group * d)
        .enumerate()
        .for_each(|(r, o)| {
            let (first, end) = row_items[r];
            let parts = &partials[first * stride..end * stride];
            merge(parts, group, d, o);
        });
}

/// Combine per-span partials `[m; G] [l; G] [acc; G × d]` into the output.
fn merge(parts: &[f32], group: usize, d: usize, out: &mut [f32]) {
    let stride = group * (d + 2);
    for g in 0..group {
        let o = &mut out[g * d..(g + 1) * d];
        o.fill(0.0);
        let m = parts
            .chunks_exact(stride)
            .map(|p| p[g])
            .fold(f32::NEG_INFINITY, f32::max);
        if m == f32::NEG_INFINITY {
            continue;
        }
        let mut l = 0.0f32;
        for p in parts.chunks_exact(stride) {
            // The kernel's own `exp` (not libm's, which may differ between
            // machines); `exp_fast(0)` is exactly 1, so a one-span row's
            // output is its accumulator over its sum.
            let w = exp_fast(p[g] - m);
            l += w * p[group + g];
            let acc = &p[2 * group + g * d..2 * group + (g + 1) * d];
            for (x, a) in o.iter_mut().zip(acc) {
                *x += w * a;
            }
        }
        let inv = 1.0 / l;
        o.iter_mut().for_each(|x| *x *= inv);
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Slots `start..end` of one row, attended by the row's G query heads.
struct Span<'a> {
    passes: Passes,
    kv: PagedKv<'a>,
    blocks: &'a [u32],
    start: usize,
    end: usize,
    q: &'a [f32],
    group: usize,
    scale: f32,
}

impl Span<'_> {
    /// Write the partial `[m; G] [l; G] [acc; G × d]` of this span and, if
    /// asked, the mean attention weight of each entry.
    fn run(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        match self.passes {
            Passes::Plain => self.run_with::<Plain, false>(part, weights),
            #[cfg(target_arch = "aarch64")]
            Passes::Fused => self.run_with::<Fused, false>(part, weights),
            // SAFETY: `Passes::best` (or a test, after the same check) chose
            // AVX2 on a CPU with AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Passes::Avx2 => unsafe { self.run_avx2(part, weights) },
            // SAFETY: chosen after `tile::runs_here`.
            #[cfg(target_arch = "x86_64")]
            Passes::Tiles => unsafe { self.run_tiles(part, weights) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        self.run_with::<Avx2, false>(part, weights)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn run_tiles(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        self.run_with::<Avx2, true>(part, weights)
    }

    /// `TILES`: only from [`Span::run_tiles`].
    #[inline(always)]
    fn run_with<M: Madd, const TILES: bool>(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        let (g_n, d) = (self.group, self.kv.head_dim);
        let n = self.end - self.start;
        let (ms, rest) = part.split_at_mut(g_n);
        let (ls, accs) = rest.split_at_mut(g_n);
        accs.fill(0.0);
        if n == 0 {
            ms.fill(f32::NEG_INFINITY);
            ls.fill(0.0);
            return;
        }
        // Taken out of the thread-local rather than borrowed in a closure
        // (see pass 1 on closures and target features).
        let mut scratch = SCRATCH.take();
        scratch.clear();
        scratch.resize(g_n * (d + n), 0.0);
        let (qs, scores) = scratch.split_at_mut(g_n * d);
        for (s, x) in qs.iter_mut().zip(self.q) {
            *s = x * self.scale;
        }
        // Pass 1: scores. (Plain loops, no closures: a closure would not
        // inherit the caller's target features and `mul_add` would become a
        // libm call.)
        match d {
            #[cfg(target_arch = "x86_64")]
            64 if TILES => self.scores_tiled::<64>(qs, scores, n),
            #[cfg(target_arch = "x86_64")]
            128 if TILES => self.scores_tiled::<128>(qs, scores, n),
            64 => self.scores_fixed::<M, 64>(qs, scores, n),
            128 => self.scores_fixed::<M, 128>(qs, scores, n),
            _ => self.scores_any::<M>(qs, scores, n),
        }
        // Pass 2: max-subtracted exponentials and their sums.
        for g in 0..g_n {
            let s = &mut scores[g * n..(g + 1) * n];
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            ms[g] = m;
            ls[g] = exp_sum(s, m);
        }
        if let Some(w) = weights {
            w.fill(0.0);
            for g in 0..g_n {
                let k = 1.0 / (ls[g] * g_n as f32);
                for (x, e) in w.iter_mut().zip(&scores[g * n..(g + 1) * n]) {
                    *x += e * k;
                }
            }
        }
        // Pass 3: weighted values.
        match d {
            #[cfg(target_arch = "x86_64")]
            64 if TILES => self.values_tiled::<64>(scores, accs, n),
            #[cfg(target_arch = "x86_64")]
            128 if TILES => self.values_tiled::<128>(scores, accs, n),
            64 => self.values_fixed::<M, 64>(scores, accs, n),
            128 => self.values_fixed::<M, 128>(scores, accs, n),
            _ => self.values_any::<M>(scores, accs, n),
        }
        SCRATCH.set(scratch);
    }

    /// Pass 1, any `head_dim`: one key load for all G heads.
    #[inline(always)]
    fn scores_any<M: Madd>(&self, qs: &[f32], scores: &mut [f32], n: usize) {
        let (g_n, d) = (self.group, self.kv.head_dim);
        let mut j = 0;
        for (slot, count) in self.runs() {
            let keys = &self.kv.keys[slot * d..(slot + count) * d];
            for k in keys.chunks_exact(d) {
                for g in 0..g_n {
                    scores[g * n + j] = dot::<M>(&qs[g * d..(g + 1) * d], k);
                }
                j += 1;
            }
        }
    }

    /// Pass 1 for `head_dim == D`: per run (one block, in L1), each head's
    /// query stays in registers while keys are scored four at a time (four
    /// independent FMA chains).
    #[inline(always)]
    fn scores_fixed<M: Madd, const D: usize>(&self, qs: &[f32], scores: &mut [f32], n: usize) {
        let mut j0 = 0;
        for (slot, count) in self.runs() {
            let (keys, _) = self.kv.keys[slot * D..(slot + count) * D].as_chunks::<D>();
            let (k4, k1) = keys.as_chunks::<4>();
            for g in 0..self.group {
                let q: &[f32; D] = qs[g * D..(g + 1) * D].try_into().expect("D floats");
                let out = &mut scores[g * n + j0..g * n + j0 + count];
                let (o4, o1) = out.as_chunks_mut::<4>();
                for (o, k) in o4.iter_mut().zip(k4) {
                    *o = M::dot4::<D>(q, k);
                }
                for (o, k) in o1.iter_mut().zip(k1) {
                    *o = dot::<M>(q, k);
                }
            }
            j0 += count;
        }
    }

    /// Pass 3, any `head_dim`: one value load for all G heads.
    #[inline(always)]
    fn values_any<M: Madd>(&self, scores: &[f32], accs: &mut [f32], n: usize) {
        let (g_n, d) = (self.group, self.kv.head_dim);
        let mut j = 0;
        for (slot, count) in self.runs() {
            let values = &self.kv.values[slot * d..(slot + count) * d];
            for v in values.chunks_exact(d) {
                for g in 0..g_n {
                    axpy::<M>(&mut accs[g * d..(g + 1) * d], scores[g * n + j], v);
                }
                j += 1;
            }
        }
    }

    /// Pass 3 for `head_dim == D`: per run (in L1), each head's accumulator
    /// stays in registers across the run's values.
    #[inline(always)]
    fn values_fixed<M: Madd, const D: usize>(&self, scores: &[f32], accs: &mut [f32], n: usize) {
        let mut j0 = 0;
        for (slot, count) in self.runs() {
            let (values, _) = self.kv.values[slot * D..(slot + count) * D].as_chunks::<D>();
            for g in 0..self.group {
                let slot_acc: &mut [f32; D] = (&mut accs[g * D..(g + 1) * D])
                    .try_into()
                    .expect("D floats");
                let mut acc = *slot_acc;
                for (v, &w) in values.iter().zip(&scores[g * n + j0..g * n + j0 + count]) {
                    for i in 0..D {
                        acc[i] = M::madd(w, v[i], acc[i]);
                    }
                }
                *slot_acc = acc;
            }
            j0 += count;
        }
    }

    /// Pass 1 with [`tile::scores`], run by run.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn scores_tiled<const D: usize>(&self, qs: &[f32], scores: &mut [f32], n: usize) {
        let mut j0 = 0;
        for (slot, count) in self.runs() {
            let (keys, _) = self.kv.keys[slot * D..(slot + count) * D].as_chunks::<D>();
            // SAFETY: only reached from `run_tiles`, chosen after
            // `tile::runs_here`.
            unsafe { tile::scores::<D>(qs, keys, scores, n, j0) };
            j0 += count;
        }
    }

    /// Pass 3 with [`tile::values`], run by run.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn values_tiled<const D: usize>(&self, scores: &[f32], accs: &mut [f32], n: usize) {
        let mut j0 = 0;
        for (slot, count) in self.runs() {
            let (values, _) = self.kv.values[slot * D..(slot + count) * D].as_chunks::<D>();
            // SAFETY: as in `scores_tiled`.
            unsafe { tile::values::<D>(scores, values, accs, n, j0) };
            j0 += count;
        }
    }

    /// The span's contiguous runs as (first global slot, count).
    fn runs(&self) -> Runs<'_> {
        Runs {
            blocks: self.blocks,
            bs: self.kv.block_size,
            at: self.start,
            end: self.end,
        }
    }
}

/// Contiguous runs of slots `at..end` of a row: one per block touched.
struct Runs<'a> {
    blocks: &'a [u32],
    bs: usize,
    at: usize,
    end: usize,
}

impl Iterator for Runs<'_> {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.end {
            return None;
        }
        let off = self.at % self.bs;
        let count = (self.bs - off).min(self.end - self.at);
        let slot = self.blocks[self.at / self.bs] as usize * self.bs + off;
        self.at += count;
        Some((slot, count))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    struct Lcg(u32);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.0 >> 8
        }

        fn float(&mut self, amp: f32) -> f32 {
            (self.next() as f32 / (1 << 24) as f32 * 2.0 - 1.0) * amp
        }
    }

    /// Both passes' outputs (and the weights, when asked) of one call.
    fn run(
        passes: Passes,
        kv: PagedKv<'_>,
        rows: &[RowRef<'_>],
        q: &[f32],
        group: usize,
        with_weights: bool,
    ) -> (Vec<u32>, Vec<u32>) {
        let mut out = vec![f32::NAN; q.len()];
        let total: usize = rows.iter().map(|r| r.len).sum();
        let mut w = vec![f32::NAN; total];
        let scale = 1.0 / (kv.head_dim as f32).sqrt();
        attend(
            passes,
            kv,
            rows,
            q,
            group,
            scale,
            &mut out,
            with_weights.then_some(&mut w[..]),
        );
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        (bits(&out), if with_weights { bits(&w) } else { Vec::new() })
    }

    /// Random keys and values for rows of `lens` entries, their blocks
    /// handed out in a scrambled order, and a random query per row.
    struct Rows {
        keys: Vec<f32>,
        values: Vec<f32>,
        tables: Vec<Vec<u32>>,
        lens: Vec<usize>,
        q: Vec<f32>,
        bs: usize,
        d: usize,
    }

    impl Rows {
        fn random(rng: &mut Lcg, lens: &[usize], bs: usize, d: usize, group: usize) -> Rows {
            let blocks: usize = lens.iter().map(|l| l.div_ceil(bs)).sum::<usize>() + 2;
            let keys: Vec<f32> = (0..blocks * bs * d).map(|_| rng.float(3.0)).collect();
            let values: Vec<f32> = (0..blocks * bs * d).map(|_| rng.float(1.0)).collect();
            let mut order: Vec<u32> = (0..blocks as u32).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.next() as usize % (i + 1));
            }
            let mut next = order.into_iter();
            let tables: Vec<Vec<u32>> = lens
                .iter()
                .map(|l| (0..l.div_ceil(bs)).map(|_| next.next().unwrap()).collect())
                .collect();
            let q: Vec<f32> = (0..lens.len() * group * d)
                .map(|_| rng.float(1.0))
                .collect();
            Rows {
                keys,
                values,
                tables,
                lens: lens.to_vec(),
                q,
                bs,
                d,
            }
        }

        fn kv(&self) -> PagedKv<'_> {
            PagedKv {
                keys: &self.keys,
                values: &self.values,
                block_size: self.bs,
                head_dim: self.d,
            }
        }

        fn rows(&self) -> Vec<RowRef<'_>> {
            self.tables
                .iter()
                .zip(&self.lens)
                .map(|(t, &len)| RowRef { blocks: t, len })
                .collect()
        }
    }

    /// A row's output is the same bits alone, beside other rows (short and
    /// long, forks sharing its blocks or not) and on any number of threads:
    /// the split-K spans are fixed, not chosen from the batch or the pool.
    /// Rows of one span, a span and a bit, and several spans, each with
    /// every pass.
    #[test]
    fn a_row_gives_the_same_bits_alone_beside_others_and_on_any_thread_count() {
        let (bs, d, group) = (16, 64, 3);
        let lens = [1, SPAN - 1, SPAN, SPAN + 1, 3 * SPAN + 100, 2 * SPAN, 7];
        let mut rng = Lcg(11);
        let fixture = Rows::random(&mut rng, &lens, bs, d, group);
        let kv = fixture.kv();
        let mut rows = fixture.rows();
        // A fork of the longest row: the same blocks, another query.
        rows.push(rows[4]);
        let mut q = fixture.q.clone();
        q.extend((0..group * d).map(|_| rng.float(1.0)));
        let per_row = group * d;
        let mut passes = vec![Passes::Plain];
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            passes.push(Passes::Avx2);
        }
        if tile::runs_here() {
            passes.push(Passes::Tiles);
        }
        for p in passes {
            let pool = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a pool")
            };
            let all = pool(2).install(|| run(p, kv, &rows, &q, group, false).0);
            for threads in [1, 2, 3, 5, 8] {
                let got = pool(threads).install(|| run(p, kv, &rows, &q, group, false).0);
                assert!(
                    got == all,
                    "{p:?}: all rows on {threads} threads differ from 2"
                );
                for (r, row) in rows.iter().enumerate() {
                    let alone = pool(threads).install(|| {
                        run(
                            p,
                            kv,
                            std::slice::from_ref(row),
                            &q[r * per_row..(r + 1) * per_row],
                            group,
                            false,
                        )
                        .0
                    });
                    assert!(
                        alone[..] == all[r * per_row..(r + 1) * per_row],
                        "{p:?}: row {r} (len {}) alone on {threads} threads differs from it in the batch",
                        row.len
                    );
                }
                // Two rows: the longest beside one short row.
                let pair = [rows[4], rows[0]];
                let pq = [&q[4 * per_row..5 * per_row], &q[..per_row]].concat();
                let got = pool(threads).install(|| run(p, kv, &pair, &pq, group, false).0);
                assert!(
                    got[..per_row] == all[4 * per_row..5 * per_row],
                    "{p:?}: the long row beside one other on {threads} threads differs"
                );
            }
        }
    }

    /// The AVX-512 tiles give the AVX2 passes' bits: ragged rows (empty,
    /// shorter than a tile, every remainder of 8 and of 4, across block
    /// boundaries), block sizes that cut tiles, group sizes that leave one
    /// or two heads after the tiles of three, `head_dim` 64 and 128 (and
    /// 32, which keeps the AVX2 passes), whole rows and split-K spans, with
    /// and without the weights.
    #[test]
    fn tiles_match_the_avx2_passes_bit_for_bit() {
        if !tile::runs_here() {
            eprintln!("skipped: this CPU has no AVX-512 F + VL");
            return;
        }
        let ragged: Vec<usize> = vec![
            0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 31, 32, 33, 64, 100, 257, 1024,
        ];
        let cases: [(usize, usize, usize, Vec<usize>); 11] = [
            (32, 64, 3, ragged.clone()),
            (16, 64, 1, ragged.clone()),
            (7, 64, 2, ragged.clone()),
            (33, 64, 4, ragged.clone()),
            (1, 64, 3, ragged[..12].to_vec()),
            (13, 64, 5, ragged.clone()),
            (5, 128, 7, ragged.clone()),
            (32, 128, 3, ragged.clone()),
            (32, 32, 3, ragged.clone()),
            (32, 64, 3, vec![3000]),
            (24, 128, 6, vec![1500, 9]),
        ];
        for (seed, (bs, d, group, lens)) in cases.into_iter().enumerate() {
            let mut rng = Lcg(seed as u32 * 7919 + 1);
            let fixture = Rows::random(&mut rng, &lens, bs, d, group);
            let (kv, rows, q) = (fixture.kv(), fixture.rows(), &fixture.q[..]);
            for with_weights in [false, true] {
                let want = run(Passes::Avx2, kv, &rows, q, group, with_weights);
                let got = run(Passes::Tiles, kv, &rows, q, group, with_weights);
                assert!(
                    want == got,
                    "bs {bs} d {d} G {group} lens {lens:?} weights {with_weights}: \
                     the tiles differ from the AVX2 passes"
                );
            }
        }
    }
}
