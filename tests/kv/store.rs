//! Store invariants under random operation sequences (proptest against a
//! plain model of every row), and the accounting in closed form.

use std::collections::BTreeMap;

use hyperscale::kv::reference::attend_row;
use hyperscale::kv::{DecodeStep, KvError, KvShape, KvStore, RowId, SeqId, SlotChoice};
use proptest::prelude::*;

const SHAPE: KvShape = KvShape {
    layers: 2,
    kv_heads: 2,
    head_dim: 4,
};
const GROUP: usize = 2;

/// The entry with id `id`: a deterministic pseudo-random key and value.
fn entry(id: u32) -> (Vec<f32>, Vec<f32>) {
    let d = SHAPE.head_dim;
    let k = (0..d)
        .map(|i| ((id as f32) * 0.731 + i as f32).sin())
        .collect();
    let v = (0..d)
        .map(|i| ((id as f32) * 1.37 - i as f32).cos())
        .collect();
    (k, v)
}

/// One row of the model: (entry id, position) in slot order, and the last
/// position ever written (evicted entries included).
#[derive(Default, Clone)]
struct RowModel {
    entries: Vec<(u32, u32)>,
    last: Option<u32>,
}

impl RowModel {
    fn next_pos(&self, gap: u32) -> u32 {
        self.last.map_or(gap, |p| p + 1 + gap)
    }
}

/// What every sequence's rows should hold, and its position.
#[derive(Default, Clone)]
struct Model {
    seqs: BTreeMap<u32, (SeqId, Vec<RowModel>, u64)>,
    next_id: u32,
}

