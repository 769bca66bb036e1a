//! Training text: documents (a text or JSONL file, or self-distilled
//! completions) tokenised, concatenated with EOS between them, and cut into
//! fixed-length sequences; the KL mask; the seeded order of sequences.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::TrainError;

/// One training document.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Text(String),
    /// Token ids as written by self-distillation (`tokens` field).
    Tokens(Vec<u32>),
}

/// Documents of a data file: one per line of a `.jsonl` file (its `tokens`
/// id array, its `text` field, or `prompt` + `completion`), else the whole
/// file as one document.
pub fn read_documents(path: &Path) -> Result<Vec<Document>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::ReadData {
        path: path.to_path_buf(),
        source,
    })?;
    if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
        return Ok(vec![Document::Text(text)]);
    }
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TrainError::BadData {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if let Some(ids) = v.get("tokens") {
            let ids: Vec<u32> =
                serde_json::from_value(ids.clone()).map_err(|e| bad(format!("`tokens`: {e}")))?;
            docs.push(Document::Tokens(ids));
            continue;
        }
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let doc = match (field("text"), field("prompt"), field("completion")) {
            (Some(t), _, _) => Document::Text(t),
            (None, Some(p), Some(c)) => Document::Text(p + &c),
            _ => {
                return Err(bad(
                    "expected a `text` or `prompt` + `completion` string".into()
                ));
            }
        };
        docs.push(doc);
    }
    Ok(docs)
}

/// Concatenates `docs` (each followed by `eos` when given and not already
/// there) and cuts the stream into `seq_len`-token sequences; a final
/// partial sequence is kept when it has at least 2 tokens.
pub fn pack(docs: &[Vec<u32>], eos: Option<u32>, seq_len: usize) -> Vec<Vec<u32>> {
    let mut stream = Vec::new();
    for d in docs {
        stream.extend_from_slice(d);
        if let Some(e) = eos
            && d.last() != Some(&e)
        {
            stream.push(e);
        }
    }
    stream
        .chunks(seq_len)
        .filter(|c| c.len() >= 2)
        .map(<[u32]>::to_vec)
        .collect()
}

/// KL mask: position i counts unless its token is one of `excluded` (EOS,
/// pad): the distribution after a document's end is not the model's.
pub fn kl_mask(tokens: &[u32], excluded: &[u32]) -> Vec<bool> {
    tokens.iter().map(|t| !excluded.contains(t)).collect()
}

/// The order sequences are visited in: a fresh seeded permutation per epoch.
#[derive(Debug, Clone)]
pub struct Order {
    n: usize,
    seed: u64,
    epoch: usize,
    perm: Vec<usize>,
}

impl Order {
    /// # Panics
    /// If `n` is 0.
    pub fn new(n: usize, seed: u64) -> Self {
        assert!(n > 0, "no sequences");
        let mut o = Self {
            n,
            seed,
            epoch: usize::MAX,
            perm: Vec::new(),
        };
        o.shuffle(0);
        o
    }

    fn shuffle(&mut self, epoch: usize) {
        let mut perm: Vec<usize> = (0..self.n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        perm.shuffle(&mut rng);
        self.perm = perm;
        self.epoch = epoch;
    }

    /// The sequence index of draw `step` (a step of batch b draws
    /// `step·b … step·b + b − 1`).
    pub fn at(&mut self, step: usize) -> usize {
        let epoch = step / self.n;
        if epoch != self.epoch {
            self.shuffle(epoch);
        }
        self.perm[step % self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_with_eos_and_masks_it() {
        let seqs = pack(&[vec![5, 6, 7], vec![8, 2]], Some(2), 4);
        assert_eq!(seqs, vec![vec![5, 6, 7, 2], vec![8, 2]]);
        assert_eq!(kl_mask(&seqs[0], &[2]), vec![true, true, true, false]);
    }

    #[test]
    fn order_visits_every_sequence_once_per_epoch() {
        let mut o = Order::new(5, 3);
        let mut first: Vec<usize> = (0..5).map(|s| o.at(s)).collect();
        first.sort_unstable();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        let mut again = Order::new(5, 3);
        assert_eq!(o.at(7), again.at(7));
    }
}
