//! The host-side ledger of the paged store: sequences, their rows (block
//! table, length, positions seen), the per-layer block pools and every
//! counter. It never touches K/V payload; operations that move payload push
//! [`SlotCopy`]s for the payload (host or device) to apply.

use super::policies::PolicyBook;
use super::pool::BlockPool;
use super::{KvError, KvShape, KvStats, ResolvedPolicy, RowStats, SeqId, StoreStats};

/// Address of one row: the keys/values of one KV head of one layer of one
/// sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowId {
    pub seq: SeqId,
    pub layer: usize,
    pub head: usize,
}

/// A run of `n` slots to copy from `src` to `dst` (global slot numbers of
/// one layer's pool). Emitted by copy-on-write of a shared block and by
/// eviction moving an entry; the payload applies them in order, before the
/// writes of the same operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCopy {
    pub layer: usize,
    pub src: u32,
    pub dst: u32,
    pub n: u32,
}

/// One row's bookkeeping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    /// Blocks of the row, in slot order: slot `s` lives in `blocks[s / bs]`.
    pub(crate) blocks: Vec<u32>,
    /// Entries kept (slots `0..len` are live).
    pub(crate) len: u32,
    /// Entries ever written into the row.
    pub(crate) seen: u64,
    /// Position of the last entry written: positions only go forward.
    pub(crate) last_pos: Option<u32>,
    pub(crate) decode_reads: u64,
    pub(crate) prefill_reads: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct SeqBook {
    /// `layers × kv_heads` rows, layer-major.
    pub(crate) rows: Vec<Row>,
    /// RoPE position of the sequence's next token.
    pub(crate) positions: u64,
    resident: u64,
    peak_resident: u64,
}

/// Sequences, rows, pools and counters of a [`KvStore`](super::KvStore).
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    shape: KvShape,
    block_size: usize,
    pools: Vec<BlockPool>,
    seqs: Vec<Option<SeqBook>>,
    peak_resident: u64,
    peak_blocks: u64,
    decode_reads: u64,
    prefill_reads: u64,
    cow_copies: u64,
    /// The cache policy and each sequence's policy state (follows forks and
    /// releases).
    pub(crate) policy: PolicyBook,
}

impl Ledger {
    pub(crate) fn new(shape: KvShape, block_size: usize) -> Result<Self, KvError> {
        if block_size == 0 {
            return Err(KvError::BlockSize(block_size));
        }
        Ok(Self {
            shape,
            block_size,
            pools: (0..shape.layers)
                .map(|_| BlockPool::new(block_size))
                .collect(),
            seqs: Vec::new(),
            peak_resident: 0,
            peak_blocks: 0,
            decode_reads: 0,
            prefill_reads: 0,
            cow_copies: 0,
            policy: PolicyBook::new(ResolvedPolicy::Dense, shape),
        })
    }

    pub(crate) fn shape(&self) -> KvShape {
        self.shape
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) fn pool(&self, layer: usize) -> &BlockPool {
        &self.pools[layer]
    }

    pub(crate) fn add_sequence(&mut self) -> SeqId {
        let rows = vec![Row::default(); self.shape.layers * self.shape.kv_heads];
        self.seqs.push(Some(SeqBook {
            rows,
            positions: 0,
            resident: 0,
            peak_resident: 0,
        }));
        SeqId((self.seqs.len() - 1) as u32)
    }

