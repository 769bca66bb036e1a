//! A toy decoder for the scheduler's tests: several layers and KV heads,
//! every call through the cache-policy API ([`KvStore::policy_prefill`],
//! [`KvStore::policy_decode`]), so evicting policies run their own
//! placement and scoring, and DMS gets deterministic decisions (a function
//! of token, position, layer and head; about four tokens in five marked).
//! [`FrontLoaded`] marks only positions below a threshold and keeps every
//! later one, so a keep rate measured early undershoots what a sequence
//! keeps later: DMS's guesses go wrong the way a real checkpoint's may.
//! Positions continue across prefill chunks, so a prompt may be prefilled
//! in pieces.

use super::Decoder;
use crate::kv::{DecodeStep, KvShape, KvStore, PrefillStep, ResolvedPolicy, SeqId};

pub(crate) const SHAPE: KvShape = KvShape {
    layers: 2,
    kv_heads: 2,
    head_dim: 4,
};
const VOCAB: usize = 11;

/// The toy decoder (one query head per KV head).
pub(crate) struct Layered;

/// [`Layered`], but DMS marks only positions below `keep_from` (with
/// [`Layered`]'s decisions) and keeps every later one.
pub(crate) struct FrontLoaded {
    pub(crate) keep_from: usize,
}

/// A store of `block`-slot blocks running `policy`, shaped for [`Layered`].
pub(crate) fn store(policy: ResolvedPolicy, block: usize) -> KvStore {
    let mut s = KvStore::with_resolved_policy(SHAPE, policy.clone()).expect("policy");
    if s.block_size() != block {
        s = KvStore::with_block_size(SHAPE, block).expect("block");
        s.ledger.policy = crate::kv::policies::PolicyBook::new(policy, SHAPE);
    }
    s
}

fn entry(t: u32, p: usize, layer: usize, h: usize) -> [f32; 4] {
    let (t, p, l, h) = (t as f32, p as f32, layer as f32, h as f32);
    [
        (t * 0.7 + l + h * 0.3).sin(),
        (t * 1.3 + p * 0.1 + l * 0.2).cos(),
        (t * 0.3 + h).sin(),
        1.0,
    ]
}

fn marked(t: u32, p: usize, layer: usize, h: usize) -> bool {
    !(t as usize * 7 + p * 3 + layer * 5 + h * 11).is_multiple_of(5)
}

fn logits(o: &[f32]) -> Vec<f32> {
    (0..VOCAB)
        .map(|i| 3.0 * ((o[0] * 5.0 + i as f32).sin() + (o[1] * 3.0).cos() * i as f32 * 0.1))
        .collect()
}

/// Prefill `tokens` into `seq` at positions `position(seq)..` under
/// `mark`'s DMS decisions; returns the last position's logits.
fn prefill_with(
    store: &mut KvStore,
    seq: SeqId,
    tokens: &[u32],
    mark: impl Fn(u32, usize, usize, usize) -> bool,
) -> Vec<f32> {
    let (heads, d) = (SHAPE.kv_heads, SHAPE.head_dim);
    let t = tokens.len();
    let p0 = store.position(seq);
    let dms = store.policy().needs_decisions();
    let mut out = vec![0.0; t * heads * d];
    for layer in 0..SHAPE.layers {
        // q: [t, heads, d]; k, v: [heads, t, d]; decisions [heads, t].
        let q: Vec<f32> = (0..t)
            .flat_map(|i| (0..heads).flat_map(move |h| entry(tokens[i], p0 + i, layer, h)))
            .collect();
        let k: Vec<f32> = (0..heads)
            .flat_map(|h| (0..t).flat_map(move |i| entry(tokens[i], p0 + i, layer, h)))
            .collect();
        let decisions: Vec<bool> = if dms {
            (0..heads)
                .flat_map(|h| (0..t).map(move |i| (h, i)))
                .map(|(h, i)| mark(tokens[i], p0 + i, layer, h))
                .collect()
        } else {
            Vec::new()
        };
        let step = PrefillStep {
            layer,
            seq,
            q: &q,
            k: &k,
            v: &k,
            scale: 0.5,
            decisions: &decisions,
        };
        store.policy_prefill(step, &mut out).expect("prefill");
    }
    store.advance(seq, t);
    logits(&out[out.len() - heads * d..])
}

/// One decode step of `seqs` under `mark`'s DMS decisions; returns their
/// logits rows.
fn decode_with(
    store: &mut KvStore,
    seqs: &[SeqId],
    tokens: &[u32],
    mark: impl Fn(u32, usize, usize, usize) -> bool,
) -> Vec<f32> {
    let (heads, d) = (SHAPE.kv_heads, SHAPE.head_dim);
    let dms = store.policy().needs_decisions();
    let pos: Vec<usize> = seqs.iter().map(|&s| store.position(s)).collect();
    let mut out = vec![0.0; seqs.len() * heads * d];
    for layer in 0..SHAPE.layers {
        let kv: Vec<f32> = (0..seqs.len())
            .flat_map(|b| {
                let (t, p) = (tokens[b], pos[b]);
                (0..heads).flat_map(move |h| entry(t, p, layer, h))
            })
            .collect();
        let decisions: Vec<bool> = if dms {
            (0..seqs.len())
                .flat_map(|b| (0..heads).map(move |h| (b, h)))
                .map(|(b, h)| mark(tokens[b], pos[b], layer, h))
                .collect()
        } else {
            Vec::new()
        };
        let step = DecodeStep {
            layer,
            seqs,
            q: &kv,
            k: &kv,
            v: &kv,
            scale: 0.5,
            slots: &[],
        };
        store
            .policy_decode(step, &decisions, &mut out)
            .expect("decode");
    }
    for &s in seqs {
        store.advance(s, 1);
    }
    out.chunks(heads * d).flat_map(logits).collect()
}

impl Decoder for Layered {
    fn kv_shape(&self) -> KvShape {
        SHAPE
    }
    fn vocab_size(&self) -> usize {
        VOCAB
    }
    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        prefill_with(store, seq, tokens, marked)
    }
    /// Under DMS the toy's prefill is chunk-invariant: each query's output
    /// is the store's attention over the entries it sees, in position
    /// order, and nothing else mixes positions.
    fn chunks_prefill(&self, policy: &ResolvedPolicy) -> bool {
        policy.needs_decisions()
    }
    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        decode_with(store, seqs, tokens, marked)
    }
}

impl Decoder for FrontLoaded {
    fn kv_shape(&self) -> KvShape {
        SHAPE
    }
    fn vocab_size(&self) -> usize {
        VOCAB
    }
    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        let keep_from = self.keep_from;
        prefill_with(store, seq, tokens, move |t, p, l, h| {
            p < keep_from && marked(t, p, l, h)
        })
    }
    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        let keep_from = self.keep_from;
        decode_with(store, seqs, tokens, move |t, p, l, h| {
            p < keep_from && marked(t, p, l, h)
        })
    }
}
