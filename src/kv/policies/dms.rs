//! Dynamic Memory Sparsification (`docs/method.md` §3): delayed eviction with the
//! reference's slot reuse.
//!
//! A token marked for eviction stays visible to `window` more queries: key
//! `k` is visible to query `q` iff `k ≤ q` and (`e_k = 0` or `q − k ≤
//! window`), i.e. until position `k + window + 1` (its `visible_until`).
//! `e_k` is the decision emitted by token `k + 1` (shifted, NVIDIA) or by
//! `k` itself (unshifted, FastDMS); in the shifted convention the last token
//! has no decision yet and stays.
//!
//! Decode follows MO's `_aux_update_single`: a ring of `W = window + 1`
//! slots holds the last W positions; the token entering at `t` overwrites
//! the slot of token `t − W` when that one is marked (it just became
//! invisible), else it is appended. Prefill uses the closed-form mask and
//! writes only the entries the next query still sees.

use super::super::{DmsParams, SlotChoice};
use super::slots::Slots;

/// No slot in this ring position.
const NONE: u32 = u32::MAX;

/// One row's DMS state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DmsRow {
    pub(crate) params: DmsParams,
    /// Position and eviction flag (decided and marked) per slot.
    pub(crate) slots: Slots<bool>,
    /// `[W]`: the slot of position `p` at `ring[p % W]` for the last W
    /// positions, [`NONE`] where that token is not held.
    ring: Vec<u32>,
}

impl DmsRow {
    pub(crate) fn new(params: DmsParams) -> Self {
        Self {
            params,
            slots: Slots::default(),
            ring: vec![NONE; params.window + 1],
        }
    }

    fn ring_len(&self) -> u32 {
        self.params.window as u32 + 1
    }

    /// The first query position that no longer sees an entry at `pos` with
    /// eviction flag `flag`.
    pub(crate) fn until(&self, pos: u32, flag: bool) -> u32 {
        if flag {
            pos.saturating_add(self.ring_len())
        } else {
            u32::MAX
        }
    }

    /// The decision emitted by the token at position `at`, in the shifted
    /// convention: it marks the held token at `at − 1` (if any).
    pub(crate) fn mark_previous(&mut self, at: u32, evict: bool) {
        if at == 0 {
            return;
        }
        let s = self.ring[((at - 1) % self.ring_len()) as usize];
        if s != NONE && self.slots.pos[s as usize] == at - 1 {
            self.slots.val[s as usize] = evict;
        }
    }

    /// Flags of a chunk of `decisions.len()` new tokens: shifted, token `j`
    /// takes decision `j + 1` (the last one waits for the next token);
    /// unshifted, its own.
    pub(crate) fn chunk_flags(&self, decisions: &[bool]) -> Vec<bool> {
        if self.params.shifted {
            let mut f: Vec<bool> = decisions.iter().skip(1).copied().collect();
            if !decisions.is_empty() {
                f.push(false);
            }
            f
        } else {
            decisions.to_vec()
        }
    }

    /// Where the token at position `t` goes (decode): over token `t − W`'s
    /// slot when that token is marked, else appended.
    pub(crate) fn place(&self, t: u32) -> SlotChoice {
        let w = self.ring_len();
        if t < w {
            return SlotChoice::Append;
        }
        let s = self.ring[(t % w) as usize];
        if s != NONE && self.slots.pos[s as usize] == t - w && self.slots.val[s as usize] {
            SlotChoice::Reuse(s as usize)
        } else {
            SlotChoice::Append
        }
    }

    /// The token at position `t` was written into `slot` (decode), with its
    /// own decision `evict`.
    pub(crate) fn record(&mut self, t: u32, slot: usize, evict: bool) {
        let flag = !self.params.shifted && evict;
        self.slots.put(slot, t, flag);
        let w = self.ring_len();
        self.ring[(t % w) as usize] = slot as u32;
        if self.params.shifted {
            self.mark_previous(t, evict);
        }
    }

    /// The decision `evict` of the token decoded at position `t`, applied
    /// after [`record`](Self::record) took a placeholder: what `record(t,
    /// slot, evict)` would have set (shifted, it marks token `t − 1`;
    /// unshifted, token `t` itself). Equal to deciding at `record` as long as
    /// no placement ran in between (the next `place` is at `t + 1`).
    pub(crate) fn decide(&mut self, t: u32, evict: bool) {
        if self.params.shifted {
            self.mark_previous(t, evict);
        } else {
            self.mark_previous(t + 1, evict);
        }
    }

    /// Rebuild the ring from the slots after a prefill chunk; `next` is the
    /// position of the next token.
    pub(crate) fn rebuild_ring(&mut self, next: u32) {
        let w = self.ring_len();
        self.ring.fill(NONE);
        for (s, &p) in self.slots.pos.iter().enumerate() {
            if p < next && p + w >= next {
                self.ring[(p % w) as usize] = s as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode only, window 2 (ring 3), shifted: the token marked by the
    /// decision of its successor is overwritten exactly when it leaves the
    /// window.
    #[test]
    fn ring_reuses_the_marked_slot_when_it_expires() {
        let mut row = DmsRow::new(DmsParams {
            window: 2,
            shifted: true,
        });
        // Token 0 is marked by token 1's decision; 1 and 2 are kept.
        let decisions = [false, true, false, false, false];
        let mut len = 0;
        let mut placed = Vec::new();
        for (t, &e) in decisions.iter().enumerate() {
            let t = t as u32;
            let choice = row.place(t);
            let slot = match choice {
                SlotChoice::Reuse(s) => s,
                SlotChoice::Append => {
                    len += 1;
                    len - 1
                }
            };
            placed.push(choice);
            row.record(t, slot, e);
        }
        // Token 3 (= 0 + W) takes token 0's slot; nothing else is reused.
        assert_eq!(placed[3], SlotChoice::Reuse(0));
        assert_eq!(
            placed.iter().filter(|c| **c != SlotChoice::Append).count(),
            1
        );
        assert_eq!(row.slots.pos, vec![3, 1, 2, 4]);
        assert_eq!(row.until(0, true), 3, "visible to queries 0, 1, 2");
    }

    #[test]
    fn unshifted_flags_are_the_tokens_own() {
        let row = DmsRow::new(DmsParams {
            window: 4,
            shifted: false,
        });
        assert_eq!(row.chunk_flags(&[true, false]), vec![true, false]);
        let shifted = DmsRow::new(DmsParams {
            window: 4,
            shifted: true,
        });
        assert_eq!(
            shifted.chunk_flags(&[true, false, true]),
            vec![false, true, false]
        );
    }
}
