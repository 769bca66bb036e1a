//! Cache policies through the store: the DMS conformance suite (chunked
//! exact prefill then batched decode against a dense masked-attention
//! reference in f64, and the resident set against the mask's live set),
//! DMS limits (all-keep = dense, all-evict = a window of w + 1), the
//! training-free policies' budgets and equivalences, accounting.

use std::collections::BTreeMap;

use hyperscale::kv::{
    Budget, CachePolicy, DecodeStep, DmsParams, KvShape, KvStore, PrefillStep, RowId, SeqId,
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

/// `docs/method.md` §3.5: random q/k/v (f64 data, and f32 data), decisions with
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

/// What a DMS checkpoint would say; the tests' policies override both.
const MODEL_DMS: DmsParams = DmsParams {
    window: 512,
    shifted: true,
};

fn small() -> Dims {
    Dims {
        shape: KvShape {
            layers: 2,
            kv_heads: 2,
            head_dim: 8,
        },
        group: 2,
    }
}

/// Prefill `prompt` in one chunk, then decode to `len`; returns every
/// output, `[position][layer]` of `[n_heads * d]`.
fn run_one(
    store: &mut KvStore,
    s: &Seq,
    dims: Dims,
    prompt: usize,
    len: usize,
    dms: bool,
) -> (SeqId, Vec<Vec<Vec<f32>>>) {
    let id = store.add_sequence();
    let outs = prefill(store, id, s, dims, 0, prompt, dms);
    let mut all: Vec<Vec<Vec<f32>>> = (0..prompt)
        .map(|i| outs.iter().map(|l| l[i].clone()).collect())
        .collect();
    for _ in prompt..len {
        let o = decode(store, &[(id, s)], dims, dms);
        all.push(o.into_iter().map(|mut l| l.remove(0)).collect());
    }
    (id, all)
}

fn assert_close(a: &[Vec<Vec<f32>>], b: &[Vec<Vec<f32>>], tol: f32, what: &str) {
    for (p, (x, y)) in a.iter().zip(b).enumerate() {
        for (l, (u, w)) in x.iter().zip(y).enumerate() {
            let e = u
                .iter()
                .zip(w)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(e <= tol, "{what}: position {p} layer {l}: error {e}");
        }
    }
}

#[test]
fn dms_all_keep_equals_dense() {
    let dims = small();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let s = seq(&mut rng, dims, 90, 0.0, false);
    let dms = CachePolicy::Dms {
        window: Some(4),
        shifted: Some(true),
    };
    let mut a = KvStore::with_policy(dims.shape, &dms, Some(MODEL_DMS)).unwrap();
    let mut b = KvStore::with_policy(dims.shape, &CachePolicy::Dense {}, None).unwrap();
    let (ia, x) = run_one(&mut a, &s, dims, 50, 90, true);
    let (ib, y) = run_one(&mut b, &s, dims, 50, 90, false);
    assert_close(&x, &y, 0.0, "dms all-keep vs dense");
    assert_eq!(a.stats(ia).row_len, vec![90; 4]);
    assert_eq!(a.stats(ia), b.stats(ib));
}

#[test]
fn dms_all_evict_is_a_window_of_w_plus_one() {
    let dims = small();
    let w = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let s = seq(&mut rng, dims, 80, 1.0, false);
    for shifted in [true, false] {
        let dms = CachePolicy::Dms {
            window: Some(w),
            shifted: Some(shifted),
        };
        let mut a = KvStore::with_policy(dims.shape, &dms, Some(MODEL_DMS)).unwrap();
        let (ia, x) = run_one(&mut a, &s, dims, 40, 80, true);
        // Against attention over the last w + 1 positions.
        for (q, outs) in x.iter().enumerate() {
            for (layer, got) in outs.iter().enumerate() {
                let want = reference(&s, dims, layer, q, &|_, k| q - k <= w);
                assert!(max_err(got, &want) < 1e-4, "shifted {shifted} query {q}");
            }
        }
        assert_eq!(a.stats(ia).row_len, vec![w as u32 + 1; 4]);
        // And the window policy's decode over the same prompt.
        let win = CachePolicy::Window {
            sink: 0,
            budget: Budget::Tokens { tokens: w + 1 },
        };
        let mut b = KvStore::with_policy(dims.shape, &win, None).unwrap();
        let (_, y) = run_one(&mut b, &s, dims, 40, 80, false);
        assert_close(&x[40..], &y[40..], 1e-6, "dms all-evict vs window");
    }
}

/// A position-level reference of a scored policy on one row: resident
/// positions and scores, weights in f64.
struct Sim {
    kind: &'static str,
    sink: usize,
    recent: usize,
    budget: Budget,
    held: BTreeMap<usize, f64>,
}

impl Sim {
    /// Softmax weights (mean over the group) of query `q` over `keys`.
    fn weights(
        s: &Seq,
        dims: Dims,
        layer: usize,
        head: usize,
        q: usize,
        keys: &[usize],
    ) -> Vec<f64> {
        let d = dims.shape.head_dim;
        let mut w = vec![0.0; keys.len()];
        for g in 0..dims.group {
            let qh = &s.q[layer][q][(head * dims.group + g) * d..][..d];
            let sc: Vec<f64> = keys
                .iter()
                .map(|&k| {
                    qh.iter()
                        .zip(&s.k[layer][k][head * d..][..d])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                        * dims.scale()
                })
                .collect();
            let m = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = sc.iter().map(|x| (x - m).exp()).sum();
            for (x, y) in w.iter_mut().zip(&sc) {
                *x += (y - m).exp() / total / dims.group as f64;
            }
        }
        w
    }

    fn protected(&self, pos: usize, seen: usize) -> bool {
        match self.kind {
            "window" => pos < self.sink,
            "h2o" => pos + self.recent >= seen,
            _ => false,
        }
    }

    /// Evict down to the budget after `seen` positions.
    fn evict(&mut self, seen: usize) {
        let keep = self.budget.allowed(seen);
        while self.held.len() > keep {
            let victim = self
                .held
                .iter()
                .filter(|(p, _)| !self.protected(**p, seen))
                .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(b.0)))
                .map(|(p, _)| *p)
                .expect("an unprotected entry");
            self.held.remove(&victim);
        }
    }

    fn score(&self, old: f64, pos: usize, w: f64) -> f64 {
        match self.kind {
            "window" => pos as f64,
            "tova" => w,
            _ => old + w,
        }
    }

    fn prefill(&mut self, s: &Seq, dims: Dims, layer: usize, head: usize, n: usize) {
        let keys: Vec<usize> = (0..n).collect();
        let mut acc = vec![0.0; n];
        for q in 0..n {
            let w = Self::weights(s, dims, layer, head, q, &keys[..=q]);
            for (a, x) in acc.iter_mut().zip(&w) {
                *a += x;
            }
            if q == n - 1 && self.kind == "tova" {
                acc = w;
            }
        }
        for (p, a) in acc.into_iter().enumerate() {
            let sc = self.score(0.0, p, a);
            self.held.insert(p, sc);
        }
        self.evict(n);
    }

    fn decode(&mut self, s: &Seq, dims: Dims, layer: usize, head: usize, t: usize) {
        self.held.insert(t, 0.0);
        if self.kind == "window" {
            self.held.insert(t, t as f64);
        } else {
            let keys: Vec<usize> = self.held.keys().copied().collect();
            let w = Self::weights(s, dims, layer, head, t, &keys);
            for (k, x) in keys.iter().zip(w) {
                let old = self.held[k];
                let sc = self.score(old, *k, x);
                self.held.insert(*k, sc);
            }
        }
        self.evict(t + 1);
    }
}

