//! The shared eviction mechanism. A policy's scorer gives one score per slot
//! of a row (higher = keep); the functions here pick the lowest-scoring
//! unprotected slots and drop them from the store, moving the policy's
//! per-slot state exactly as the store moves its entries. Policies never
//! evict by hand.

use super::super::{KvError, KvStore, RowId};

/// Per-slot state of one row, parallel to the store's slots: the RoPE
/// position of each entry and one policy value (a score, a DMS flag).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Slots<T> {
    pub(crate) pos: Vec<u32>,
    pub(crate) val: Vec<T>,
}

impl<T: Copy> Slots<T> {
    pub(crate) fn len(&self) -> usize {
        self.pos.len()
    }

    /// A new entry after the last (what [`KvStore::append`] does).
    pub(crate) fn push(&mut self, pos: u32, val: T) {
        self.pos.push(pos);
        self.val.push(val);
    }

    /// A new entry over `slot` (slot reuse), or after the last when `slot`
    /// is the length.
    pub(crate) fn put(&mut self, slot: usize, pos: u32, val: T) {
        if slot == self.len() {
            self.push(pos, val);
        } else {
            self.pos[slot] = pos;
            self.val[slot] = val;
        }
    }

    /// Mirror of [`KvStore::evict`]: the last entry moves into `slot`.
    pub(crate) fn swap_remove(&mut self, slot: usize) {
        self.pos.swap_remove(slot);
        self.val.swap_remove(slot);
    }
}

/// The `n` lowest-scoring slots that `protected` (a test on the position)
/// does not shield, lowest first; ties go to the older position. Fewer when
/// fewer are unprotected.
///
/// # Shapes
/// `score`, `pos`: `[len]`.
pub(crate) fn lowest(
    score: &[f32],
    pos: &[u32],
    protected: impl Fn(u32) -> bool,
    n: usize,
) -> Vec<usize> {
    let key = |&s: &usize| (score[s], pos[s]);
    let order = |a: &usize, b: &usize| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
    };
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        let best = (0..score.len())
            .filter(|&s| !protected(pos[s]))
            .min_by(order);
        return best.into_iter().collect();
    }
    let mut cand: Vec<usize> = (0..score.len()).filter(|&s| !protected(pos[s])).collect();
    if cand.len() > n {
        cand.select_nth_unstable_by(n - 1, order);
        cand.truncate(n);
    }
    cand.sort_by(order);
    cand
}

/// Drop `slots` of the row from the store and from `state`, highest slot
/// first so every swap-remove moves an entry that stays.
pub(crate) fn drop_slots<T: Copy>(
    store: &mut KvStore,
    row: RowId,
    state: &mut Slots<T>,
    mut slots: Vec<usize>,
) -> Result<(), KvError> {
    slots.sort_unstable_by(|a, b| b.cmp(a));
    slots.dedup();
    for s in slots {
        store.evict(row, s)?;
        state.swap_remove(s);
    }
    Ok(())
}

/// Evict the lowest-scoring unprotected slots until the row holds at most
/// `keep` entries.
pub(crate) fn evict_to(
    store: &mut KvStore,
    row: RowId,
    state: &mut Slots<f32>,
    protected: impl Fn(u32) -> bool,
    keep: usize,
) -> Result<(), KvError> {
    let excess = state.len().saturating_sub(keep);
    if excess > 0 {
        let victims = lowest(&state.val, &state.pos, protected, excess);
        drop_slots(store, row, state, victims)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_skips_protected_and_breaks_ties_by_age() {
        let score = [0.5, 0.1, 0.1, 0.9, 0.0];
        let pos = [10, 12, 11, 13, 0];
        // Position 0 is protected (a sink): the two 0.1s go, older first.
        assert_eq!(lowest(&score, &pos, |p| p == 0, 2), vec![2, 1]);
        assert_eq!(lowest(&score, &pos, |p| p == 0, 1), vec![2]);
        assert_eq!(lowest(&score, &pos, |_| false, 1), vec![4]);
        assert_eq!(lowest(&score, &pos, |_| true, 3), Vec::<usize>::new());
        assert_eq!(lowest(&score, &pos, |_| false, 9).len(), 5);
    }

    #[test]
    fn slots_mirror_swap_remove() {
        let mut s = Slots::default();
        for p in 0..4 {
            s.push(p, p as f32);
        }
        s.swap_remove(1);
        assert_eq!(s.pos, vec![0, 3, 2]);
        s.put(3, 9, 9.0);
        s.put(0, 7, 7.0);
        assert_eq!(s.pos, vec![7, 3, 2, 9]);
        assert_eq!(s.val, vec![7.0, 3.0, 2.0, 9.0]);
    }
}
