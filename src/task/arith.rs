//! `arith`: synthetic integer arithmetic problems of graded difficulty,
//! generated from a seed (nothing is stored).
//!
//! | difficulty | shape | example |
//! |---|---|---|
//! | 1 | single-digit sum | What is 7 + 5? |
//! | 2 | two-digit ± one-digit, or a one-digit product | What is 43 + 8? |
//! | 3 | two-digit ± two-digit | What is 47 + 38? |
//! | 4 | two-step word problem, two-digit numbers | has 23, buys 14, gives 9 |
//! | 5 | three-step word problem, three-digit numbers and a product | 345 − 128 + 7 × 12 |
//!
//! SmolLM2-135M answers difficulty 1 and fails two-digit sums, so a mix scores
//! strictly between 0 and 1. Problem `i` of difficulty `d` depends only on
//! `(seed, d, i)` through SplitMix64 (written out here so that the problems
//! cannot change with a dependency upgrade); answers are non-negative integers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::problem::{Problem, Reference};

/// The hardest difficulty level.
pub const MAX_DIFFICULTY: u8 = 5;

/// Generator settings (the `[source]` of a `format = "arith"` task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArithConfig {
    pub seed: u64,
    /// Problems generated per difficulty.
    pub per_difficulty: usize,
    /// Difficulties to generate, each in `1..=MAX_DIFFICULTY`, in output order.
    pub difficulties: Vec<u8>,
}

/// All problems: for each difficulty in order, `per_difficulty` problems.
pub fn generate(config: &ArithConfig) -> Vec<Problem> {
    config
        .difficulties
        .iter()
        .flat_map(|&d| (0..config.per_difficulty).map(move |i| problem(config.seed, d, i)))
        .collect()
}

/// Problem `index` of `difficulty` (clamped to `1..=MAX_DIFFICULTY`).
pub fn problem(seed: u64, difficulty: u8, index: usize) -> Problem {
    let difficulty = difficulty.clamp(1, MAX_DIFFICULTY);
    let mut rng = SplitMix64::new(seed, difficulty, index as u64);
    let item = match difficulty {
        1 => plain(rng.range(1, 9), '+', rng.range(1, 9)),
        2 => match rng.range(0, 2) {
            0 => plain(rng.range(10, 99), '+', rng.range(1, 9)),
            1 => plain(rng.range(11, 99), '-', rng.range(1, 9)),
            _ => plain(rng.range(2, 9), '×', rng.range(2, 9)),
        },
        3 => match rng.range(0, 1) {
            0 => plain(rng.range(10, 99), '+', rng.range(10, 99)),
            _ => {
                let a = rng.range(20, 99);
                plain(a, '-', rng.range(10, a - 1))
            }
        },
        4 => two_step(&mut rng),
        _ => three_step(&mut rng),
    };
    let mut metadata = BTreeMap::new();
    metadata.insert("difficulty".into(), Value::from(difficulty));
    metadata.insert("expression".into(), Value::from(item.expression));
    metadata.insert("steps".into(), Value::from(item.steps));
    Problem {
        id: format!("arith-d{difficulty}-{index}"),
        question: item.question,
        reference: Reference::Math {
            answer: item.answer.to_string(),
        },
        metadata,
    }
}

struct Item {
    question: String,
    expression: String,
    answer: u64,
    steps: u32,
}

fn plain(a: u64, op: char, b: u64) -> Item {
    let answer = match op {
        '+' => a + b,
        '-' => a - b,
        _ => a * b,
    };
    Item {
        question: format!("What is {a} {op} {b}?"),
        expression: format!("{a} {op} {b}"),
        answer,
        steps: 1,
    }
}

const PEOPLE: [(&str, &str); 8] = [
    ("Tom", "He"),
    ("Anna", "She"),
    ("Ben", "He"),
    ("Maria", "She"),
    ("Sam", "He"),
    ("Lucy", "She"),
    ("Omar", "He"),
    ("Mia", "She"),
];
const THINGS: [&str; 6] = [
    "apples", "marbles", "stickers", "pencils", "cookies", "books",
];

fn two_step(rng: &mut SplitMix64) -> Item {
    let (name, pronoun) = PEOPLE[rng.range(0, PEOPLE.len() as u64 - 1) as usize];
    let things = THINGS[rng.range(0, THINGS.len() as u64 - 1) as usize];
    if rng.range(0, 1) == 0 {
        let a = rng.range(10, 60);
        let b = rng.range(10, 60);
        let c = rng.range(5, (a + b - 1).min(50));
        Item {
            question: format!(
                "{name} has {a} {things}. {pronoun} buys {b} more and then gives {c} to a friend. \
                 How many {things} does {name} have now?"
            ),
            expression: format!("{a} + {b} - {c}"),
            answer: a + b - c,
            steps: 2,
        }
    } else {
        let a = rng.range(3, 9);
        let b = rng.range(6, 15);
        let c = rng.range(2, 9);
        Item {
            question: format!(
                "{name} buys {a} bags of {things} with {b} {things} in each bag, then gives away {c}. \
                 How many {things} does {name} have left?"
            ),
            expression: format!("{a} × {b} - {c}"),
            answer: a * b - c,
            steps: 2,
        }
    }
}