/// Window, TOVA and H2O evict exactly what a position-level f64 simulation
/// of their rule evicts, at every prefill and decode step, and reach the
/// budget.
#[test]
fn scored_policies_follow_their_rules() {
    let dims = small();
    let budget = Budget::Ratio {
        cr: 4.0,
        min_tokens: 8,
    };
    let cases = [
        ("window", CachePolicy::Window { sink: 3, budget }),
        ("tova", CachePolicy::Tova { budget }),
        ("h2o", CachePolicy::H2o { recent: 5, budget }),
    ];
    for (seed, (kind, policy)) in cases.into_iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed as u64);
        let (prompt, len) = (40, 160);
        let s = seq(&mut rng, dims, len, 0.0, false);
        let mut store = KvStore::with_policy(dims.shape, &policy, None).unwrap();
        let id = store.add_sequence();
        let mut sims: Vec<Sim> = (0..4)
            .map(|_| Sim {
                kind,
                sink: 3,
                recent: 5,
                budget,
                held: BTreeMap::new(),
            })
            .collect();
        let check = |store: &KvStore, sims: &[Sim], at: usize| {
            for (r, sim) in sims.iter().enumerate() {
                let row = RowId {
                    seq: id,
                    layer: r / 2,
                    head: r % 2,
                };
                let mut got = store.row_positions(row).unwrap();
                got.sort_unstable();
                let want: Vec<u32> = sim.held.keys().map(|&p| p as u32).collect();
                assert_eq!(got, want, "{kind}: row {r} after {at} positions");
            }
        };
        prefill(&mut store, id, &s, dims, 0, prompt, false);
        for (r, sim) in sims.iter_mut().enumerate() {
            sim.prefill(&s, dims, r / 2, r % 2, prompt);
        }
        check(&store, &sims, prompt);
        for t in prompt..len {
            decode(&mut store, &[(id, &s)], dims, false);
            for (r, sim) in sims.iter_mut().enumerate() {
                sim.decode(&s, dims, r / 2, r % 2, t);
            }
            check(&store, &sims, t + 1);
        }
        assert_eq!(
            store.stats(id).row_len,
            vec![40; 4],
            "{kind}: ceil(160 / 4)"
        );
        store.audit().unwrap();
    }
}

