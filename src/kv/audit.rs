//! The ledger's self-check: every bookkeeping invariant of the paged store,
//! verified from scratch (refcounts, free list, block tables, positions,
//! occupancy). Used by tests and available to callers as `KvStore::audit`.

use super::KvError;
use super::ledger::Ledger;

impl Ledger {
    /// Check every bookkeeping invariant: refcounts equal the references
    /// held by live rows, the free list holds exactly the unreferenced blocks
    /// once, block tables cover their lengths, lengths never exceed entries
    /// seen, positions in a row are distinct and not after its last one, and
    /// occupancy never undercounts what rows hold.
    pub(crate) fn audit(&self) -> Result<(), KvError> {
        let bad = |m: String| Err(KvError::Invariant(m));
        let (bs, kv_heads) = (self.block_size(), self.shape().kv_heads);
        for layer in 0..self.shape().layers {
            let pool = self.pool(layer);
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
}
