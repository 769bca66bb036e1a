//! Sharding: `--shard I/N` runs a deterministic 1/N of a plan's work units
//! (width group × problem), balanced by estimated tokens.
//!
//! Units are ordered by estimated tokens, largest first, ties broken by
//! (group id, problem id) — strings that depend on the resolved config and
//! the model and task identities only — and each is placed in the shard
//! with the least load so far (the lowest index on a tie): greedy
//! longest-processing-time. The assignment is a pure function of the plan,
//! computed before anything is read from the run directory or checked
//! against the generator, so every shard process computes the same
//! partition, a resumed shard gets back its own units, and a re-run
//! reproduces it. Bound: no shard carries more than the lightest one plus
//! the largest unit (hence at most the mean plus the largest unit).
//!
//! A unit holds every width of a width group, so samples shared by nested
//! widths are decoded once, in one shard. Work filters (`--tasks`,
//! `--methods`, `--limit`) change the unit set and so the partition: they
//! cannot be combined with `--shard`.
//!
//! Shard `I` of `N` writes `<results>/<run>/shards/I-of-N/` (see
//! [`shard_dir`]); `hyperscale merge` unions the shards into a normal run
//! directory.

use std::path::{Path, PathBuf};

use super::expand::{Expanded, WorkUnit};
use crate::record::Shard;

/// The run directory of `shard` of the run whose whole-run directory is
/// `run_dir`: `run_dir/shards/I-of-N`.
pub fn shard_dir(run_dir: &Path, shard: Shard) -> PathBuf {
    run_dir
        .join("shards")
        .join(format!("{}-of-{}", shard.index, shard.count))
}

/// Greedy longest-first partition of items with sizes `sizes` into `bins`
/// bins. `order` breaks ties between equal sizes (smaller first). Returns
/// the bin of each item.
pub fn partition<K: Ord>(sizes: &[u64], order: &[K], bins: usize) -> Vec<usize> {
    assert_eq!(sizes.len(), order.len(), "one tie-break key per item");
    let bins = bins.max(1);
    let mut items: Vec<usize> = (0..sizes.len()).collect();
    items.sort_by(|&a, &b| {
        sizes[b]
            .cmp(&sizes[a])
            .then_with(|| order[a].cmp(&order[b]))
    });
    let mut load = vec![0u64; bins];
    let mut out = vec![0usize; sizes.len()];
    for i in items {
        let bin = (0..bins).min_by_key(|&b| (load[b], b)).unwrap_or(0);
        load[bin] += sizes[i];
        out[i] = bin;
    }
    out
}

/// The units of `expanded` in `shard`, with their estimated tokens.
pub fn shard_units(expanded: &Expanded, shard: Shard) -> Vec<WorkUnit> {
    let units = expanded.units();
    let sizes: Vec<u64> = units.iter().map(|&u| expanded.unit_tokens(u)).collect();
    let keys: Vec<(&str, &str)> = units
        .iter()
        .map(|u| {
            let g = &expanded.groups[u.group];
            (
                g.id.as_str(),
                expanded.tasks[g.task].problems[u.problem].id.as_str(),
            )
        })
        .collect();
    let bins = partition(&sizes, &keys, shard.count as usize);
    units
        .into_iter()
        .zip(bins)
        .filter(|(_, b)| *b == shard.index as usize)
        .map(|(u, _)| u)
        .collect()
}

/// Keep only `shard`'s units in `expanded`: each group runs the problems it
/// has in the shard; groups with none are dropped.
pub fn restrict_to_shard(expanded: &mut Expanded, shard: Shard) {
    let mine = shard_units(expanded, shard);
    let mut per_group: Vec<Vec<usize>> = vec![Vec::new(); expanded.groups.len()];
    for u in mine {
        per_group[u.group].push(u.problem);
    }
    let groups = std::mem::take(&mut expanded.groups);
    expanded.groups = groups
        .into_iter()
        .zip(per_group)
        .filter(|(_, p)| !p.is_empty())
        .map(|(mut g, mut p)| {
            p.sort_unstable();
            g.problems = Some(p);
            g
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longest_first_fills_the_lightest_bin() {
        // 7, 5, 4, 3, 3, 2 into 2 bins: 7→0, 5→1, 4→1 (9), 3→0 (10), 3→1 (12), 2→0 (12).
        let sizes = [3, 7, 2, 5, 4, 3];
        let order = [0, 1, 2, 3, 4, 5];
        let bins = partition(&sizes, &order, 2);
        assert_eq!(bins, vec![0, 0, 0, 1, 1, 1]);
        let load = |b| -> u64 { (0..6).filter(|&i| bins[i] == b).map(|i| sizes[i]).sum() };
        assert_eq!((load(0), load(1)), (12, 12));
    }

    #[test]
    fn ties_are_broken_by_the_key_not_the_input_order() {
        let sizes = [5, 5, 5, 5];
        let a = partition(&sizes, &["d", "b", "a", "c"], 3);
        // Reordering the items moves their bins with them.
        let b = partition(&sizes, &["a", "b", "c", "d"], 3);
        assert_eq!(a, vec![0, 1, 0, 2]);
        assert_eq!(b, vec![0, 1, 2, 0]);
    }

    #[test]
    fn shard_dirs_are_named_i_of_n() {
        let d = shard_dir(Path::new("results/smoke"), Shard { index: 2, count: 8 });
        assert_eq!(d, Path::new("results/smoke/shards/2-of-8"));
    }

    proptest! {
        #[test]
        fn every_item_lands_in_one_bin_within_the_balance_bound(
            sizes in proptest::collection::vec(0u64..10_000, 0..200),
            bins in 1usize..12,
        ) {
            let order: Vec<usize> = (0..sizes.len()).collect();
            let out = partition(&sizes, &order, bins);
            prop_assert_eq!(out.len(), sizes.len());
            prop_assert!(out.iter().all(|&b| b < bins));
            let mut load = vec![0u64; bins];
            for (i, &b) in out.iter().enumerate() {
                load[b] += sizes[i];
            }
            prop_assert_eq!(load.iter().sum::<u64>(), sizes.iter().sum::<u64>());
            let largest = sizes.iter().copied().max().unwrap_or(0);
            let (max, min) = (*load.iter().max().unwrap(), *load.iter().min().unwrap());
            prop_assert!(max <= min + largest, "loads {:?}, largest {}", load, largest);
            // The same input gives the same partition.
            prop_assert_eq!(partition(&sizes, &order, bins), out);
        }
    }
}
