//! Cache policies through the store: the DMS conformance suite (chunked
//! exact prefill then batched decode against a dense masked-attention
//! reference in f64, and the resident set against the mask's live set),
//! DMS limits (all-keep = dense, all-evict = a window of w + 1), the
//! training-free policies' budgets and equivalences, accounting.

use hyperscale::kv::{
    CachePolicy, DecodeStep, DmsParams, KvShape, KvStore, PrefillStep, RowId, SeqId,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One synthetic sequence: per layer and position, q/k/v in f64 and each
/// token's own DMS decision per KV head.
struct Seq {
    /// `[layers][t]` of `[n_heads * d]`
    q: Vec<Vec<Vec<f64>>>,
    /// `[layers][t]` of `[kv_heads * d]`
    k: Vec<Vec<Vec<f64>>>,
    v: Vec<Vec<Vec<f64>>>,
    /// `[layers][t]` of `[kv_heads]`
    e: Vec<Vec<Vec<bool>>>,
}

#[derive(Clone, Copy)]
struct Dims {
    shape: KvShape,
    group: usize,
}

impl Dims {
    fn n_heads(&self) -> usize {
        self.shape.kv_heads * self.group
    }
    fn scale(&self) -> f64 {
        1.0 / (self.shape.head_dim as f64).sqrt()
    }
}

/// Values uniform in ±2 (f64), or the same rounded through f32 first.
fn seq(rng: &mut impl Rng, dims: Dims, len: usize, p_evict: f64, f32_data: bool) -> Seq {
    let KvShape {
        layers,
        kv_heads,
        head_dim: d,
    } = dims.shape;
    let mut val = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| {
                let x: f64 = rng.random_range(-2.0..2.0);
                if f32_data { x as f32 as f64 } else { x }
            })
            .collect()
    };
    let per = |f: &mut dyn FnMut() -> Vec<f64>| -> Vec<Vec<Vec<f64>>> {
        (0..layers)
            .map(|_| (0..len).map(|_| f()).collect())
            .collect()
    };
    let q = per(&mut || val(dims.n_heads() * d));
    let k = per(&mut || val(kv_heads * d));
    let v = per(&mut || val(kv_heads * d));
    let e = (0..layers)
        .map(|_| {
            (0..len)
                .map(|_| (0..kv_heads).map(|_| rng.random_bool(p_evict)).collect())
                .collect()
        })
        .collect();
    Seq { q, k, v, e }
}

/// The DMS mask: key `k` visible to query `q`.
fn visible(s: &Seq, layer: usize, head: usize, p: DmsParams, q: usize, k: usize) -> bool {
    if k > q {
        return false;
    }
    let flag = if p.shifted {
        k + 1 < s.e[layer].len() && s.e[layer][k + 1][head]
    } else {
        s.e[layer][k][head]
    };
    !flag || q - k <= p.window
}

/// Dense masked attention in f64 of query `q` (all heads of the layer).
fn reference(
    s: &Seq,
    dims: Dims,
    layer: usize,
    q: usize,
    mask: &dyn Fn(usize, usize) -> bool,
) -> Vec<f64> {
    let d = dims.shape.head_dim;
    let mut out = vec![0.0; dims.n_heads() * d];
    for h in 0..dims.shape.kv_heads {
        let keys: Vec<usize> = (0..=q).filter(|&k| mask(h, k)).collect();
        for g in 0..dims.group {
            let qh = &s.q[layer][q][(h * dims.group + g) * d..][..d];
            let scores: Vec<f64> = keys
                .iter()
                .map(|&k| {
                    let kk = &s.k[layer][k][h * d..][..d];
                    qh.iter().zip(kk).map(|(a, b)| a * b).sum::<f64>() * dims.scale()
                })
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
            let total: f64 = w.iter().sum();
            let o = &mut out[(h * dims.group + g) * d..][..d];
            for (&k, wk) in keys.iter().zip(&w) {
                for (x, vv) in o.iter_mut().zip(&s.v[layer][k][h * d..][..d]) {
                    *x += wk / total * vv;
                }
            }
        }
    }
    out
}

