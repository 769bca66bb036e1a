//! `hyperscale bench throughput`: the paper's claim as a speed figure —
//! decode tokens/s of a compressed cache against dense **at equal KV
//! memory**.
//!
//! Each side (dense, then the policy) fills a KV memory of `kv_memory`
//! bytes with as many sequences of `context` positions as fit, and decodes
//! them together. How many fit is measured, not estimated: a probe
//! sequence is prefilled and decoded exactly as a benchmarked one will be
//! (prompt of `context − decoded` tokens, then the warm-up and timed steps,
//! so it ends at `context` positions), and the store's resident entries it
//! added (× `2 × head_dim × 4` bytes, Quest page bounds included) are the
//! bytes one sequence needs; `⌊kv_memory / that⌋` sequences run. After the
//! run the store's resident bytes are read again and reported
//! ([`ThroughputSide::kv_bytes_resident`]), so a policy whose size varies
//! per prompt (DMS) shows whether it stayed inside the memory. The
//! transient memory of prefilling one prompt is outside the budget, as in a
//! serving engine.
//!
//! How the sequences get their KV ([`ThroughputConfig::distinct_prompts`]):
//! by default each side prefills one prompt once and every other sequence
//! (the probe included) is a [`KvStore::copy_sequence`] of it — its own
//! blocks, entries and policy state, not shared ones — so the store counts
//! and the kernels read each sequence's entries exactly as for prompts
//! prefilled one by one, at the cost of one prefill per side (16 384
//! positions: two prefills instead of ten or more). With `distinct_prompts`
//! every sequence (and the probe, in a store of its own) prefills its own
//! prompt, so a policy whose size depends on the prompt (DMS) varies per
//! sequence as it would in service.
//!
//! Dense and the policy decode in alternated rounds (the order flips every
//! round, so a drift of the machine's speed hits both), and every figure is
//! the median over rounds. Tokens/s count one token per sequence per step;
//! each sequence decodes its own token, so copies diverge from the first
//! step.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::decode::prompt_ids;
use super::stats::median;
use crate::generate::Decoder;
use crate::kv::{CachePolicy, KvError, KvStore, SeqId};
use crate::profile;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputConfig {
    /// KV memory in bytes both sides get; `None`: the measured bytes of one
    /// dense sequence of `context` positions.
    pub kv_memory: Option<u64>,
    /// Positions each sequence holds when the last timed step is done.
    pub context: usize,
    /// The compressed side (dense is always the other).
    pub policy: CachePolicy,
    /// Alternated rounds per side; the median is reported (at least 3).
    pub rounds: usize,
    /// Timed decode steps per round.
    pub steps: usize,
    /// Untimed decode steps per side before the first round.
    pub warmup_steps: usize,
    /// Seed of the prompt ids (sequence `i` uses `seed + i`).
    pub seed: u64,
    /// Prefill a distinct prompt for every sequence instead of copying one
    /// prefilled prompt's KV (see the module docs).
    #[serde(default)]
    pub distinct_prompts: bool,
}

impl ThroughputConfig {
    /// Decode steps every sequence takes: warm-up plus every round's.
    pub fn decoded(&self) -> usize {
        self.warmup_steps + self.rounds * self.steps
    }
}

/// One side's figures (medians over rounds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSide {
    pub policy: CachePolicy,
    /// Sequences in flight: `⌊kv_memory / kv_bytes_per_sequence⌋`.
    pub sequences: usize,
    /// Decode tokens per second of the whole batch (median round).
    pub tokens_per_s: f64,
    /// Each round's tokens per second, in round order.
    pub round_tokens_per_s: Vec<f64>,
    /// Median wall time of one decode step of the batch.
    pub step_ms: f64,
    /// KV bytes one sequence holds at `context` positions, measured from
    /// the store on the probe sequence.
    pub kv_bytes_per_sequence: u64,
    /// The store's resident KV bytes with every sequence at `context`
    /// positions (after the last round).
    pub kv_bytes_resident: u64,
    /// Positions seen per entry kept (1 for dense), from the store.
    pub compression_ratio: f64,
    /// `(weight bytes + KV bytes read) per step / sequences`.
    pub bytes_per_token: u64,
    /// The KV part of `bytes_per_token` (median step's reads, counted by
    /// the store).
    pub kv_bytes_read_per_token: u64,
    /// Mean ms per step in the projections (linear layers, lm head).
    pub projection_ms: f64,
    /// Mean ms per step in the decode-attention kernel.
    pub attention_ms: f64,
}

