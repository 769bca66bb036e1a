//! The host-side ledger of the paged store: sequences, their rows (block
//! table, length, positions seen), the per-layer block pools and every
//! counter. It never touches K/V payload; operations that move payload push
//! [`SlotCopy`]s for the payload (host or device) to apply.

use super::dtype::KvDtype;
use super::policies::PolicyBook;
use super::pool::BlockPool;
use super::writes::check_slot;
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
    pub(super) resident: u64,
    pub(super) peak_resident: u64,
    /// The group the sequence belongs to: the id of the sequence it was
    /// forked from, transitively (a sequence made by `add_sequence` starts
    /// its own).
    pub(super) group: u32,
}

/// Residency of one group: a root sequence and every sequence forked from
/// it. Forking is the only way blocks are shared, so every block belongs to
/// exactly one group and a group's entries are the change of the store's
/// entries over the writes and releases of its own sequences.
#[derive(Debug, Clone, Default)]
struct GroupBook {
    /// Live sequences of the group.
    members: usize,
    /// Entries (plus Quest page bounds) the group's sequences hold
    /// together, a block shared among them counted once.
    resident: u64,
    /// Maximum of `resident` over every write.
    peak: u64,
}

/// Sequences, rows, pools and counters of a [`KvStore`](super::KvStore).
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    shape: KvShape,
    /// The element K and V are stored in: every byte figure counts it.
    dtype: KvDtype,
    /// Bytes of K/V a device payload allocates up front, over all layers
    /// (0: it grows with the pools).
    pub(super) device_reserve: u64,
    pub(super) block_size: usize,
    pools: Vec<BlockPool>,
    seqs: Vec<Option<SeqBook>>,
    peak_resident: u64,
    peak_blocks: u64,
    /// Peak of the payload bytes: blocks' K and V plus Quest page bounds.
    peak_bytes: u64,
    decode_reads: u64,
    prefill_reads: u64,
    pub(super) cow_copies: u64,
    /// Groups with a live member, by root sequence id.
    groups: std::collections::HashMap<u32, GroupBook>,
    /// The store's entries (plus page bounds) at the last write or release.
    resident_now: u64,
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
            dtype: KvDtype::F32,
            device_reserve: 0,
            block_size,
            pools: (0..shape.layers)
                .map(|_| BlockPool::new(block_size))
                .collect(),
            seqs: Vec::new(),
            peak_resident: 0,
            peak_blocks: 0,
            peak_bytes: 0,
            decode_reads: 0,
            prefill_reads: 0,
            cow_copies: 0,
            groups: std::collections::HashMap::new(),
            resident_now: 0,
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
        let id = self.seqs.len() as u32;
        self.seqs.push(Some(SeqBook {
            rows,
            positions: 0,
            resident: 0,
            peak_resident: 0,
            group: id,
        }));
        self.groups.insert(
            id,
            GroupBook {
                members: 1,
                ..GroupBook::default()
            },
        );
        SeqId(id)
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
        self.groups
            .get_mut(&base.group)
            .expect("a live sequence's group is live")
            .members += n;
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
        self.charge(book.group);
        let group = self
            .groups
            .get_mut(&book.group)
            .expect("a live sequence's group is live");
        group.members -= 1;
        if group.members == 0 {
            self.groups.remove(&book.group);
        }
        Ok(())
    }

    /// Peak entries (plus Quest page bounds) held together by `seq`'s group
    /// (the sequence it was forked from and all its forks, shared blocks
    /// counted once), over every write since the group's root was added:
    /// the peak of that request alone, whatever else shares the store.
    pub(crate) fn group_peak(&self, seq: SeqId) -> Result<u64, KvError> {
        let group = self.seq(seq)?.group;
        Ok(self.groups.get(&group).map_or(0, |g| g.peak))
    }

    /// Raise the peak of `copy`'s group to that of `source`'s group: a copy
    /// standing for a prefill of its own ([`KvStore::copy_prefilled`](super::KvStore::copy_prefilled)).
    pub(super) fn inherit_group_peak(&mut self, copy: SeqId, source: SeqId) {
        let peak = self.group_peak(source).expect("the source is live");
        let group = self.seq(copy).expect("the copy is live").group;
        let g = self
            .groups
            .get_mut(&group)
            .expect("a live sequence's group is live");
        g.peak = g.peak.max(peak);
    }

    /// Charge the change of the store's entries since the last write or
    /// release to `group`, whose sequence made it, and raise its peak.
    fn charge(&mut self, group: u32) -> u64 {
        let resident =
            self.pools.iter().map(BlockPool::resident).sum::<u64>() + self.bound_blocks();
        let g = self
            .groups
            .get_mut(&group)
            .expect("a live sequence's group is live");
        g.resident = (g.resident + resident)
            .checked_sub(self.resident_now)
            .expect("a group never holds fewer than zero entries");
        g.peak = g.peak.max(g.resident);
        self.resident_now = resident;
        resident
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
    pub(super) fn parts(
        &mut self,
        id: RowId,
    ) -> Result<(&mut BlockPool, &mut SeqBook, usize), KvError> {
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

    /// The element K and V are stored in.
    pub(crate) fn kv_dtype(&self) -> KvDtype {
        self.dtype
    }

    /// Store K and V as `dtype` (the payload follows it; set on an empty
    /// store only).
    pub(crate) fn set_kv_dtype(&mut self, dtype: KvDtype) {
        self.dtype = dtype;
    }

    /// Bytes of one entry's K and V in the stored width: `2 × head_dim ×`
    /// [`KvDtype::bytes`] (page bounds, Quest's, are host f32 entries).
    pub(crate) fn entry_bytes(&self) -> u64 {
        2 * self.shape.head_dim as u64 * self.dtype.bytes()
    }

    /// Entry-equivalents of page bounds each page (block) of a `layer` row
    /// holds: 1 under Quest past its dense layers (a min and a max key, `2 ×
    /// head_dim` floats, the size of one entry's K and V), else 0.
    pub(super) fn bounds_per_page(&self, layer: usize) -> u64 {
        u64::from(self.policy.policy.page_bounds(layer))
    }

    /// Page bounds held now, in entry-equivalents: one per allocated block
    /// of a layer whose pages carry bounds (a block shared by forks once).
    fn bound_blocks(&self) -> u64 {
        self.pools
            .iter()
            .enumerate()
            .map(|(l, p)| p.allocated() * self.bounds_per_page(l))
            .sum()
    }

    /// Update the store-level peaks from the pools' counters, and the peak
    /// of the group of `seq`, the sequence just written.
    pub(super) fn touch(&mut self, seq: SeqId) {
        let group = self.seq(seq).expect("written just now").group;
        let resident = self.charge(group);
        let blocks: u64 = self.pools.iter().map(BlockPool::allocated).sum();
        let bounds = self.bound_blocks();
        let entry_bytes = self.entry_bytes();
        let bytes = blocks * self.block_size as u64 * entry_bytes + bounds * entry_bytes;
        self.peak_resident = self.peak_resident.max(resident);
        self.peak_blocks = self.peak_blocks.max(blocks);
        self.peak_bytes = self.peak_bytes.max(bytes);
    }

    pub(crate) fn stats(&self, seq: SeqId) -> Result<KvStats, KvError> {
        let book = self.seq(seq)?;
        let entry_bytes = self.entry_bytes();
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
        StoreStats {
            resident: self.pools.iter().map(BlockPool::resident).sum::<u64>() + self.bound_blocks(),
            peak_resident: self.peak_resident,
            blocks: self.pools.iter().map(BlockPool::allocated).sum(),
            peak_blocks: self.peak_blocks,
            peak_bytes: self.peak_bytes,
            decode_reads: self.decode_reads,
            prefill_reads: self.prefill_reads,
            cow_copies: self.cow_copies,
        }
    }
}