    /// `n` children sharing every block of `parent` (refcounts +n).
    pub(crate) fn fork(&mut self, parent: SeqId, n: usize) -> Result<Vec<SeqId>, KvError> {
        let mut base = self.seq(parent)?.clone();
        for row in &mut base.rows {
            row.decode_reads = 0;
        }
        let kv_heads = self.shape.kv_heads;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            for (r, row) in base.rows.iter().enumerate() {
                let pool = &mut self.pools[r / kv_heads];
                for &b in &row.blocks {
                    pool.incref(b);
                }
            }
            self.seqs.push(Some(base.clone()));
            ids.push(SeqId((self.seqs.len() - 1) as u32));
        }
        self.policy.fork(parent, &ids);
        Ok(ids)
    }

    pub(crate) fn release(&mut self, seq: SeqId) -> Result<(), KvError> {
        let book = self
            .seqs
            .get_mut(seq.0 as usize)
            .and_then(Option::take)
            .ok_or(KvError::UnknownSequence(seq))?;
        self.policy.release(seq);
        let kv_heads = self.shape.kv_heads;
        for (r, row) in book.rows.iter().enumerate() {
            let pool = &mut self.pools[r / kv_heads];
            for &b in &row.blocks {
                pool.decref(b);
            }
        }
        Ok(())
    }

    pub(crate) fn seq(&self, seq: SeqId) -> Result<&SeqBook, KvError> {
        self.seqs
            .get(seq.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(KvError::UnknownSequence(seq))
    }

    fn seq_mut(&mut self, seq: SeqId) -> Result<&mut SeqBook, KvError> {
        self.seqs
            .get_mut(seq.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(KvError::UnknownSequence(seq))
    }

    /// Live sequences, in id order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (SeqId, &SeqBook)> {
        self.seqs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (SeqId(i as u32), s)))
    }

    pub(crate) fn advance(&mut self, seq: SeqId, n: usize) -> Result<(), KvError> {
        self.seq_mut(seq)?.positions += n as u64;
        Ok(())
    }

    fn row_index(&self, id: RowId) -> Result<usize, KvError> {
        let KvShape {
            layers, kv_heads, ..
        } = self.shape;
        if id.layer >= layers || id.head >= kv_heads {
            return Err(KvError::RowOutOfRange {
                layer: id.layer,
                head: id.head,
                layers,
                kv_heads,
            });
        }
        Ok(id.layer * kv_heads + id.head)
    }

    pub(crate) fn row(&self, id: RowId) -> Result<&Row, KvError> {
        let r = self.row_index(id)?;
        Ok(&self.seq(id.seq)?.rows[r])
    }

    /// The pool of the row's layer, the sequence and the row's index in it.
    fn parts(&mut self, id: RowId) -> Result<(&mut BlockPool, &mut SeqBook, usize), KvError> {
        let r = self.row_index(id)?;
        let book = self
            .seqs
            .get_mut(id.seq.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(KvError::UnknownSequence(id.seq))?;
        Ok((&mut self.pools[id.layer], book, r))
    }

    /// Block tables and lengths of the rows `[batch, kv_heads]` of `layer`.
    pub(crate) fn row_tables(
        &self,
        layer: usize,
        seqs: &[SeqId],
    ) -> Result<Vec<(&[u32], usize)>, KvError> {
        let kv_heads = self.shape.kv_heads;
        if let Some(&seq) = seqs.first() {
            self.row(RowId {
                seq,
                layer,
                head: 0,
            })?;
        }
        let mut rows = Vec::with_capacity(seqs.len() * kv_heads);
        for &seq in seqs {
            let book = self.seq(seq)?;
            for r in &book.rows[layer * kv_heads..(layer + 1) * kv_heads] {
                rows.push((r.blocks.as_slice(), r.len as usize));
            }
        }
        Ok(rows)
    }

    /// Global slot number of the row's slot `slot` (must be `< len`).
    pub(crate) fn global_slot(&self, id: RowId, slot: usize) -> Result<u32, KvError> {
        let row = self.row(id)?;
        check_slot(id, row, slot)?;
        let bs = self.block_size;
        Ok(row.blocks[slot / bs] * bs as u32 + (slot % bs) as u32)
    }

    /// Would writing an entry at `pos` into the row (over `slot`, if given)
    /// succeed? Lets batch writes validate before mutating anything.
    pub(crate) fn check_write(
        &self,
        id: RowId,
        pos: u32,
        slot: Option<usize>,
    ) -> Result<(), KvError> {
        let row = self.row(id)?;
        check_pos(id, row, pos)?;
        if let Some(slot) = slot {
            check_slot(id, row, slot)?;
        }
        Ok(())
    }

    /// Append an entry at RoPE position `pos`; returns its global slot.
    pub(crate) fn append(
        &mut self,
        id: RowId,
        pos: u32,
        copies: &mut Vec<SlotCopy>,
    ) -> Result<u32, KvError> {
        let bs = self.block_size;
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        check_pos(id, row, pos)?;
        let len = row.len as usize;
        let off = len % bs;
        let (block, copied) = if off == 0 {
            let b = pool.alloc();
            row.blocks.push(b);
            (b, false)
        } else {
            make_writable(pool, row, len / bs, id.layer, bs, copies)
        };
        pool.grow_fill(block, off as u32 + 1);
        let slot = block * bs as u32 + off as u32;
        pool.set_position(slot, pos);
        row.len += 1;
        row.seen += 1;
        row.last_pos = Some(pos);
        book.resident += 1;
        book.peak_resident = book.peak_resident.max(book.resident);
        self.cow_copies += u64::from(copied);
        self.touch();
        Ok(slot)
    }

    /// Replace the entry in the row's `slot` by a new one at `pos`; returns
    /// its global slot. The length is unchanged.
    pub(crate) fn overwrite(
        &mut self,
        id: RowId,
        slot: usize,
        pos: u32,
        copies: &mut Vec<SlotCopy>,
    ) -> Result<u32, KvError> {
        let bs = self.block_size;
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        check_slot(id, row, slot)?;
        check_pos(id, row, pos)?;
        let (block, copied) = make_writable(pool, row, slot / bs, id.layer, bs, copies);
        let global = block * bs as u32 + (slot % bs) as u32;
        pool.set_position(global, pos);
        row.seen += 1;
        row.last_pos = Some(pos);
        self.cow_copies += u64::from(copied);
        self.touch();
        Ok(global)
    }

    /// Drop the entry in `slot` by moving the row's last entry into it
    /// (swap-remove); returns the slot the moved entry came from, if any.
    pub(crate) fn evict(
        &mut self,
        id: RowId,
        slot: usize,
        copies: &mut Vec<SlotCopy>,
    ) -> Result<Option<usize>, KvError> {
        let bs = self.block_size;
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        check_slot(id, row, slot)?;
        let last = row.len as usize - 1;
        let mut copied = false;
        if slot != last {
            let (dst_block, c) = make_writable(pool, row, slot / bs, id.layer, bs, copies);
            copied = c;
            let dst = dst_block * bs as u32 + (slot % bs) as u32;
            let src = row.blocks[last / bs] * bs as u32 + (last % bs) as u32;
            pool.set_position(dst, pool.position(src));
            copies.push(SlotCopy {
                layer: id.layer,
                src,
                dst,
                n: 1,
            });
        }
        copied |= shrink(pool, row, last, bs, id.layer, copies);
        book.resident -= 1;
        self.cow_copies += u64::from(copied);
        self.touch();
        Ok((slot != last).then_some(last))
    }

    /// Keep only the row's first `len` entries.
    pub(crate) fn truncate(
        &mut self,
        id: RowId,
        len: usize,
        copies: &mut Vec<SlotCopy>,
    ) -> Result<(), KvError> {
        let bs = self.block_size;
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        let old = row.len as usize;
        if len > old {
            return Err(KvError::SlotOutOfRange {
                layer: id.layer,
                head: id.head,
                slot: len,
                len: old,
            });
        }
        let copied = shrink(pool, row, len, bs, id.layer, copies);
        book.resident -= (old - len) as u64;
        self.cow_copies += u64::from(copied);
        self.touch();
        Ok(())
    }

    pub(crate) fn count_decode_reads(&mut self, id: RowId, n: u64) -> Result<(), KvError> {
        let (_, book, r) = self.parts(id)?;
        book.rows[r].decode_reads += n;
        self.decode_reads += n;
        Ok(())
    }

    pub(crate) fn count_prefill_reads(&mut self, id: RowId, n: u64) -> Result<(), KvError> {
        let (_, book, r) = self.parts(id)?;
        book.rows[r].prefill_reads += n;
        self.prefill_reads += n;
        Ok(())
    }

    /// Check every bookkeeping invariant: refcounts equal the references
    /// held by live rows, the free list holds exactly the unreferenced blocks
    /// once, block tables cover their lengths, lengths never exceed entries
    /// seen, positions in a row are distinct and not after its last one, and
    /// occupancy never undercounts what rows hold.
    pub(crate) fn audit(&self) -> Result<(), KvError> {
        let bad = |m: String| Err(KvError::Invariant(m));
        let (bs, kv_heads) = (self.block_size, self.shape.kv_heads);
        for (layer, pool) in self.pools.iter().enumerate() {
            let cap = pool.capacity();
            let mut refs = vec![0u32; cap];
            let mut live = vec![0u32; cap];
            for (seq, book) in self.live() {
                for (h, row) in book.rows[layer * kv_heads..(layer + 1) * kv_heads]
                    .iter()
                    .enumerate()
                {
                    let len = row.len as usize;
                    if row.blocks.len() != len.div_ceil(bs) {
                        return bad(format!(
                            "{seq:?} layer {layer} head {h}: {} blocks for {len} entries",
                            row.blocks.len()
                        ));
                    }
                    if row.len as u64 > row.seen {
                        return bad(format!(
                            "{seq:?} layer {layer} head {h}: {len} entries but {} seen",
                            row.seen
                        ));
                    }
                    let mut positions = Vec::with_capacity(len);
                    for (i, &b) in row.blocks.iter().enumerate() {
                        refs[b as usize] += 1;
                        let n = (len - i * bs).min(bs) as u32;
                        live[b as usize] = live[b as usize].max(n);
                        positions.extend((0..n).map(|o| pool.position(b * bs as u32 + o)));
                    }
                    positions.sort_unstable();
                    if positions.windows(2).any(|w| w[0] == w[1]) {
                        return bad(format!("{seq:?} layer {layer} head {h}: repeated position"));
                    }
                    if let (Some(&max), Some(last)) = (positions.last(), row.last_pos)
                        && max > last
                    {
                        return bad(format!(
                            "{seq:?} layer {layer} head {h}: position {max} after last {last}"
                        ));
                    }
                }
            }
            let mut free = vec![false; cap];
            for &b in pool.free_blocks() {
                if std::mem::replace(&mut free[b as usize], true) {
                    return bad(format!("layer {layer}: block {b} twice in the free list"));
                }
            }
            let mut resident = 0u64;
            for b in 0..cap as u32 {
                let (rc, want) = (pool.refcount(b), refs[b as usize]);
                if rc != want {
                    return bad(format!(
                        "layer {layer}: block {b} refcount {rc}, {want} references"
                    ));
                }
                if (rc == 0) != free[b as usize] {
                    return bad(format!(
                        "layer {layer}: block {b} refcount {rc}, free {}",
                        free[b as usize]
                    ));
                }
                let (fill, held) = (pool.fill(b), live[b as usize]);
                if rc > 0 && fill != held {
                    return bad(format!(
                        "layer {layer}: block {b} fill {fill}, rows hold {held}"
                    ));
                }
                resident += u64::from(fill);
            }
            if resident != pool.resident() {
                return bad(format!(
                    "layer {layer}: resident {} but blocks hold {resident}",
                    pool.resident()
                ));
            }
        }
        Ok(())
    }

    /// Update the store-level peaks from the pools' counters.
    fn touch(&mut self) {
        let resident: u64 = self.pools.iter().map(BlockPool::resident).sum();
        let blocks: u64 = self.pools.iter().map(BlockPool::allocated).sum();
        self.peak_resident = self.peak_resident.max(resident);
        self.peak_blocks = self.peak_blocks.max(blocks);
    }

    pub(crate) fn stats(&self, seq: SeqId) -> Result<KvStats, KvError> {
        let book = self.seq(seq)?;
        let entry_bytes = 2 * self.shape.head_dim as u64 * 4;
        Ok(KvStats {
            decode_reads: book.rows.iter().map(|r| r.decode_reads).sum(),
            prefill_reads: book.rows.iter().map(|r| r.prefill_reads).sum(),
            resident: book.resident,
            peak_resident: book.peak_resident,
            peak_bytes: book.peak_resident * entry_bytes,
            positions: book.positions,
            row_len: book.rows.iter().map(|r| r.len).collect(),
        })
    }

    pub(crate) fn row_stats(&self, seq: SeqId) -> Result<Vec<RowStats>, KvError> {
        let book = self.seq(seq)?;
        Ok(book
            .rows
            .iter()
            .map(|r| RowStats {
                len: u64::from(r.len),
                positions: book.positions,
                seen: r.seen,
                decode_reads: r.decode_reads,
                prefill_reads: r.prefill_reads,
            })
            .collect())
    }

    pub(crate) fn store_stats(&self) -> StoreStats {
        let block_bytes = (self.block_size * self.shape.head_dim * 2 * 4) as u64;
        StoreStats {
            resident: self.pools.iter().map(BlockPool::resident).sum(),
            peak_resident: self.peak_resident,
            blocks: self.pools.iter().map(BlockPool::allocated).sum(),
            peak_blocks: self.peak_blocks,
            peak_bytes: self.peak_blocks * block_bytes,
            decode_reads: self.decode_reads,
            prefill_reads: self.prefill_reads,
            cow_copies: self.cow_copies,
        }
    }
}