/// Dense and the policy at equal KV memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    pub context: usize,
    /// The KV memory both sides filled, in bytes.
    pub kv_memory: u64,
    pub rounds: usize,
    pub steps: usize,
    /// Weight bytes one decode step streams (shared by the batch).
    pub weight_bytes_per_step: u64,
    pub dense: ThroughputSide,
    pub policy: ThroughputSide,
    /// `policy.tokens_per_s / dense.tokens_per_s`.
    pub ratio: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    #[error(
        "--context {context}: must exceed the {decoded} decoded steps (warm-up + rounds × steps)"
    )]
    ContextTooShort { context: usize, decoded: usize },
    #[error("--rounds {0}: at least 3 alternated rounds are needed for a median")]
    TooFewRounds(usize),
    #[error("--steps 0: a round times at least one decode step")]
    NoSteps,
    #[error(
        "--kv-memory {kv_memory}: one {policy} sequence of {context} positions needs {per_sequence} bytes"
    )]
    MemoryTooSmall {
        kv_memory: u64,
        policy: String,
        context: usize,
        per_sequence: u64,
    },
    #[error("the KV store for the {policy} side")]
    Store {
        policy: String,
        #[source]
        source: KvError,
    },
}

/// A side while it runs.
struct Running {
    policy: CachePolicy,
    store: KvStore,
    seqs: Vec<SeqId>,
    tokens: Vec<u32>,
    per_sequence: u64,
    /// The KV memory the side filled.
    kv_memory: u64,
    rounds: Vec<f64>,
    step_s: Vec<f64>,
    reads: Vec<f64>,
    phase_ns: [u64; 2],
}

fn name(policy: &CachePolicy) -> String {
    policy.method().to_string()
}

/// A new sequence of `store` prefilled with prompt `index` (`context −
/// decoded` tokens).
fn prefill<M: Decoder>(
    model: &M,
    store: &mut KvStore,
    index: u64,
    config: &ThroughputConfig,
) -> SeqId {
    let seq = store.add_sequence();
    let len = config.context - config.decoded();
    let prompt = prompt_ids(len, model.vocab_size(), config.seed.wrapping_add(index));
    std::hint::black_box(model.prefill(store, seq, &prompt));
    seq
}

/// Measured KV bytes of one sequence of `config.context` positions under
/// `policy`: a probe prefilled (or copied from `source`, a prefilled
/// sequence of `store`) and decoded as a benchmarked one will be, then
/// released. The store's resident entries it added are its bytes.
fn probe<M: Decoder>(
    model: &M,
    store: &mut KvStore,
    source: Option<SeqId>,
    config: &ThroughputConfig,
) -> u64 {
    let before = store.store_stats().resident;
    let seq = match source {
        Some(s) => store.copy_sequence(s),
        None => prefill(model, store, 0, config),
    };
    let token = prompt_ids(1, model.vocab_size(), config.seed ^ 0xA5A5);
    for _ in 0..config.decoded() {
        std::hint::black_box(model.decode(store, &[seq], &token));
    }
    let bytes = (store.store_stats().resident - before) * store.entry_bytes();
    store.release(seq);
    bytes
}

