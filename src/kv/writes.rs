//! Row-level writes of the ledger: append, overwrite (slot reuse), evict
//! (swap-remove) and truncate, each keeping blocks shared by forks intact by
//! copying them first (copy-on-write) and keeping occupancy exact.

use super::KvError;
use super::ledger::{Ledger, Row, RowId, SlotCopy};
use super::pool::BlockPool;

impl Ledger {
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
        let bounds = self.bounds_per_page(id.layer);
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        check_pos(id, row, pos)?;
        let len = row.len as usize;
        let off = len % bs;
        // A new page brings its Quest bounds (one entry's worth).
        let new_bounds = if off == 0 { bounds } else { 0 };
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
        book.resident += 1 + new_bounds;
        book.peak_resident = book.peak_resident.max(book.resident);
        self.cow_copies += u64::from(copied);
        self.touch(id.seq);
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
        self.touch(id.seq);
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
        let bounds = self.bounds_per_page(id.layer);
        let (pool, book, r) = self.parts(id)?;
        let row = &mut book.rows[r];
        check_slot(id, row, slot)?;
        let last = row.len as usize - 1;
        let freed_bounds = if last.is_multiple_of(bs) { bounds } else { 0 };
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
        book.resident -= 1 + freed_bounds;
        self.cow_copies += u64::from(copied);
        self.touch(id.seq);
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
        let bounds = self.bounds_per_page(id.layer);
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
        let pages = (old.div_ceil(bs) - len.div_ceil(bs)) as u64;
        book.resident -= (old - len) as u64 + pages * bounds;
        self.cow_copies += u64::from(copied);
        self.touch(id.seq);
        Ok(())
    }
}

pub(super) fn check_slot(id: RowId, row: &Row, slot: usize) -> Result<(), KvError> {
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