fn check_slot(id: RowId, row: &Row, slot: usize) -> Result<(), KvError> {
    if slot >= row.len as usize {
        return Err(KvError::SlotOutOfRange {
            layer: id.layer,
            head: id.head,
            slot,
            len: row.len as usize,
        });
    }
    Ok(())
}

fn check_pos(id: RowId, row: &Row, pos: u32) -> Result<(), KvError> {
    match row.last_pos {
        Some(last) if pos <= last => Err(KvError::PositionNotIncreasing {
            layer: id.layer,
            head: id.head,
            pos,
            last,
        }),
        _ => Ok(()),
    }
}

/// Make the row's block `idx` exclusively owned, copying it (its live
/// slots) into a fresh block if forks share it. Returns the block and
/// whether it was copied.
fn make_writable(
    pool: &mut BlockPool,
    row: &mut Row,
    idx: usize,
    layer: usize,
    bs: usize,
    copies: &mut Vec<SlotCopy>,
) -> (u32, bool) {
    let old = row.blocks[idx];
    if pool.refcount(old) == 1 {
        return (old, false);
    }
    let live = (row.len as usize - idx * bs).min(bs) as u32;
    let new = pool.alloc();
    pool.copy_positions(old, new, live);
    pool.grow_fill(new, live);
    pool.decref(old);
    row.blocks[idx] = new;
    copies.push(SlotCopy {
        layer,
        src: old * bs as u32,
        dst: new * bs as u32,
        n: live,
    });
    (new, true)
}

/// Cut the row to `len` entries: release blocks past the end, and make the
/// new last block hold exactly the row's live entries — lowering its
/// occupancy when owned, copying the kept part when shared (so every sharer
/// of a block always holds the same entries of it and occupancy is exact).
/// Returns whether a block was copied.
fn shrink(
    pool: &mut BlockPool,
    row: &mut Row,
    len: usize,
    bs: usize,
    layer: usize,
    copies: &mut Vec<SlotCopy>,
) -> bool {
    let keep_blocks = len.div_ceil(bs);
    for b in row.blocks.drain(keep_blocks..) {
        pool.decref(b);
    }
    let old_len = row.len as usize;
    row.len = len as u32;
    let Some(&last) = row.blocks.last() else {
        return false;
    };
    let live = (len - (keep_blocks - 1) * bs) as u32;
    let was = (old_len - (keep_blocks - 1) * bs).min(bs) as u32;
    if live == was {
        return false;
    }
    if pool.refcount(last) == 1 {
        pool.set_fill(last, live);
        return false;
    }
    make_writable(pool, row, keep_blocks - 1, layer, bs, copies).1
}