impl Running {
    /// Measure one sequence's bytes under `policy`, fill `kv_memory`
    /// (`None`: those bytes, one sequence) with as many sequences as fit and
    /// warm them up.
    fn fill<M: Decoder>(
        model: &M,
        new_store: &dyn Fn(&CachePolicy) -> Result<KvStore, KvError>,
        policy: CachePolicy,
        kv_memory: Option<u64>,
        config: &ThroughputConfig,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self, ThroughputError> {
        let store_for = |policy: &CachePolicy| {
            new_store(policy).map_err(|source| ThroughputError::Store {
                policy: name(policy),
                source,
            })
        };
        // With a budget, the device pools are allocated once for it (the
        // sequences that fit it never make a pool grow by copying).
        let mut store = match kv_memory {
            Some(bytes) => store_for(&policy)?.with_device_pool_bytes(bytes),
            None => store_for(&policy)?,
        };
        let (per_sequence, source) = if config.distinct_prompts {
            progress(&format!(
                "measuring one {} sequence's KV bytes",
                name(&policy)
            ));
            (probe(model, &mut store_for(&policy)?, None, config), None)
        } else {
            progress(&format!("prefilling one {} sequence", name(&policy)));
            let source = prefill(model, &mut store, 0, config);
            (probe(model, &mut store, Some(source), config), Some(source))
        };
        let kv_memory = kv_memory.unwrap_or(per_sequence);
        let n = (kv_memory / per_sequence.max(1)) as usize;
        if n == 0 {
            return Err(ThroughputError::MemoryTooSmall {
                kv_memory,
                policy: name(&policy),
                context: config.context,
                per_sequence,
            });
        }
        let seqs: Vec<SeqId> = match source {
            Some(source) => {
                progress(&format!("copying it into {n} sequences"));
                std::iter::once(source)
                    .chain((1..n).map(|_| store.copy_sequence(source)))
                    .collect()
            }
            None => {
                progress(&format!("prefilling {n} {} sequences", name(&policy)));
                (0..n)
                    .map(|i| prefill(model, &mut store, i as u64, config))
                    .collect()
            }
        };
        let tokens = prompt_ids(n, model.vocab_size(), config.seed ^ 0xA5A5);
        for _ in 0..config.warmup_steps {
            std::hint::black_box(model.decode(&mut store, &seqs, &tokens));
        }
        Ok(Self {
            policy,
            store,
            seqs,
            tokens,
            per_sequence,
            kv_memory,
            rounds: Vec::new(),
            step_s: Vec::new(),
            reads: Vec::new(),
            phase_ns: [0; 2],
        })
    }

    /// One timed round of `steps` decode steps.
    fn round<M: Decoder>(&mut self, model: &M, steps: usize) {
        let mut total = 0.0;
        for _ in 0..steps {
            let before = self.store.store_stats().decode_reads;
            let _ = profile::take();
            profile::set_enabled(true);
            let t = Instant::now();
            let out = model.decode(&mut self.store, &self.seqs, &self.tokens);
            let dt = t.elapsed().as_secs_f64();
            profile::set_enabled(false);
            std::hint::black_box(&out);
            let phases = profile::take();
            self.phase_ns[0] += phases[0];
            self.phase_ns[1] += phases[1];
            self.reads
                .push((self.store.store_stats().decode_reads - before) as f64);
            self.step_s.push(dt);
            total += dt;
        }
        self.rounds
            .push((self.seqs.len() * steps) as f64 / total.max(f64::MIN_POSITIVE));
    }

    fn finish(self, weight_bytes_per_step: u64) -> ThroughputSide {
        let n = self.seqs.len() as u64;
        let kv_read = median(&self.reads) as u64 * self.store.entry_bytes();
        let steps = self.step_s.len() as f64;
        let [projection_ms, attention_ms] = self.phase_ns.map(|ns| ns as f64 / 1e6 / steps);
        let ratios: Vec<f64> = self
            .seqs
            .iter()
            .map(|&s| self.store.stats(s).compression_ratio())
            .collect();
        ThroughputSide {
            policy: self.policy,
            sequences: self.seqs.len(),
            tokens_per_s: median(&self.rounds),
            round_tokens_per_s: self.rounds,
            step_ms: median(&self.step_s) * 1e3,
            kv_bytes_per_sequence: self.per_sequence,
            kv_bytes_resident: self.store.store_stats().resident * self.store.entry_bytes(),
            compression_ratio: median(&ratios),
            bytes_per_token: (weight_bytes_per_step + kv_read) / n,
            kv_bytes_read_per_token: kv_read / n,
            projection_ms,
            attention_ms,
        }
    }
}

/// Run dense and `config.policy` at equal KV memory; `progress` gets a
/// line per phase (prefills take minutes at long contexts). Dense fills its
/// side first, so its measured bytes are the memory when
/// `config.kv_memory` is `None`.
///
/// `new_store` makes an empty store running a policy (DMS fields from the
/// model); `weight_bytes_per_step` is what one decode step streams.
pub fn run_throughput_bench<M: Decoder>(
    model: &M,
    weight_bytes_per_step: u64,
    config: &ThroughputConfig,
    new_store: &dyn Fn(&CachePolicy) -> Result<KvStore, KvError>,
    mut progress: impl FnMut(&str),
) -> Result<ThroughputReport, ThroughputError> {
    if config.rounds < 3 {
        return Err(ThroughputError::TooFewRounds(config.rounds));
    }
    if config.steps == 0 {
        return Err(ThroughputError::NoSteps);
    }
    if config.context <= config.decoded() {
        return Err(ThroughputError::ContextTooShort {
            context: config.context,
            decoded: config.decoded(),
        });
    }
    let dense = Running::fill(
        model,
        new_store,
        CachePolicy::Dense {},
        config.kv_memory,
        config,
        &mut progress,
    )?;
    let kv_memory = dense.kv_memory;
    let policy = Running::fill(
        model,
        new_store,
        config.policy.clone(),
        Some(kv_memory),
        config,
        &mut progress,
    )?;
    let mut sides = [dense, policy];
    for r in 0..config.rounds {
        progress(&format!("round {}/{}", r + 1, config.rounds));
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            sides[i].round(model, config.steps);
        }
    }
    let [dense, policy] = sides.map(|s| s.finish(weight_bytes_per_step));
    Ok(ThroughputReport {
        context: config.context,
        kv_memory,
        rounds: config.rounds,
        steps: config.steps,
        weight_bytes_per_step,
        ratio: policy.tokens_per_s / dense.tokens_per_s,
        dense,
        policy,
    })
}

