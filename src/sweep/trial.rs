//! Trials and their ids. A trial is one point of the grid (model, task,
//! policy, CR, W, L, sampling, seed); its id is a stable hash of those
//! resolved parameters, so a rerun finds its records and a changed
//! parameter never reuses them.
//!
//! Trials that differ only in W form a *width group*. Within a group the
//! samples of a problem are decoded in batches ([`BatchPlan`]): without
//! nested widths one batch of W per trial; with nested widths the widths
//! `w1 < w2 < …` are cut into chunks `[0, w1)`, `[w1, w2)`, …, each decoded
//! once, and trial `wk`'s samples are the chunks up to `wk`. Sample `i` uses
//! random stream `(repeat << 32) | i` either way (see [`stream`]), so it is
//! the same tokens in every trial of its group.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::plan::{Checkpoint, Dtype};
use crate::device::DeviceKind;
use crate::generate::SamplingParams;
use crate::kv::CachePolicy;
use crate::record::canonical_json;

/// The resolved parameters a trial id is the hash of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialSpec {
    /// Model identity (name and weight hash), of the DMS checkpoint for DMS.
    pub model: String,
    /// Hashed as its numerics ([`Dtype::numerics`]): `quantized` blocks and
    /// f32 weights give the same tokens, as runs recorded before
    /// `quantized` had its own name (when `dtype = "f32"` meant the blocks)
    /// did; the device is left out of the id for the same reason.
    #[serde(serialize_with = "numerics")]
    pub dtype: Dtype,
    pub task: String,
    pub task_version: String,
    /// The full policy, budget included.
    pub policy: CachePolicy,
    /// Target CR (`None` for dense).
    pub cr: Option<f64>,
    /// W.
    pub width: usize,
    /// L.
    pub max_tokens: usize,
    pub sampling: SamplingSpec,
}

/// Sampling as hashed: floats are the decimals written in the config (an
/// `f32` widened through its shortest decimal form, so `0.95` stays `0.95`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SamplingSpec {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub seed: u64,
}

impl SamplingSpec {
    pub fn new(p: &SamplingParams) -> Self {
        let widen = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
        SamplingSpec {
            temperature: widen(p.temperature),
            top_p: widen(p.top_p),
            top_k: p.top_k,
            seed: p.seed,
        }
    }
}

impl TrialSpec {
    /// Compact JSON of the spec with object keys sorted.
    pub fn canonical_json(&self) -> String {
        let v = serde_json::to_value(self).expect("a trial spec is plain data");
        canonical_json(&v)
    }

    /// `t` + the first 16 hex digits of SHA-256 of [`Self::canonical_json`].
    pub fn id(&self) -> String {
        format!("t{}", short_hash(&self.canonical_json()))
    }

    /// `g` + the hash of the spec with `width` set to 0: shared by trials
    /// that differ only in W.
    pub fn group_id(&self) -> String {
        let mut s = self.clone();
        s.width = 0;
        format!("g{}", short_hash(&s.canonical_json()))
    }
}

fn numerics<S: serde::Serializer>(dtype: &Dtype, s: S) -> Result<S::Ok, S::Error> {
    dtype.numerics().serialize(s)
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// One trial as run.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub id: String,
    pub group: String,
    pub spec: TrialSpec,
    /// Method name as configured.
    pub method: String,
    pub checkpoint: Checkpoint,
    /// The model path to load (the DMS checkpoint's for DMS).
    pub model_path: String,
    pub device: DeviceKind,
    /// Sampling as given to the generator (the seed included).
    pub sampling: SamplingParams,
    /// `task method crX WN LM seedS`, for people.
    pub label: String,
}

/// Random stream of sample `sample` of repeat `repeat`.
pub fn stream(repeat: u32, sample: u32) -> u64 {
    (u64::from(repeat) << 32) | u64::from(sample)
}

/// `(repeat, sample)` of a random stream.
pub fn split_stream(stream: u64) -> (u32, u32) {
    ((stream >> 32) as u32, stream as u32)
}

/// One batch of a width group: samples `first..first + samples` decoded
/// together, recorded for each trial in `targets` (indices into the group's
/// trials, ascending W).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub first: u32,
    pub samples: u32,
    /// The trial whose parameters the batch is decoded with.
    pub owner: usize,
    pub targets: Vec<usize>,
}

