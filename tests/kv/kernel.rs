//! The paged decode kernel against the naive oracle: ragged rows (empty,
//! length 1, across several block boundaries), GQA groups, block sizes from
//! 1 up, rows of one span and of many (split-K), and the Flex tensor path.

use burn::backend::flex::Flex;
use burn::prelude::*;
use hyperscale::kv::cpu_kernel::{PagedKv, RowRef, decode_attention, decode_attention_weights};
use hyperscale::kv::reference::attend_row;
use hyperscale::kv::{AttentionBackend, KvShape, KvStore, RowId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f32 = 1e-5;

fn random(rng: &mut ChaCha8Rng, n: usize, amp: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

/// Rows scattered over a pool in shuffled block order; returns the pool,
/// each row's block table and its contiguous copy for the oracle.
struct Scattered {
    keys: Vec<f32>,
    values: Vec<f32>,
    tables: Vec<Vec<u32>>,
    contiguous: Vec<(Vec<f32>, Vec<f32>)>,
}

fn scatter(rng: &mut ChaCha8Rng, lens: &[usize], bs: usize, d: usize) -> Scattered {
    let blocks: usize = lens.iter().map(|l| l.div_ceil(bs)).sum::<usize>() + 3;
    let mut order: Vec<u32> = (0..blocks as u32).collect();
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let mut keys = random(rng, blocks * bs * d, 3.0);
    let mut values = random(rng, blocks * bs * d, 1.0);
    let mut next = order.into_iter();
    let mut tables = Vec::new();
    let mut contiguous = Vec::new();
    for &len in lens {
        let table: Vec<u32> = (0..len.div_ceil(bs))
            .map(|_| next.next().unwrap())
            .collect();
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for s in 0..len {
            let at = (table[s / bs] as usize * bs + s % bs) * d;
            k.extend_from_slice(&keys[at..at + d]);
            v.extend_from_slice(&values[at..at + d]);
        }
        tables.push(table);
        contiguous.push((k, v));
    }
    // Poison the slots no row uses: a kernel reading past a row shows.
    let used: std::collections::HashSet<usize> = tables
        .iter()
        .zip(lens)
        .flat_map(|(t, &len)| (0..len).map(move |s| t[s / bs] as usize * bs + s % bs))
        .collect();
    for slot in 0..blocks * bs {
        if !used.contains(&slot) {
            keys[slot * d..(slot + 1) * d].fill(1e3);
            values[slot * d..(slot + 1) * d].fill(f32::NAN);
        }
    }
    Scattered {
        keys,
        values,
        tables,
        contiguous,
    }
}

fn check_case(seed: u64, lens: &[usize], bs: usize, d: usize, group: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = scatter(&mut rng, lens, bs, d);
    let q = random(&mut rng, lens.len() * group * d, 1.0);
    let scale = 1.0 / (d as f32).sqrt();
    let rows: Vec<RowRef> = s
        .tables
        .iter()
        .zip(lens)
        .map(|(t, &len)| RowRef { blocks: t, len })
        .collect();
    let kv = PagedKv {
        keys: &s.keys,
        values: &s.values,
        block_size: bs,
        head_dim: d,
    };
    let mut out = vec![f32::NAN; q.len()];
    decode_attention(kv, &rows, &q, group, scale, &mut out);
    let total: usize = lens.iter().sum();
    let mut weights = vec![f32::NAN; total];
    let mut out_w = vec![f32::NAN; q.len()];
    decode_attention_weights(kv, &rows, &q, group, scale, &mut out_w, &mut weights);
    let mut at_w = 0;
    for (r, (k, _)) in s.contiguous.iter().enumerate() {
        // Oracle weights: exact softmax per query head, averaged over the group.
        let mut want_w = vec![0.0f64; lens[r]];
        for g in 0..group {
            let qv = &q[(r * group + g) * d..(r * group + g + 1) * d];
            let sc: Vec<f64> = k
                .chunks_exact(d)
                .map(|kk| {
                    qv.iter()
                        .zip(kk)
                        .map(|(a, b)| f64::from(a * b))
                        .sum::<f64>()
                        * f64::from(scale)
                })
                .collect();
            let m = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = sc.iter().map(|x| (x - m).exp()).sum();
            for (w, x) in want_w.iter_mut().zip(&sc) {
                *w += (x - m).exp() / z / group as f64;
            }
        }
        for (j, w) in want_w.iter().enumerate() {
            let got = weights[at_w + j];
            assert!(
                (f64::from(got) - w).abs() <= 1e-6,
                "seed {seed} row {r} entry {j}: weight {got} vs {w}"
            );
        }
        at_w += lens[r];
    }
    for (a, b) in out_w.iter().zip(&out) {
        assert!((a - b).abs() <= TOL, "weights path output {a} vs {b}");
    }
    let mut want = vec![0.0f32; d];
    let mut worst = 0.0f32;
    for (r, (k, v)) in s.contiguous.iter().enumerate() {
        for g in 0..group {
            let at = (r * group + g) * d;
            attend_row(&q[at..at + d], k, v, d, scale, &mut want);
            for (i, (a, b)) in out[at..at + d].iter().zip(&want).enumerate() {
                worst = worst.max((a - b).abs());
                assert!(
                    (a - b).abs() <= TOL,
                    "seed {seed} bs {bs} d {d} G {group} row {r} (len {}) head {g} dim {i}: {a} vs {b}",
                    lens[r]
                );
            }
        }
    }
    eprintln!("seed {seed}: worst |paged - oracle| = {worst:e}");
}

#[test]
fn ragged_rows_match_the_oracle() {
    let lens = [0, 1, 2, 31, 32, 33, 95, 200, 1];
    for (i, &(bs, d, group)) in [
        (1, 8, 1),
        (3, 16, 2),
        (16, 64, 3),
        (32, 64, 4),
        (32, 128, 7),
        (7, 13, 3),
    ]
    .iter()
    .enumerate()
    {
        check_case(i as u64, &lens, bs, d, group);
    }
}

#[test]
fn long_rows_split_into_spans_match_the_oracle() {
    // Rows longer than a span: the kernel splits them into spans (each a
    // work item) and merges them.
    check_case(11, &[5000], 32, 64, 3);
    check_case(12, &[3000, 0, 4097], 16, 64, 3);
    check_case(13, &[1, 2000], 5, 32, 2);
}

#[test]
fn many_rows_match_the_oracle() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let lens: Vec<usize> = (0..48).map(|_| rng.random_range(0..300)).collect();
    check_case(14, &lens, 32, 64, 3);
}

/// Forks of one prompt share its blocks: rows that start with the same
/// block (interleaved with rows that do not, as `[batch, kv_heads]` rows
/// are) run one after another in the kernel. Each row's output still
/// matches the oracle, and is the same bits in any order of the rows.
#[test]
fn rows_sharing_a_prefix_match_the_oracle_in_any_order() {
    let (bs, d, group) = (16, 64, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    // Three prefixes of 5 blocks (forked prompts of three KV heads), each
    // shared by 8 rows whose own tails differ: 24 rows, rows `3b + h`.
    let (prefix, heads, forks) = (5, 3, 8);
    let mut tables = Vec::new();
    let mut next = heads * prefix;
    for _ in 0..forks {
        for h in 0..heads {
            let mut t: Vec<u32> = (h * prefix..(h + 1) * prefix).map(|b| b as u32).collect();
            let tail = rng.random_range(0..3);
            t.extend((next..next + tail).map(|b| b as u32));
            next += tail;
            tables.push(t);
        }
    }
    let lens: Vec<usize> = tables
        .iter()
        .map(|t| (t.len() - 1) * bs + rng.random_range(1..=bs))
        .collect();
    let keys = random(&mut rng, next * bs * d, 3.0);
    let values = random(&mut rng, next * bs * d, 1.0);
    let q = random(&mut rng, tables.len() * group * d, 1.0);
    let scale = 1.0 / (d as f32).sqrt();
    let kv = PagedKv {
        keys: &keys,
        values: &values,
        block_size: bs,
        head_dim: d,
    };
    let run = |order: &[usize]| {
        let rows: Vec<RowRef> = order
            .iter()
            .map(|&r| RowRef {
                blocks: &tables[r],
                len: lens[r],
            })
            .collect();
        let qs: Vec<f32> = order
            .iter()
            .flat_map(|&r| q[r * group * d..(r + 1) * group * d].iter().copied())
            .collect();
        let mut out = vec![f32::NAN; qs.len()];
        decode_attention(kv, &rows, &qs, group, scale, &mut out);
        out
    };
    let forward: Vec<usize> = (0..tables.len()).collect();
    let out = run(&forward);
    let mut want = vec![0.0f32; d];
    for (r, t) in tables.iter().enumerate() {
        let slot = |s: usize| (t[s / bs] as usize * bs + s % bs) * d;
        let k: Vec<f32> = (0..lens[r])
            .flat_map(|s| keys[slot(s)..slot(s) + d].to_vec())
            .collect();
        let v: Vec<f32> = (0..lens[r])
            .flat_map(|s| values[slot(s)..slot(s) + d].to_vec())
            .collect();
        for g in 0..group {
            let at = (r * group + g) * d;
            attend_row(&q[at..at + d], &k, &v, d, scale, &mut want);
            for (a, b) in out[at..at + d].iter().zip(&want) {
                assert!((a - b).abs() <= TOL, "row {r} head {g}: {a} vs {b}");
            }
        }
    }
    // The rows reversed: each row's output the same bits.
    let reversed: Vec<usize> = forward.iter().rev().copied().collect();
    let back = run(&reversed);
    let per_row = group * d;
    for (i, &r) in reversed.iter().enumerate() {
        let (got, want) = (
            &back[i * per_row..(i + 1) * per_row],
            &out[r * per_row..(r + 1) * per_row],
        );
        assert!(
            got.iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "row {r} differs when the rows are reversed"
        );
    }
}

#[test]
fn extreme_scores_stay_finite() {
    // Large logits: only a max-subtracted softmax survives.
    let d = 16;
    let mut store = KvStore::new(KvShape {
        layers: 1,
        kv_heads: 1,
        head_dim: d,
    });
    let seq = store.add_sequence();
    let row = RowId {
        seq,
        layer: 0,
        head: 0,
    };
    for t in 0..40 {
        let k = vec![60.0 + t as f32; d];
        let v: Vec<f32> = (0..d).map(|i| (i + t) as f32).collect();
        store.append(row, &k, &v, t as u32).unwrap();
    }
    let q = vec![60.0f32; d];
    let mut out = vec![0.0; d];
    store.attend(0, &[seq], &q, 1.0, &mut out).unwrap();
    let (k, v) = store.read_row(row).unwrap();
    let mut want = vec![0.0; d];
    attend_row(&q, &k, &v, d, 1.0, &mut want);
    assert!(out.iter().all(|x| x.is_finite()));
    for (a, b) in out.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn flex_backend_matches_the_slice_path() {
    let shape = KvShape {
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
    };
    let (n_heads, t, batch) = (6, 45, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let device = Default::default();
    let mut a = KvStore::with_block_size(shape, 8).unwrap();
    let mut b = KvStore::with_block_size(shape, 8).unwrap();
    let (pa, pb) = (a.add_sequence(), b.add_sequence());
    for layer in 0..shape.layers {
        let k = random(&mut rng, shape.kv_heads * t * shape.head_dim, 1.0);
        let v = random(&mut rng, k.len(), 1.0);
        let kt = Tensor::<Flex, 3>::from_data(
            TensorData::new(k.clone(), [shape.kv_heads, t, shape.head_dim]),
            &device,
        );
        let vt = Tensor::<Flex, 3>::from_data(
            TensorData::new(v.clone(), [shape.kv_heads, t, shape.head_dim]),
            &device,
        );
        Flex::prefill_write(&mut a, layer, pa, kt, vt);
        b.append_prefill(pb, layer, &k, &v);
    }
    a.advance(pa, t);
    b.advance(pb, t);
    let sa = a.fork(pa, batch);
    let sb = b.fork(pb, batch);
    for _step in 0..4 {
        for layer in 0..shape.layers {
            let q = random(&mut rng, batch * n_heads * shape.head_dim, 1.0);
            let k = random(&mut rng, batch * shape.kv_heads * shape.head_dim, 1.0);
            let v = random(&mut rng, k.len(), 1.0);
            let tensor = |x: &[f32], h| {
                Tensor::<Flex, 3>::from_data(
                    TensorData::new(x.to_vec(), [batch, h, shape.head_dim]),
                    &device,
                )
            };
            // A transposed view exercises the non-contiguous path.
            let qt = tensor(&q, n_heads).swap_dims(0, 1).swap_dims(0, 1);
            let out = Flex::decode_attention(
                &mut a,
                layer,
                &sa,
                qt,
                tensor(&k, shape.kv_heads),
                tensor(&v, shape.kv_heads),
                0.25,
            );
            let got = out.into_data().into_vec::<f32>().unwrap();
            let mut want = vec![0.0; q.len()];
            b.decode_attend(layer, &sb, &q, &k, &v, 0.25, &mut want);
            assert_eq!(got, want);
        }
        for (&x, &y) in sa.iter().zip(&sb) {
            a.advance(x, 1);
            b.advance(y, 1);
        }
    }
    assert_eq!(a.stats(sa[0]), b.stats(sb[0]));
}

#[test]
fn decode_step_weights_cover_every_row_in_order() {
    use hyperscale::kv::DecodeStep;
    let shape = KvShape {
        layers: 1,
        kv_heads: 2,
        head_dim: 8,
    };
    let mut store = KvStore::with_block_size(shape, 4).unwrap();
    let a = store.add_sequence();
    let b = store.add_sequence();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (seq, t) in [(a, 5), (b, 11)] {
        let k = random(&mut rng, 2 * t * 8, 1.0);
        store.append_prefill(seq, 0, &k, &k);
        store.advance(seq, t);
    }
    let q = random(&mut rng, 2 * 2 * 2 * 8, 1.0);
    let k = random(&mut rng, 2 * 2 * 8, 1.0);
    let mut out = vec![0.0; q.len()];
    let mut w = Vec::new();
    let step = DecodeStep {
        layer: 0,
        seqs: &[a, b],
        q: &q,
        k: &k,
        v: &k,
        scale: 0.3,
        slots: &[],
    };
    store.decode_step_weights(step, &mut out, &mut w).unwrap();
    assert_eq!(w.len(), 6 + 6 + 12 + 12);
    let mut at = 0;
    for len in [6, 6, 12, 12] {
        let sum: f32 = w[at..at + len].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row weights sum to {sum}");
        at += len;
    }
}
