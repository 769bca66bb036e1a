//! The KV store: per (sequence, layer, KV head) rows of post-RoPE keys and
//! values, each row with its own length.
//!
//! This is the reference implementation of the contract (contiguous rows, no
//! sharing); the paged, prefix-sharing layout replaces its internals without
//! changing the API.

use super::KvStats;

/// Dimensions of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Handle of one sequence in a [`KvStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub(crate) u32);

#[derive(Debug, Clone, Default)]
struct Row {
    keys: Vec<f32>,
    values: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Sequence {
    /// `layers * kv_heads` rows, layer-major.
    rows: Vec<Row>,
    positions: usize,
    stats: KvStats,
}

/// The project's KV store. Mutable inference state: passed explicitly (`&mut`)
/// into the model.
#[derive(Debug)]
pub struct KvStore {
    shape: KvShape,
    seqs: Vec<Option<Sequence>>,
    peak_resident: u64,
}

impl KvStore {
    pub fn new(shape: KvShape) -> Self {
        Self {
            shape,
            seqs: Vec::new(),
            peak_resident: 0,
        }
    }

    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// A new, empty sequence.
    pub fn add_sequence(&mut self) -> SeqId {
        let rows = vec![Row::default(); self.shape.layers * self.shape.kv_heads];
        self.seqs.push(Some(Sequence {
            rows,
            positions: 0,
            stats: KvStats::default(),
        }));
        SeqId((self.seqs.len() - 1) as u32)
    }

    /// `n` new sequences that continue from `parent` (its entries and
    /// position). The parent stays valid until released.
    pub fn fork(&mut self, parent: SeqId, n: usize) -> Vec<SeqId> {
        let base = self.seq(parent).clone();
        (0..n)
            .map(|_| {
                let mut s = base.clone();
                s.stats.decode_reads = 0;
                self.seqs.push(Some(s));
                SeqId((self.seqs.len() - 1) as u32)
            })
            .collect()
    }

    /// Drop a sequence and its entries.
    pub fn release(&mut self, seq: SeqId) {
        self.seqs[seq.0 as usize] = None;
    }

    /// Positions seen by `seq`: the RoPE position of its next token.
    pub fn position(&self, seq: SeqId) -> usize {
        self.seq(seq).positions
    }

    /// Record that `n` more tokens of `seq` went through every layer. Call
    /// once per forward pass, after the last layer.
    pub fn advance(&mut self, seq: SeqId, n: usize) {
        let s = self.seq_mut(seq);
        s.positions += n;
        s.stats.positions = s.positions as u64;
        self.update_peak();
    }

    /// Entries of `seq` per (layer, KV head), layer-major.
    pub fn row_lengths(&self, seq: SeqId) -> Vec<usize> {
        let d = self.shape.head_dim;
        self.seq(seq)
            .rows
            .iter()
            .map(|r| r.keys.len() / d)
            .collect()
    }

    /// Counters of one sequence.
    pub fn stats(&self, seq: SeqId) -> KvStats {
        let mut st = self.seq(seq).stats.clone();
        st.resident = self.row_lengths(seq).iter().sum::<usize>() as u64;
        st
    }

    /// Maximum over steps of the entries held by the whole store.
    pub fn peak_resident(&self) -> u64 {
        self.peak_resident
    }

    /// Append `t` prefill tokens of one layer and count the causal reads of
    /// the prefill attention over them.
    ///
    /// # Shapes
    /// `k`, `v`: `[kv_heads, t, head_dim]`, row-major.
    pub fn append_prefill(&mut self, seq: SeqId, layer: usize, k: &[f32], v: &[f32]) {
        let KvShape {
            kv_heads, head_dim, ..
        } = self.shape;
        let t = k.len() / (kv_heads * head_dim);
        let s = self.seq_mut(seq);
        for h in 0..kv_heads {
            let row = &mut s.rows[layer * kv_heads + h];
            let before = (row.keys.len() / head_dim) as u64;
            let span = h * t * head_dim..(h + 1) * t * head_dim;
            row.keys.extend_from_slice(&k[span.clone()]);
            row.values.extend_from_slice(&v[span]);
            let t = t as u64;
            s.stats.prefill_reads += t * before + t * (t + 1) / 2;
        }
    }

    /// One decode step of one layer for a batch of sequences: append each
    /// sequence's new key/value, then attend with its query over all its
    /// entries (the new one included).
    ///
    /// # Shapes
    /// `q`: `[batch, n_heads, head_dim]`; `k`, `v`: `[batch, kv_heads,
    /// head_dim]`; `out`: `[batch, n_heads, head_dim]`. `n_heads` is a
    /// multiple of `kv_heads` (GQA).
    pub fn decode_attend(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        scale: f32,
        out: &mut [f32],
    ) {
        let KvShape {
            kv_heads, head_dim, ..
        } = self.shape;
        let batch = seqs.len();
        let n_heads = q.len() / (batch * head_dim);
        let group = n_heads / kv_heads;
        for (b, &seq) in seqs.iter().enumerate() {
            let s = self.seq_mut(seq);
            for h in 0..kv_heads {
                let row = &mut s.rows[layer * kv_heads + h];
                let kv = (b * kv_heads + h) * head_dim..(b * kv_heads + h + 1) * head_dim;
                row.keys.extend_from_slice(&k[kv.clone()]);
                row.values.extend_from_slice(&v[kv]);
                let len = row.keys.len() / head_dim;
                s.stats.decode_reads += len as u64;
                for g in 0..group {
                    let qh = b * n_heads + h * group + g;
                    let qv = &q[qh * head_dim..(qh + 1) * head_dim];
                    let o = &mut out[qh * head_dim..(qh + 1) * head_dim];
                    attend_row(qv, &row.keys, &row.values, head_dim, scale, o);
                }
            }
        }
    }

    fn seq(&self, seq: SeqId) -> &Sequence {
        self.seqs[seq.0 as usize]
            .as_ref()
            .expect("sequence used after release")
    }

    fn seq_mut(&mut self, seq: SeqId) -> &mut Sequence {
        self.seqs[seq.0 as usize]
            .as_mut()
            .expect("sequence used after release")
    }

    fn update_peak(&mut self) {
        let d = self.shape.head_dim;
        let resident: u64 = self
            .seqs
            .iter()
            .flatten()
            .flat_map(|s| s.rows.iter())
            .map(|r| (r.keys.len() / d) as u64)
            .sum();
        self.peak_resident = self.peak_resident.max(resident);
        let bytes = resident * 2 * d as u64 * 4;
        for s in self.seqs.iter_mut().flatten() {
            let own: u64 = s.rows.iter().map(|r| (r.keys.len() / d) as u64).sum();
            s.stats.peak_resident = s.stats.peak_resident.max(own);
            s.stats.peak_bytes = s.stats.peak_bytes.max(own * 2 * d as u64 * 4);
        }
        let _ = bytes;
    }
}

/// Softmax attention of one query over one row.
fn attend_row(q: &[f32], keys: &[f32], values: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|k| q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale)
        .collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    out.fill(0.0);
    for (w, v) in weights.iter().zip(values.chunks_exact(d)) {
        for (o, x) in out.iter_mut().zip(v) {
            *o += w / total * x;
        }
    }
}
