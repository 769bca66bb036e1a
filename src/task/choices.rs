//! Per-repeat order of multiple-choice options (GPQA), exactly as
//! openai/simple-evals draws it (`docs/data-formats.md` §2.2).
//!
//! simple-evals builds `examples = rows * n_repeats` and gives example `e` the
//! permutation `rng.sample(range(4), 4)` drawn in order from one
//! `random.Random(0)`. So repeat `r` of row `i` (of `n` rows) takes draw
//! `r * n + i`. The options before permutation are
//! `[correct, incorrect 1, incorrect 2, incorrect 3]`; position `k` shows option
//! `perm[k]`, and the correct letter is `"ABCD"[perm.index(0)]`.

use std::sync::{Arc, Mutex};

use super::pyrandom::PyRandom;

/// How the options of a multiple-choice problem are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceOrder {
    /// One `random.Random(seed)` stream over `rows × repeats` (simple-evals with
    /// seed 0).
    SimpleEvals { seed: u64 },
    /// Repeat `r` draws the permutations of rows `0, 1, …` in order from
    /// `random.Random(seed + r)`, so repeats are independent of each other and
    /// of how many repeats are run.
    PerRepeat { seed: u64 },
}

/// A permutation of the four options: position `k` shows option `perm[k]`.
pub type Permutation = [usize; 4];

/// The letter of the correct option (option 0) under `perm`.
pub fn correct_letter(perm: &Permutation) -> char {
    let position = perm.iter().position(|&p| p == 0).unwrap_or(0);
    ['A', 'B', 'C', 'D'][position]
}

/// The first `count` simple-evals permutations drawn from `random.Random(seed)`.
pub fn simple_evals_permutations(seed: u64, count: usize) -> Vec<Permutation> {
    let mut rng = PyRandom::new(seed);
    (0..count).map(|_| rng.permutation4()).collect()
}

/// A [`ChoiceOrder`] with a memo of the simple-evals stream, so rendering
/// repeat `r` does not redraw `r × rows` permutations every time. Clones share
/// the memo.
#[derive(Debug, Clone)]
pub struct ChoiceSchedule {
    order: ChoiceOrder,
    memo: Arc<Mutex<Memo>>,
}

#[derive(Debug)]
struct Memo {
    rng: PyRandom,
    drawn: Vec<Permutation>,
}

impl ChoiceSchedule {
    pub fn new(order: ChoiceOrder) -> Self {
        let seed = match order {
            ChoiceOrder::SimpleEvals { seed } | ChoiceOrder::PerRepeat { seed } => seed,
        };
        Self {
            order,
            memo: Arc::new(Mutex::new(Memo {
                rng: PyRandom::new(seed),
                drawn: Vec::new(),
            })),
        }
    }

    pub fn order(&self) -> ChoiceOrder {
        self.order
    }

    /// The permutation for `repeat` of row `row` in a file of `n_rows` rows.
    pub fn permutation(&self, repeat: u32, row: usize, n_rows: usize) -> Permutation {
        match self.order {
            ChoiceOrder::SimpleEvals { .. } => {
                let index = repeat as usize * n_rows + row;
                // A poisoned lock only means another thread panicked mid-draw;
                // the memo is still a valid prefix of the stream.
                let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
                while memo.drawn.len() <= index {
                    let perm = memo.rng.permutation4();
                    memo.drawn.push(perm);
                }
                memo.drawn[index]
            }
            ChoiceOrder::PerRepeat { seed } => {
                let mut rng = PyRandom::new(seed.wrapping_add(u64::from(repeat)));
                let mut perm = rng.permutation4();
                for _ in 0..row {
                    perm = rng.permutation4();
                }
                perm
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_stream_in_any_query_order() {
        let stream = simple_evals_permutations(0, 3 * 7);
        let schedule = ChoiceSchedule::new(ChoiceOrder::SimpleEvals { seed: 0 });
        for (repeat, row) in [(2, 6), (0, 0), (1, 3), (2, 0)] {
            assert_eq!(
                schedule.permutation(repeat, row, 7),
                stream[repeat as usize * 7 + row]
            );
        }
    }

    #[test]
    fn per_repeat_uses_its_own_stream() {
        let schedule = ChoiceSchedule::new(ChoiceOrder::PerRepeat { seed: 10 });
        let repeat3 = simple_evals_permutations(13, 5);
        for (row, perm) in repeat3.iter().enumerate() {
            assert_eq!(schedule.permutation(3, row, 198), *perm);
        }
    }

    #[test]
    fn letter_is_position_of_the_correct_option() {
        assert_eq!(correct_letter(&[3, 1, 0, 2]), 'C');
        assert_eq!(correct_letter(&[0, 1, 2, 3]), 'A');
        assert_eq!(correct_letter(&[1, 2, 3, 0]), 'D');
    }
}