/// Measured compression within ±5% of the target on a 2k-token run, for
/// each training-free policy at CR 8; Quest keeps everything but reads
/// about 1/8 plus its page bounds.
#[test]
fn training_free_policies_reach_the_target_ratio() {
    let dims = Dims {
        shape: KvShape {
            layers: 1,
            kv_heads: 2,
            head_dim: 8,
        },
        group: 2,
    };
    let budget = Budget::Ratio {
        cr: 8.0,
        min_tokens: 16,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (prompt, len) = (64, 2048);
    let s = seq(&mut rng, dims, len, 0.0, false);
    for policy in [
        CachePolicy::Window { sink: 4, budget },
        CachePolicy::Tova { budget },
        CachePolicy::H2o { recent: 16, budget },
        CachePolicy::Quest {
            page_size: 16,
            budget,
        },
    ] {
        let mut store = KvStore::with_policy(dims.shape, &policy, None).unwrap();
        let (id, _) = run_one(&mut store, &s, dims, prompt, len, false);
        let st = store.stats(id);
        let cr = st.compression_ratio();
        let dense_reads: u64 = (prompt as u64 + 1..=len as u64).sum::<u64>() * 2;
        let read_cr = dense_reads as f64 / st.decode_reads as f64;
        println!(
            "{}: memory CR {cr:.3}, read CR {read_cr:.3}",
            policy.method()
        );
        if let CachePolicy::Quest { .. } = policy {
            assert_eq!(cr, 1.0);
            // Per step: ≈ t/8 entries (whole pages) + t/16 page bounds.
            assert!((read_cr - 8.0 / 1.5).abs() < 0.5, "quest read CR {read_cr}");
        } else {
            assert!((cr - 8.0).abs() <= 0.4, "{}: CR {cr}", policy.method());
            assert!(read_cr > 7.0, "{}: read CR {read_cr}", policy.method());
        }
    }
}

/// With CR 1 every training-free policy is dense: same outputs, nothing
/// evicted, the same reads.
#[test]
fn cr_one_equals_dense() {
    let dims = small();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let s = seq(&mut rng, dims, 120, 0.0, false);
    let mut dense = KvStore::with_policy(dims.shape, &CachePolicy::Dense {}, None).unwrap();
    let (id, want) = run_one(&mut dense, &s, dims, 70, 120, false);
    let budget = Budget::Ratio {
        cr: 1.0,
        min_tokens: 4,
    };
    for policy in [
        CachePolicy::Window { sink: 4, budget },
        CachePolicy::Tova { budget },
        CachePolicy::H2o { recent: 4, budget },
        CachePolicy::Quest {
            page_size: 8,
            budget,
        },
    ] {
        let mut store = KvStore::with_policy(dims.shape, &policy, None).unwrap();
        let (ia, got) = run_one(&mut store, &s, dims, 70, 120, false);
        assert_close(&got, &want, 1e-6, policy.method());
        let (a, b) = (store.stats(ia), dense.stats(id));
        assert_eq!(a.row_len, vec![120; 4], "{}", policy.method());
        assert_eq!(
            (a.decode_reads, a.prefill_reads),
            (b.decode_reads, b.prefill_reads)
        );
    }
}

/// Dense through the policy entry points: reads follow Σ_t (P + t) ·
/// layers · kv_heads exactly; W forks of a DMS prompt hold it once.
#[test]
fn accounting_closed_forms_and_shared_prefix() {
    let dims = small();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let (p, n) = (300usize, 17usize);
    // Mostly kept: the prompt's survivors fill whole blocks the forks share
    // (a fork's writes copy only the blocks they touch).
    let s = seq(&mut rng, dims, p + n, 0.2, false);
    let mut store = KvStore::with_policy(dims.shape, &CachePolicy::Dense {}, None).unwrap();
    let (id, _) = run_one(&mut store, &s, dims, p, p + n, false);
    let st = store.stats(id);
    let rows = 4u64;
    let want_reads: u64 = (1..=n as u64).map(|t| (p as u64 + t) * rows).sum();
    assert_eq!(st.decode_reads, want_reads);
    assert_eq!(st.prefill_reads, rows * (p * (p + 1) / 2) as u64);

    let dms = CachePolicy::Dms {
        window: Some(8),
        shifted: Some(true),
    };
    let mut store = KvStore::with_policy(dims.shape, &dms, Some(MODEL_DMS)).unwrap();
    let parent = store.add_sequence();
    prefill(&mut store, parent, &s, dims, 0, p, true);
    let prompt_entries = store.stats(parent).resident;
    let w = 4;
    let kids = store.fork(parent, w);
    store.release(parent);
    for _ in 0..n {
        let batch: Vec<(SeqId, &Seq)> = kids.iter().map(|&k| (k, &s)).collect();
        decode(&mut store, &batch, dims, true);
    }
    let per_sample: u64 = kids.iter().map(|&k| store.stats(k).peak_resident).sum();
    let peak = store.peak_resident();
    println!("dms W={w}: store peak {peak}, Σ sample peaks {per_sample}, prompt {prompt_entries}");
    assert!(peak + (w as u64 - 1) * prompt_entries / 2 <= per_sample);
    store.audit().unwrap();
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    fn any_policy() -> impl Strategy<Value = CachePolicy> {
        let budget =
            (1.0f64..6.0, 4usize..12).prop_map(|(cr, min_tokens)| Budget::Ratio { cr, min_tokens });
        prop_oneof![
            Just(CachePolicy::Dense {}),
            (1usize..20, any::<bool>()).prop_map(|(w, sh)| CachePolicy::Dms {
                window: Some(w),
                shifted: Some(sh)
            }),
            budget
                .clone()
                .prop_map(|b| CachePolicy::Window { sink: 2, budget: b }),
            budget.clone().prop_map(|b| CachePolicy::Tova { budget: b }),
            budget.clone().prop_map(|b| CachePolicy::H2o {
                recent: 3,
                budget: b
            }),
            budget.prop_map(|b| CachePolicy::Quest {
                page_size: 4,
                budget: b
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Lengths ≤ positions seen, the budget held, positions distinct and
        /// below the position seen, the ledger's audit clean, forks included.
        #[test]
        fn store_invariants_hold_under_eviction(
            policy in any_policy(),
            seed in 0u64..1000,
            chunks in proptest::collection::vec(1usize..30, 1..4),
            steps in 0usize..40,
            forks in 1usize..3,
        ) {
            let dims = small();
            let dms = matches!(policy, CachePolicy::Dms { .. });
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let prompt: usize = chunks.iter().sum();
            let s = seq(&mut rng, dims, prompt + steps, 0.7, false);
            let mut store = KvStore::with_policy(dims.shape, &policy, Some(MODEL_DMS)).unwrap();
            let parent = store.add_sequence();
            let mut a = 0;
            for c in &chunks {
                prefill(&mut store, parent, &s, dims, a, a + c, dms);
                a += c;
            }
            let kids = store.fork(parent, forks);
            store.release(parent);
            for _ in 0..steps {
                let batch: Vec<(SeqId, &Seq)> = kids.iter().map(|&k| (k, &s)).collect();
                decode(&mut store, &batch, dims, dms);
                prop_assert!(store.audit().is_ok(), "{:?}", store.audit());
            }
            let resolved = policy.resolve(Some(MODEL_DMS)).unwrap();
            for &k in &kids {
                let seen = store.position(k);
                for layer in 0..2 {
                    for head in 0..2 {
                        let mut pos = store.row_positions(RowId { seq: k, layer, head }).unwrap();
                        prop_assert!(pos.len() <= seen);
                        pos.sort_unstable();
                        prop_assert!(pos.windows(2).all(|w| w[0] < w[1]));
                        prop_assert!(pos.last().is_none_or(|&p| (p as usize) < seen));
                        if let Some(b) = resolved.budget()
                            && resolved.method() != "quest"
                        {
                            prop_assert_eq!(pos.len(), b.allowed(seen));
                        }
                    }
                }
            }
        }
    }
}