fn f32s(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Prefill positions `a..b` of every layer of `s` into `id`; returns the
/// outputs `[layers][b - a]` of `[n_heads * d]`.
fn prefill(
    store: &mut KvStore,
    id: SeqId,
    s: &Seq,
    dims: Dims,
    a: usize,
    b: usize,
    dms: bool,
) -> Vec<Vec<Vec<f32>>> {
    let (kvh, d, t) = (dims.shape.kv_heads, dims.shape.head_dim, b - a);
    let mut outs = Vec::new();
    for layer in 0..dims.shape.layers {
        let q: Vec<f32> = (a..b).flat_map(|i| f32s(&s.q[layer][i])).collect();
        let gather = |x: &Vec<Vec<f64>>| -> Vec<f32> {
            (0..kvh)
                .flat_map(|h| (a..b).flat_map(move |i| f32s(&x[i][h * d..(h + 1) * d])))
                .collect()
        };
        let (k, v) = (gather(&s.k[layer]), gather(&s.v[layer]));
        let dec: Vec<bool> = if dms {
            (0..kvh)
                .flat_map(|h| (a..b).map(move |i| s.e[layer][i][h]))
                .collect()
        } else {
            Vec::new()
        };
        let mut out = vec![0.0; q.len()];
        let step = PrefillStep {
            layer,
            seq: id,
            q: &q,
            k: &k,
            v: &v,
            scale: dims.scale() as f32,
            decisions: &dec,
        };
        store.policy_prefill(step, &mut out).unwrap();
        outs.push(
            out.chunks(dims.n_heads() * d)
                .map(<[f32]>::to_vec)
                .collect(),
        );
    }
    store.advance(id, t);
    outs
}

/// One decode step of every sequence in `batch` (at their own positions);
/// returns `[layers][batch]` outputs.
fn decode(
    store: &mut KvStore,
    batch: &[(SeqId, &Seq)],
    dims: Dims,
    dms: bool,
) -> Vec<Vec<Vec<f32>>> {
    let kvh = dims.shape.kv_heads;
    let seqs: Vec<SeqId> = batch.iter().map(|b| b.0).collect();
    let mut outs = Vec::new();
    for layer in 0..dims.shape.layers {
        let at = |id: SeqId| store.position(id);
        let q: Vec<f32> = batch
            .iter()
            .flat_map(|(id, s)| f32s(&s.q[layer][at(*id)]))
            .collect();
        let k: Vec<f32> = batch
            .iter()
            .flat_map(|(id, s)| f32s(&s.k[layer][at(*id)]))
            .collect();
        let v: Vec<f32> = batch
            .iter()
            .flat_map(|(id, s)| f32s(&s.v[layer][at(*id)]))
            .collect();
        let dec: Vec<bool> = if dms {
            batch
                .iter()
                .flat_map(|(id, s)| s.e[layer][at(*id)].clone())
                .collect()
        } else {
            Vec::new()
        };
        let mut out = vec![0.0; q.len()];
        let step = DecodeStep {
            layer,
            seqs: &seqs,
            q: &q,
            k: &k,
            v: &v,
            scale: dims.scale() as f32,
            slots: &[],
        };
        store.policy_decode(step, &dec, &mut out).unwrap();
        assert_eq!(
            out.len(),
            batch.len() * dims.n_heads() * dims.shape.head_dim
        );
        outs.push(
            out.chunks(dims.n_heads() * dims.shape.head_dim)
                .map(<[f32]>::to_vec)
                .collect(),
        );
        let _ = kvh;
    }
    for &id in &seqs {
        store.advance(id, 1);
    }
    outs
}

fn max_err(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// The store's positions of every row equal the live set of query `next`
/// (keys `< next` it will see; `next` = positions seen).
fn check_live(
    store: &KvStore,
    id: SeqId,
    s: &Seq,
    dims: Dims,
    p: DmsParams,
    q: usize,
    upto: usize,
) {
    for layer in 0..dims.shape.layers {
        for head in 0..dims.shape.kv_heads {
            let mut got = store
                .row_positions(RowId {
                    seq: id,
                    layer,
                    head,
                })
                .unwrap();
            got.sort_unstable();
            let want: Vec<u32> = (0..upto)
                .filter(|&k| visible(s, layer, head, p, q, k))
                .map(|k| k as u32)
                .collect();
            assert_eq!(got, want, "layer {layer} head {head} at query {q}");
        }
    }
}

/// One conformance case: `n_seqs` sequences, random chunked prefills, then
/// batched decode; every output against the reference, every resident set
/// against the mask. Returns the worst error.
fn conformance_case(seed: u64, f32_data: bool) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims = Dims {
        shape: KvShape {
            layers: 2,
            kv_heads: 2,
            head_dim: 8,
        },
        group: 2,
    };
    let params = DmsParams {
        window: rng.random_range(2..=128),
        shifted: rng.random_bool(0.5),
    };
    let policy = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    let mut store = KvStore::with_policy(dims.shape, &policy, Some(params)).unwrap();
    let n_seqs = rng.random_range(1..=3);
    let steps = rng.random_range(1..=60);
    let mut data = Vec::new();
    let mut worst = 0.0f64;
    for _ in 0..n_seqs {
        let prompt = rng.random_range(1..=300);
        let s = seq(&mut rng, dims, prompt + steps, 0.9, f32_data);
        let id = store.add_sequence();
        let mut a = 0;
        while a < prompt {
            let b = (a + rng.random_range(1..=128)).min(prompt);
            let outs = prefill(&mut store, id, &s, dims, a, b, true);
            for (layer, rows) in outs.iter().enumerate() {
                for (i, got) in rows.iter().enumerate() {
                    let q = a + i;
                    let want = reference(&s, dims, layer, q, &|h, k| {
                        visible(&s, layer, h, params, q, k)
                    });
                    worst = worst.max(max_err(got, &want));
                }
            }
            // Held = what query b will see among keys < b.
            check_live(&store, id, &s, dims, params, b, b);
            a = b;
        }
        data.push((id, s));
    }
    for _ in 0..steps {
        let batch: Vec<(SeqId, &Seq)> = data.iter().map(|(id, s)| (*id, s)).collect();
        let pos: Vec<usize> = batch.iter().map(|(id, _)| store.position(*id)).collect();
        let outs = decode(&mut store, &batch, dims, true);
        for (layer, rows) in outs.iter().enumerate() {
            for (b, got) in rows.iter().enumerate() {
                let (s, q) = (batch[b].1, pos[b]);
                let want = reference(s, dims, layer, q, &|h, k| {
                    visible(s, layer, h, params, q, k)
                });
                worst = worst.max(max_err(got, &want));
            }
        }
        for (b, (id, s)) in batch.iter().enumerate() {
            check_live(&store, *id, s, dims, params, pos[b], pos[b] + 1);
        }
    }
    store.audit().unwrap();
    worst
}

/// `dms.md` §10.1: random q/k/v (f64 data, and f32 data), decisions with
/// p = 0.9, window 2–128, chunk 1–128, several sequences of different
/// lengths decoded as one batch (the store has no padding: each sequence
/// owns its rows). The store computes in f32, so both compare to the f64
/// reference at the f32 tolerance 1e-4.
#[test]
fn dms_conformance_chunked_prefill_then_batched_decode() {
    let mut worst = 0.0f64;
    for seed in 0..12 {
        for f32_data in [false, true] {
            worst = worst.max(conformance_case(seed, f32_data));
        }
    }
    println!("dms conformance: worst |store - f64 reference| = {worst:.2e}");
    assert!(worst < 1e-4, "worst error {worst}");
}