impl Model {
    fn rows(&self, key: u32) -> &Vec<RowModel> {
        &self.seqs[&key].1
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add,
    Fork {
        parent: usize,
        n: usize,
    },
    Release {
        seq: usize,
    },
    Append {
        seq: usize,
        row: usize,
        gap: u32,
    },
    Write {
        seq: usize,
        row: usize,
        slot: usize,
        gap: u32,
    },
    Evict {
        seq: usize,
        row: usize,
        slot: usize,
    },
    Truncate {
        seq: usize,
        row: usize,
        keep: usize,
    },
    Decode {
        seq_mask: u8,
        reuse_mask: u8,
        slot: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let rows = SHAPE.layers * SHAPE.kv_heads;
    prop_oneof![
        1 => Just(Op::Add),
        2 => (0..8usize, 1..3usize).prop_map(|(parent, n)| Op::Fork { parent, n }),
        1 => (0..8usize).prop_map(|seq| Op::Release { seq }),
        8 => (0..8usize, 0..rows, 0..3u32).prop_map(|(seq, row, gap)| Op::Append { seq, row, gap }),
        3 => (0..8usize, 0..rows, 0..80usize, 0..3u32)
            .prop_map(|(seq, row, slot, gap)| Op::Write { seq, row, slot, gap }),
        3 => (0..8usize, 0..rows, 0..80usize).prop_map(|(seq, row, slot)| Op::Evict { seq, row, slot }),
        1 => (0..8usize, 0..rows, 0..80usize).prop_map(|(seq, row, keep)| Op::Truncate { seq, row, keep }),
        3 => (any::<u8>(), any::<u8>(), 0..80usize)
            .prop_map(|(seq_mask, reuse_mask, slot)| Op::Decode { seq_mask, reuse_mask, slot }),
    ]
}

fn row_id(seq: SeqId, r: usize) -> RowId {
    RowId {
        seq,
        layer: r / SHAPE.kv_heads,
        head: r % SHAPE.kv_heads,
    }
}

/// Apply one op to store and model; the store must agree with the model on
/// whether it is legal.
fn apply(store: &mut KvStore, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let keys: Vec<u32> = m.seqs.keys().copied().collect();
    let pick = |i: usize| (!keys.is_empty()).then(|| keys[i % keys.len()]);
    match *op {
        Op::Add => {
            let id = store.add_sequence();
            let rows = vec![RowModel::default(); SHAPE.layers * SHAPE.kv_heads];
            m.seqs.insert(id_key(id), (id, rows, 0));
        }
        Op::Fork { parent, n } => {
            let Some(p) = pick(parent) else { return Ok(()) };
            let (pid, rows, pos) = m.seqs[&p].clone();
            for c in store.fork(pid, n) {
                m.seqs.insert(id_key(c), (c, rows.clone(), pos));
            }
        }
        Op::Release { seq } => {
            let Some(s) = pick(seq) else { return Ok(()) };
            store.release(m.seqs[&s].0);
            m.seqs.remove(&s);
        }
        Op::Append { seq, row, gap } => {
            let Some(s) = pick(seq) else { return Ok(()) };
            let sid = m.seqs[&s].0;
            let rows = &mut m.seqs.get_mut(&s).unwrap().1;
            let pos = rows[row].next_pos(gap);
            let id = m.next_id;
            m.next_id += 1;
            let (k, v) = entry(id);
            let slot = store.append(row_id(sid, row), &k, &v, pos).unwrap();
            prop_assert_eq!(slot, rows[row].entries.len());
            rows[row].entries.push((id, pos));
            rows[row].last = Some(pos);
        }
        Op::Write {
            seq,
            row,
            slot,
            gap,
        } => {
            let Some(s) = pick(seq) else { return Ok(()) };
            let sid = m.seqs[&s].0;
            let rows = &mut m.seqs.get_mut(&s).unwrap().1;
            let pos = rows[row].next_pos(gap);
            let id = m.next_id;
            m.next_id += 1;
            let (k, v) = entry(id);
            let got = store.write_slot(row_id(sid, row), slot, &k, &v, pos);
            if slot < rows[row].entries.len() {
                prop_assert!(got.is_ok());
                rows[row].entries[slot] = (id, pos);
                rows[row].last = Some(pos);
            } else {
                let is_range_error = matches!(got, Err(KvError::SlotOutOfRange { .. }));
                prop_assert!(is_range_error);
            }
        }
        Op::Evict { seq, row, slot } => {
            let Some(s) = pick(seq) else { return Ok(()) };
            let sid = m.seqs[&s].0;
            let rows = &mut m.seqs.get_mut(&s).unwrap().1;
            let got = store.evict(row_id(sid, row), slot);
            if slot < rows[row].entries.len() {
                let last = rows[row].entries.len() - 1;
                rows[row].entries.swap_remove(slot);
                prop_assert_eq!(got, Ok((slot != last).then_some(last)));
            } else {
                prop_assert!(got.is_err());
            }
        }
        Op::Truncate { seq, row, keep } => {
            let Some(s) = pick(seq) else { return Ok(()) };
            let sid = m.seqs[&s].0;
            let rows = &mut m.seqs.get_mut(&s).unwrap().1;
            let keep = keep % (rows[row].entries.len() + 1);
            store.truncate(row_id(sid, row), keep).unwrap();
            rows[row].entries.truncate(keep);
        }
        Op::Decode {
            seq_mask,
            reuse_mask,
            slot,
        } => decode(store, m, seq_mask, reuse_mask, slot)?,
    }
    Ok(())
}

fn id_key(s: SeqId) -> u32 {
    // SeqIds are handed out in order; their debug form is the only view.
    format!("{s:?}")
        .trim_start_matches("SeqId(")
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// A decode step over every layer for a subset of sequences, some rows
/// reusing a slot; outputs checked against the oracle on the model's rows.
fn decode(
    store: &mut KvStore,
    m: &mut Model,
    seq_mask: u8,
    reuse_mask: u8,
    slot: usize,
) -> Result<(), TestCaseError> {
    let (kvh, d) = (SHAPE.kv_heads, SHAPE.head_dim);
    let keys: Vec<u32> = m
        .seqs
        .keys()
        .copied()
        .enumerate()
        .filter(|(i, _)| seq_mask & (1 << (i % 8)) != 0)
        .map(|(_, k)| k)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    // Bring each sequence's position past every row's last position.
    for k in &keys {
        let (sid, rows, pos) = m.seqs.get_mut(k).unwrap();
        let need = rows
            .iter()
            .filter_map(|r| r.last)
            .max()
            .map_or(0, |p| u64::from(p) + 1);
        if need > *pos {
            store.advance(*sid, (need - *pos) as usize);
            *pos = need;
        }
        prop_assert_eq!(store.position(*sid) as u64, *pos);
    }
    let seqs: Vec<SeqId> = keys.iter().map(|k| m.seqs[k].0).collect();
    for layer in 0..SHAPE.layers {
        let mut slots = Vec::new();
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for (b, key) in keys.iter().enumerate() {
            let (_, rows, pos) = m.seqs.get_mut(key).unwrap();
            for h in 0..kvh {
                let row = &mut rows[layer * kvh + h];
                let id = m.next_id;
                m.next_id += 1;
                let (ek, ev) = entry(id);
                k.extend(ek);
                v.extend(ev);
                if reuse_mask & (1 << ((b * kvh + h) % 8)) != 0 && !row.entries.is_empty() {
                    let s = slot % row.entries.len();
                    slots.push(SlotChoice::Reuse(s));
                    row.entries[s] = (id, *pos as u32);
                } else {
                    slots.push(SlotChoice::Append);
                    row.entries.push((id, *pos as u32));
                }
                row.last = Some(*pos as u32);
            }
        }
        let q: Vec<f32> = (0..seqs.len() * kvh * GROUP * d)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let mut out = vec![0.0; q.len()];
        let step = DecodeStep {
            layer,
            seqs: &seqs,
            q: &q,
            k: &k,
            v: &v,
            scale: 0.5,
            slots: &slots,
        };
        store.decode_step(step, &mut out).unwrap();
        for (b, key) in keys.iter().enumerate() {
            for h in 0..kvh {
                let row = &m.rows(*key)[layer * kvh + h];
                let (mut rk, mut rv) = (Vec::new(), Vec::new());
                for &(id, _) in &row.entries {
                    let (ek, ev) = entry(id);
                    rk.extend(ek);
                    rv.extend(ev);
                }
                for g in 0..GROUP {
                    let at = ((b * kvh + h) * GROUP + g) * d;
                    let mut want = vec![0.0; d];
                    attend_row(&q[at..at + d], &rk, &rv, d, 0.5, &mut want);
                    for (a, w) in out[at..at + d].iter().zip(&want) {
                        prop_assert!((a - w).abs() <= 1e-5, "{} vs {}", a, w);
                    }
                }
            }
        }
    }
    for (k, sid) in keys.iter().zip(&seqs) {
        store.advance(*sid, 1);
        m.seqs.get_mut(k).unwrap().2 += 1;
    }
    Ok(())
}

/// The store agrees with the model row by row, and its books balance.
fn check(store: &KvStore, m: &Model, last_peak: &mut u64) -> Result<(), TestCaseError> {
    if let Err(e) = store.audit() {
        return Err(TestCaseError::fail(e.to_string()));
    }
    let mut sum_resident = 0u64;
    for (sid, rows, _) in m.seqs.values() {
        for (r, want) in rows.iter().enumerate() {
            let id = row_id(*sid, r);
            let (k, v) = store.read_row(id).unwrap();
            let (mut wk, mut wv) = (Vec::new(), Vec::new());
            for &(e, _) in &want.entries {
                let (ek, ev) = entry(e);
                wk.extend(ek);
                wv.extend(ev);
            }
            prop_assert_eq!(k, wk, "keys of {:?}", id);
            prop_assert_eq!(v, wv, "values of {:?}", id);
            let pos: Vec<u32> = want.entries.iter().map(|e| e.1).collect();
            prop_assert_eq!(store.row_positions(id).unwrap(), pos);
        }
        let stats = store.stats(*sid);
        let lens: u64 = rows.iter().map(|r| r.entries.len() as u64).sum();
        prop_assert_eq!(stats.resident, lens);
        prop_assert!(stats.peak_resident >= stats.resident);
        for (rs, row) in store.row_stats(*sid).iter().zip(rows) {
            prop_assert_eq!(rs.len, row.entries.len() as u64);
            prop_assert!(rs.len <= rs.seen, "lengths ≤ entries seen");
        }
        sum_resident += lens;
    }
    let st = store.store_stats();
    prop_assert!(st.resident <= sum_resident.max(st.resident) && st.resident <= st.peak_resident);
    prop_assert!(st.peak_resident >= *last_peak, "peak never decreases");
    *last_peak = st.peak_resident;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model_under_random_ops(
        bs in 1usize..6,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut store = KvStore::with_block_size(SHAPE, bs).unwrap();
        let mut m = Model::default();
        let mut peak = 0;
        apply(&mut store, &mut m, &Op::Add)?;
        for op in &ops {
            apply(&mut store, &mut m, op)?;
            check(&store, &m, &mut peak)?;
        }
        // Releasing everything frees every block.
        for (sid, _, _) in m.seqs.values() {
            store.release(*sid);
        }
        prop_assert_eq!(store.store_stats().resident, 0);
        prop_assert_eq!(store.store_stats().blocks, 0);
        prop_assert!(store.audit().is_ok());
    }
}

#[test]
fn positions_must_increase_per_row() {
    let mut store = KvStore::new(SHAPE);
    let seq = store.add_sequence();
    let row = row_id(seq, 0);
    let (k, v) = entry(0);
    store.append(row, &k, &v, 5).unwrap();
    let err = store.append(row, &k, &v, 5).unwrap_err();
    assert!(matches!(
        err,
        KvError::PositionNotIncreasing {
            pos: 5,
            last: 5,
            ..
        }
    ));
    assert!(store.write_slot(row, 0, &k, &v, 4).is_err());
    assert_eq!(store.row_positions(row).unwrap(), vec![5]);
}

/// Prefill a prompt of `p` tokens, fork `w` samples, release the parent and
/// decode `n` steps; returns the store and the samples.
fn dense_run(p: usize, w: usize, n: usize, bs: usize) -> (KvStore, Vec<SeqId>) {
    let shape = KvShape {
        layers: 3,
        kv_heads: 2,
        head_dim: 8,
    };
    let d = shape.head_dim;
    let mut store = KvStore::with_block_size(shape, bs).unwrap();
    let parent = store.add_sequence();
    for layer in 0..shape.layers {
        let k: Vec<f32> = (0..shape.kv_heads * p * d)
            .map(|i| (i as f32).sin())
            .collect();
        store.append_prefill(parent, layer, &k, &k);
    }
    store.advance(parent, p);
    let seqs = store.fork(parent, w);
    store.release(parent);
    let n_heads = shape.kv_heads * 3;
    for t in 0..n {
        for layer in 0..shape.layers {
            let q: Vec<f32> = (0..w * n_heads * d)
                .map(|i| ((i + t) as f32).cos())
                .collect();
            let k: Vec<f32> = (0..w * shape.kv_heads * d)
                .map(|i| ((i * t) as f32).sin())
                .collect();
            let mut out = vec![0.0; q.len()];
            store.decode_attend(layer, &seqs, &q, &k, &k, 0.3, &mut out);
        }
        for &s in &seqs {
            store.advance(s, 1);
        }
    }
    (store, seqs)
}

#[test]
fn dense_decode_reads_follow_the_closed_form() {
    let (p, w, n, bs) = (37, 4, 9, 8);
    let (layers, kv_heads) = (3u64, 2u64);
    let (store, seqs) = dense_run(p, w, n, bs);
    let per_seq: u64 = (1..=n as u64)
        .map(|t| (p as u64 + t) * layers * kv_heads)
        .sum();
    let prefill = layers * kv_heads * (p as u64 * (p as u64 + 1) / 2);
    for &s in &seqs {
        let st = store.stats(s);
        assert_eq!(st.decode_reads, per_seq);
        assert_eq!(st.prefill_reads, prefill);
        assert_eq!(st.positions, (p + n) as u64);
        assert_eq!(st.resident, (p + n) as u64 * layers * kv_heads);
        assert_eq!(st.peak_resident, st.resident);
        for rs in store.row_stats(s) {
            assert_eq!((rs.len, rs.seen), ((p + n) as u64, (p + n) as u64));
            assert_eq!(rs.compression_ratio(), 1.0);
        }
    }
    assert_eq!(store.store_stats().decode_reads, w as u64 * per_seq);
}

#[test]
fn forked_samples_hold_the_prompt_once() {
    let (layers, kv_heads) = (3u64, 2u64);
    let (w, n) = (5u64, 11u64);
    // Prompt in whole blocks: the prefix is held exactly once.
    let (store, _) = dense_run(64, w as usize, n as usize, 16);
    let want = (64 + w * n) * layers * kv_heads;
    assert_eq!(store.peak_resident(), want);
    assert_eq!(store.store_stats().resident, want);
    // A partial last block is copied by each sample's first write but the
    // last one (which owns it by then): w - 1 copies of 64 % 24 = 16 entries.
    let (store, _) = dense_run(64, w as usize, n as usize, 24);
    let want = (64 + (w - 1) * 16 + w * n) * layers * kv_heads;
    assert_eq!(store.peak_resident(), want);
    assert_eq!(store.store_stats().cow_copies, (w - 1) * layers * kv_heads);
    // Versus W private copies of the prompt.
    assert!(store.peak_resident() < w * 64 * layers * kv_heads);
}

#[test]
fn released_blocks_are_reused() {
    let (mut store, seqs) = dense_run(40, 3, 2, 8);
    let blocks = store.store_stats().blocks;
    for &s in &seqs {
        store.release(s);
    }
    assert_eq!(store.store_stats().blocks, 0);
    let s = store.add_sequence();
    let d = store.shape().head_dim;
    store.append_prefill(s, 0, &vec![1.0; 2 * 40 * d], &vec![1.0; 2 * 40 * d]);
    let st = store.store_stats();
    assert_eq!(st.blocks, 2 * 5);
    assert_eq!(st.peak_blocks, blocks, "no pool growth past the old peak");
    store.audit().unwrap();
}