fn three_step(rng: &mut SplitMix64) -> Item {
    if rng.range(0, 1) == 0 {
        let things = ["pens", "toys", "cups", "notebooks"][rng.range(0, 3) as usize];
        let a = rng.range(100, 999);
        let b = rng.range(10, a / 2 + 10);
        let c = rng.range(2, 9);
        let d = rng.range(10, 99);
        Item {
            question: format!(
                "A shop has {a} {things}. It sells {b} of them, then receives {c} boxes with {d} \
                 {things} in each box. How many {things} does the shop have now?"
            ),
            expression: format!("{a} - {b} + {c} × {d}"),
            answer: a - b + c * d,
            steps: 3,
        }
    } else {
        let (name, _) = PEOPLE[rng.range(0, PEOPLE.len() as u64 - 1) as usize];
        let a = rng.range(20, 99);
        let b = rng.range(5, 12);
        let total = a * b;
        let c = rng.range(100.min(total / 2), total / 2);
        let d = rng.range(1, (total - c) / 2);
        Item {
            question: format!(
                "{name} saves {a} dollars each week for {b} weeks, then spends {c} dollars on a bike \
                 and {d} dollars on a helmet. How many dollars does {name} have left?"
            ),
            expression: format!("{a} × {b} - {c} - {d}"),
            answer: total - c - d,
            steps: 3,
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014), seeded from `(seed, difficulty, index)`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64, difficulty: u8, index: u64) -> Self {
        let mut rng = Self(seed);
        let a = rng.next();
        rng.0 = a ^ u64::from(difficulty);
        let b = rng.next();
        rng.0 = b ^ index;
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (rejection sampling, no modulo bias).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi - lo + 1;
        let limit = u64::MAX - u64::MAX % span;
        loop {
            let x = self.next();
            if x < limit {
                return lo + x % span;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `a op b op c …` with × before + and −: an independent check
    /// of the stored answers.
    fn eval(expression: &str) -> i64 {
        let tokens: Vec<&str> = expression.split(' ').collect();
        let mut terms: Vec<(i64, i64)> = Vec::new(); // (sign, product)
        let mut sign = 1;
        let mut i = 0;
        while i < tokens.len() {
            let mut value: i64 = tokens[i].parse().unwrap();
            while i + 2 < tokens.len() && tokens[i + 1] == "×" {
                value *= tokens[i + 2].parse::<i64>().unwrap();
                i += 2;
            }
            terms.push((sign, value));
            if i + 1 < tokens.len() {
                sign = if tokens[i + 1] == "-" { -1 } else { 1 };
            }
            i += 2;
        }
        terms.iter().map(|(s, v)| s * v).sum()
    }

    #[test]
    fn answers_match_their_expressions() {
        for d in 1..=MAX_DIFFICULTY {
            for i in 0..300 {
                let p = problem(7, d, i);
                let Reference::Math { answer } = &p.reference else {
                    panic!()
                };
                let expr = p.metadata["expression"].as_str().unwrap();
                assert_eq!(
                    answer.parse::<i64>().unwrap(),
                    eval(expr),
                    "{}: {expr}",
                    p.id
                );
                assert!(eval(expr) >= 0);
            }
        }
    }

    #[test]
    fn same_seed_same_problems_and_counts_extend() {
        let small = ArithConfig {
            seed: 3,
            per_difficulty: 4,
            difficulties: vec![1, 5],
        };
        let big = ArithConfig {
            per_difficulty: 9,
            ..small.clone()
        };
        assert_eq!(generate(&small), generate(&small));
        let big = generate(&big);
        assert_eq!(generate(&small)[..4], big[..4]);
        let other = generate(&ArithConfig {
            seed: 4,
            ..small.clone()
        });
        assert_ne!(generate(&small), other);
    }

    #[test]
    fn uniform_range_covers_its_ends() {
        let mut rng = SplitMix64::new(0, 1, 0);
        let draws: Vec<u64> = (0..1000).map(|_| rng.range(3, 5)).collect();
        for v in 3..=5 {
            assert!(draws.contains(&v));
        }
        assert!(draws.iter().all(|v| (3..=5).contains(v)));
    }
}