impl fmt::Display for ThroughputReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "KV memory {:.1} MB, {} positions per sequence; medians of {} alternated rounds × {} steps",
            self.kv_memory as f64 / 1e6,
            self.context,
            self.rounds,
            self.steps
        )?;
        writeln!(
            f,
            "| side | sequences | tokens/s | step ms | KV MB/sequence | KV MB resident | CR | MB moved/token | projections ms | attention ms |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for s in [&self.dense, &self.policy] {
            writeln!(
                f,
                "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                name(&s.policy),
                s.sequences,
                s.tokens_per_s,
                s.step_ms,
                s.kv_bytes_per_sequence as f64 / 1e6,
                s.kv_bytes_resident as f64 / 1e6,
                s.compression_ratio,
                s.bytes_per_token as f64 / 1e6,
                s.projection_ms,
                s.attention_ms,
            )?;
        }
        write!(
            f,
            "ratio ({} ÷ dense tokens/s): {:.2}×",
            name(&self.policy.policy),
            self.ratio
        )
    }
}

/// `"189MB"`, `"2GiB"`, `"1e9"` or `"123456"` → bytes (SI `kB`/`MB`/`GB`,
/// binary `KiB`/`MiB`/`GiB`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (expected B, kB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of bytes, e.g. 189MB or 2GiB"))?;
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("`{s}`: must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Budget;
    use crate::model::Transformer;
    use crate::model::synthetic::{RandomWeights, SyntheticSpec};
    use burn::backend::flex::Flex;

    #[test]
    fn parse_bytes_units() {
        assert_eq!(parse_bytes("189MB"), Ok(189_000_000));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1e3"), Ok(1000));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert!(parse_bytes("3 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
    }

    /// A 2-layer model of a synthetic preset's shape (`+dms` for DMS).
    fn small_model(name: &str) -> Transformer<Flex> {
        let mut spec = SyntheticSpec::parse(name).unwrap().unwrap();
        spec.config.num_layers = 2;
        spec.config.vocab_size = 300;
        Transformer::load(
            &spec.config,
            &RandomWeights::new(&spec, 3),
            &Default::default(),
        )
        .unwrap()
    }

    fn tova_cr(cr: f64) -> CachePolicy {
        CachePolicy::Tova {
            budget: Budget::Ratio { cr, min_tokens: 4 },
            granularity: Default::default(),
        }
    }

    /// A 2-layer SmolLM2-shaped model: at equal memory a CR 4 TOVA cache
    /// fits more sequences than dense, the JSON carries the documented
    /// fields, and `ratio` is the quotient of the two sides' tokens/s —
    /// with copied KV (the default) and with distinct prompts alike.
    #[test]
    fn tova_fits_more_sequences_than_dense_at_equal_memory() {
        for distinct_prompts in [false, true] {
            tova_at_equal_memory(distinct_prompts);
        }
    }

    fn tova_at_equal_memory(distinct_prompts: bool) {
        let model = small_model("synthetic:smollm2-135m");
        let shape = model.kv_shape();
        let config = ThroughputConfig {
            kv_memory: None,
            context: 64,
            policy: tova_cr(4.0),
            rounds: 3,
            steps: 2,
            warmup_steps: 1,
            seed: 0,
            distinct_prompts,
        };
        let new_store = |p: &CachePolicy| KvStore::with_policy(shape, p, None);
        let report = run_throughput_bench(&model, 1000, &config, &new_store, |_| {}).unwrap();
        let rows = (shape.layers * shape.kv_heads) as u64;
        let entry = (2 * shape.head_dim * 4) as u64;
        // One dense sequence of 64 positions is the memory; TOVA keeps 16.
        assert_eq!(report.kv_memory, 64 * rows * entry);
        assert_eq!(report.dense.sequences, 1);
        assert_eq!(report.dense.kv_bytes_per_sequence, report.kv_memory);
        assert_eq!(report.policy.kv_bytes_per_sequence, 16 * rows * entry);
        assert!(report.policy.sequences >= report.dense.sequences);
        assert_eq!(report.policy.sequences, 4);
        assert!(report.policy.kv_bytes_resident <= report.kv_memory);
        assert_eq!(report.dense.round_tokens_per_s.len(), 3);
        let json = serde_json::to_value(&report).unwrap();
        for side in ["dense", "policy"] {
            for field in [
                "sequences",
                "tokens_per_s",
                "kv_bytes_per_sequence",
                "bytes_per_token",
            ] {
                assert!(json[side][field].is_number(), "{side}.{field}: {json}");
            }
        }
        let ratio = json["ratio"].as_f64().unwrap();
        let quotient = json["policy"]["tokens_per_s"].as_f64().unwrap()
            / json["dense"]["tokens_per_s"].as_f64().unwrap();
        assert!(
            (ratio - quotient).abs() <= 1e-12 * quotient,
            "{ratio} {quotient}"
        );
        assert!(report.to_string().contains("| tova | 4 |"), "{report}");
    }

    /// A copied sequence is counted and read as a prefilled one: for dense,
    /// TOVA and DMS, a store holding a prefilled prompt and a copy of it
    /// matches, step for step over several decode steps, a store where the
    /// prompt was prefilled twice — same per-sequence counters (entries,
    /// row lengths, positions, peak), same resident entries and decode reads
    /// of the store, same logits bit for bit — and the copy owns its blocks
    /// (nothing shared with the source).
    #[test]
    fn copied_sequence_counts_and_reads_as_a_prefilled_one() {
        let dms = CachePolicy::Dms {
            window: Some(4),
            shifted: None,
        };
        for (model, policy) in [
            ("synthetic:smollm2-135m", CachePolicy::Dense {}),
            ("synthetic:smollm2-135m", tova_cr(4.0)),
            ("synthetic:smollm2-135m+dms", dms),
        ] {
            let model = small_model(model);
            let new_store =
                || KvStore::with_policy(model.kv_shape(), &policy, model.dms_params()).unwrap();
            let prompt = prompt_ids(70, model.vocab_size(), 11);
            let mut twice = new_store();
            let a = [twice.add_sequence(), twice.add_sequence()];
            for &s in &a {
                model.prefill(&mut twice, s, &prompt);
            }
            let mut copied = new_store();
            let source = copied.add_sequence();
            model.prefill(&mut copied, source, &prompt);
            let b = [source, copied.copy_sequence(source)];
            assert_eq!(copied.store_stats().cow_copies, 0);
            let tokens = prompt_ids(2, model.vocab_size(), 5);
            for step in 0..=6 {
                let what = format!("{policy:?} after {step} decode steps");
                for (&x, &y) in a.iter().zip(&b) {
                    let (sx, sy) = (twice.stats(x), copied.stats(y));
                    assert_eq!(sx.resident, sy.resident, "{what}");
                    assert_eq!(sx.row_len, sy.row_len, "{what}");
                    assert_eq!(sx.positions, sy.positions, "{what}");
                    assert_eq!(sx.peak_resident, sy.peak_resident, "{what}");
                    assert_eq!(sx.decode_reads, sy.decode_reads, "{what}");
                    let row = |seq| crate::kv::RowId {
                        seq,
                        layer: 1,
                        head: 2,
                    };
                    assert_eq!(
                        twice.row_positions(row(x)).unwrap(),
                        copied.row_positions(row(y)).unwrap(),
                        "{what}"
                    );
                    assert_eq!(
                        twice.read_row(row(x)).unwrap(),
                        copied.read_row(row(y)).unwrap(),
                        "{what}"
                    );
                }
                let (tx, ty) = (twice.store_stats(), copied.store_stats());
                assert_eq!(tx.resident, ty.resident, "{what}");
                assert_eq!(tx.blocks, ty.blocks, "{what}: the copy owns its blocks");
                assert_eq!(tx.decode_reads, ty.decode_reads, "{what}");
                if step < 6 {
                    let lx = Decoder::decode(&model, &mut twice, &a, &tokens);
                    let ly = Decoder::decode(&model, &mut copied, &b, &tokens);
                    assert_eq!(lx, ly, "{what}");
                }
            }
            assert!(twice.stats(a[1]).prefill_reads > 0);
            assert_eq!(copied.stats(b[1]).prefill_reads, 0, "a copy reads nothing");
            copied.audit().unwrap();
        }
    }
}
