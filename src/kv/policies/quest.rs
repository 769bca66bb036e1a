//! Quest (Tang et al. 2024): query-aware page selection. Every entry stays
//! (memory is not reduced); each decode step reads only the pages whose
//! key bounds promise the largest scores, within the token budget.
//!
//! Pages are the store's blocks (the store runs with `block_size =
//! page_size`), each with per-channel min and max keys. A page's bound for
//! a query head is `Σ_c max(q_c · min_c, q_c · max_c)` (mit-han-lab/Quest's
//! `quest_attention.py` estimate). The step reads the last (current) page
//! always and the top `K − 1` others, with `K = 1 + ⌊(budget − current
//! page's fill) / page_size⌋` (the most pages that fit the token budget;
//! the reference kernels' page budget likewise counts the current page);
//! when the row has at most `K` pages it is read whole.
//!
//! Who chooses ([`QuestGranularity`](super::super::QuestGranularity)):
//! - `QueryHead` (default, the reference): every query head ranks its KV
//!   head's pages by its own bound and attends over its own pages.
//! - `KvHead`: the G query heads of a KV head share one page set, ranked by
//!   the largest bound over them.
//!
//! The first `dense_layers` layers (default 2, as the reference) attend
//! densely and keep no bounds.
//!
//! Reads are counted per KV head in token-equivalents: the entries of the
//! pages any of its query heads read (each read once), plus one per page
//! whose bounds were read (every page but the current one). Resident
//! entries include one per page of each bounded row: a page's min and max
//! are `2 × head_dim` floats, one entry's K and V (counted by the ledger).

/// One row's page bounds.
///
/// # Shapes
/// `mins`, `maxs`: `[pages, head_dim]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct QuestRow {
    mins: Vec<f32>,
    maxs: Vec<f32>,
}

impl QuestRow {
    /// Fold the key written at row slot `slot` into its page's bounds.
    pub(crate) fn add(&mut self, slot: usize, k: &[f32], page_size: usize) {
        let d = k.len();
        let p = slot / page_size;
        if p * d == self.mins.len() {
            self.mins.extend_from_slice(k);
            self.maxs.extend_from_slice(k);
            return;
        }
        let lo = &mut self.mins[p * d..(p + 1) * d];
        for (m, x) in lo.iter_mut().zip(k) {
            *m = m.min(*x);
        }
        let hi = &mut self.maxs[p * d..(p + 1) * d];
        for (m, x) in hi.iter_mut().zip(k) {
            *m = m.max(*x);
        }
    }

    /// The bound of page `p` for the query heads `q` (`[G, d]`): the
    /// largest over heads of `Σ_c max(q_c min_c, q_c max_c)`.
    fn bound(&self, p: usize, q: &[f32], d: usize) -> f32 {
        let (lo, hi) = (
            &self.mins[p * d..(p + 1) * d],
            &self.maxs[p * d..(p + 1) * d],
        );
        q.chunks_exact(d)
            .map(|qh| {
                qh.iter()
                    .zip(lo.iter().zip(hi))
                    .map(|(x, (a, b))| (x * a).max(x * b))
                    .sum::<f32>()
            })
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// The pages to read for a row of `pages` pages and a budget of `k`
    /// pages, ascending, the last page included; `None` when the whole row
    /// is read (`pages ≤ k`).
    ///
    /// # Shapes
    /// `q`: `[G, d]`.
    pub(crate) fn select(&self, q: &[f32], d: usize, pages: usize, k: usize) -> Option<Vec<usize>> {
        if pages <= k {
            return None;
        }
        let mut scored: Vec<(f32, usize)> =
            (0..pages - 1).map(|p| (self.bound(p, q, d), p)).collect();
        let take = k - 1;
        if take > 0 && take < scored.len() {
            scored.select_nth_unstable_by(take - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        }
        scored.truncate(take);
        let mut chosen: Vec<usize> = scored.into_iter().map(|(_, p)| p).collect();
        chosen.sort_unstable();
        chosen.push(pages - 1);
        Some(chosen)
    }
}

/// Pages a step may read under a budget of `tokens` entries: the current
/// page (holding `last_fill` entries) and as many whole pages as fit in the
/// rest; at least the current page.
pub(crate) fn page_budget(tokens: usize, last_fill: usize, page_size: usize) -> usize {
    1 + tokens.saturating_sub(last_fill) / page_size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys aligned with the query in page 1 only: page 1 is chosen, the
    /// last page always, the rest left out.
    #[test]
    fn selects_the_page_with_the_largest_bound() {
        let (d, ps) = (2, 2);
        let mut row = QuestRow::default();
        let keys: [[f32; 2]; 7] = [
            [-1.0, 0.0],
            [0.0, -1.0],
            [3.0, 0.5],
            [-2.0, 0.1],
            [0.1, 0.1],
            [-0.5, 0.0],
            [0.0, 0.0],
        ];
        for (s, k) in keys.iter().enumerate() {
            row.add(s, k, ps);
        }
        assert_eq!(row.mins[2..4], [-2.0, 0.1]);
        assert_eq!(row.maxs[2..4], [3.0, 0.5]);
        let q = [1.0, 1.0];
        assert_eq!(row.select(&q, d, 4, 2), Some(vec![1, 3]));
        assert_eq!(row.select(&q, d, 4, 4), None);
        // A negative query flips which bound counts: page 0 reaches 2.
        let q = [-1.0, -1.0];
        assert_eq!(row.select(&q, d, 4, 2), Some(vec![0, 3]));
        assert_eq!(page_budget(5, 1, 2), 3);
        assert_eq!(page_budget(5, 2, 2), 2);
        assert_eq!(page_budget(1, 2, 2), 1);
    }
}