/// The batches of a group with ascending `widths`.
pub fn batch_plans(widths: &[usize], nested: bool) -> Vec<BatchPlan> {
    let mut out = Vec::new();
    let mut prev = 0u32;
    for (k, &w) in widths.iter().enumerate() {
        let w = w as u32;
        out.push(if nested {
            BatchPlan {
                first: prev,
                samples: w - prev,
                owner: k,
                targets: (k..widths.len()).collect(),
            }
        } else {
            BatchPlan {
                first: 0,
                samples: w,
                owner: k,
                targets: vec![k],
            }
        });
        prev = w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Budget;

    fn spec() -> TrialSpec {
        TrialSpec {
            model: "m@sha256:ab".into(),
            dtype: Dtype::F32,
            task: "aime24".into(),
            task_version: "1".into(),
            policy: CachePolicy::Tova {
                budget: Budget::Ratio {
                    cr: 4.0,
                    min_tokens: 16,
                },
                granularity: crate::kv::TovaGranularity::Layer,
            },
            cr: Some(4.0),
            width: 2,
            max_tokens: 64,
            sampling: SamplingSpec::new(&SamplingParams {
                temperature: 0.5,
                top_p: 0.95,
                top_k: 0,
                seed: 7,
            }),
        }
    }

    #[test]
    fn trial_id_is_the_hash_of_the_documented_canonical_form() {
        // Written out by hand: sorted keys, compact, serde's float forms.
        let canonical = concat!(
            r#"{"cr":4.0,"dtype":"f32","max_tokens":64,"model":"m@sha256:ab","#,
            r#""policy":{"budget":{"cr":4.0,"kind":"ratio","min_tokens":16},"#,
            r#""granularity":"layer","policy":"tova"},"#,
            r#""sampling":{"seed":7,"temperature":0.5,"top_k":0,"top_p":0.95},"#,
            r#""task":"aime24","task_version":"1","width":2}"#
        );
        assert_eq!(spec().canonical_json(), canonical);
        let expect = hex::encode(&Sha256::digest(canonical.as_bytes())[..8]);
        assert_eq!(spec().id(), format!("t{expect}"));
    }

    #[test]
    fn every_parameter_changes_the_id_and_only_width_keeps_the_group() {
        let base = spec();
        let mut variants = Vec::new();
        let mut s = base.clone();
        s.width = 4;
        assert_eq!(s.group_id(), base.group_id());
        variants.push(s);
        let mut s = base.clone();
        s.sampling.seed = 8;
        variants.push(s);
        let mut s = base.clone();
        s.task_version = "2".into();
        variants.push(s);
        let mut s = base.clone();
        s.model = "m@sha256:cd".into();
        variants.push(s);
        let mut s = base.clone();
        s.max_tokens = 65;
        variants.push(s);
        let mut s = base.clone();
        s.dtype = Dtype::Bf16;
        variants.push(s);
        for v in &variants {
            assert_ne!(v.id(), base.id(), "{v:?}");
        }
        for v in &variants[1..] {
            assert_ne!(v.group_id(), base.group_id(), "{v:?}");
        }
    }

    #[test]
    fn nested_batches_are_chunks_and_plain_batches_are_whole_widths() {
        let nested = batch_plans(&[1, 2, 4], true);
        let firsts: Vec<(u32, u32, Vec<usize>)> = nested
            .iter()
            .map(|b| (b.first, b.samples, b.targets.clone()))
            .collect();
        assert_eq!(
            firsts,
            vec![(0, 1, vec![0, 1, 2]), (1, 1, vec![1, 2]), (2, 2, vec![2])]
        );
        let plain = batch_plans(&[1, 2, 4], false);
        assert!(
            plain
                .iter()
                .all(|b| b.first == 0 && b.targets == vec![b.owner])
        );
        assert_eq!(plain.iter().map(|b| b.samples).sum::<u32>(), 7);
        // Every (trial, sample) is produced by exactly one batch.
        for plans in [&nested, &plain] {
            for (t, &w) in [1u32, 2, 4].iter().enumerate() {
                for i in 0..w {
                    let n = plans
                        .iter()
                        .filter(|b| {
                            b.targets.contains(&t) && (b.first..b.first + b.samples).contains(&i)
                        })
                        .count();
                    assert_eq!(n, 1);
                }
            }
        }
    }

    #[test]
    fn streams_split_back() {
        assert_eq!(stream(3, 5), (3 << 32) | 5);
        assert_eq!(split_stream(stream(3, 5)), (3, 5));
    }
}
