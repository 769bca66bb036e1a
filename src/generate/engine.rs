//! The decode loop: requests in, [`Completion`]s out.
//!
//! Each request's prompt is prefilled once into its own sequence; the W
//! samples are forks of it, so they share the prompt's KV (counted once in
//! the store's peak). All live samples of all requests are decoded together,
//! one token each per step; a finished sample leaves the batch and its
//! entries are released.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{FinishReason, Sampler, SamplingParams, StopCriteria, sample_rows};
use crate::kv::{KvShape, KvStats, KvStore, SeqId};

/// What generation needs from a model.
pub trait Decoder {
    fn kv_shape(&self) -> KvShape;
    fn vocab_size(&self) -> usize;
    /// Prefill `tokens` into `seq`; return the logits of the last position.
    ///
    /// # Shapes
    /// returns `[vocab]`.
    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32>;
    /// Feed one token per sequence; return their next-token logits.
    ///
    /// # Shapes
    /// `seqs`, `tokens`: `[batch]`; returns `[batch * vocab]`, row-major.
    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32>;
    /// Bytes of weights one decode step reads (once, whatever the batch),
    /// for dividing a step's wall time among its sequences
    /// ([`attribute_step`]). Default 0: by KV bytes alone.
    fn weight_bytes(&self) -> u64 {
        0
    }
    /// Whether a prompt prefilled in pieces under `policy` gives exactly
    /// what it gives in one piece (logits, kept entries, counters, bit for
    /// bit), so the scheduler may prefill it between decode steps
    /// ([`super::SchedulerOptions::prefill_chunk`]). Default:
    /// [`super::chunks_prefill`], which the real models' prefill meets.
    fn chunks_prefill(&self, policy: &crate::kv::ResolvedPolicy) -> bool {
        super::chunks_prefill(policy)
    }
}

/// Token ids to text (special tokens skipped).
pub trait TextDecoder {
    fn decode(&self, ids: &[u32]) -> String;
}

/// One prompt and how to sample it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: Vec<u32>,
    /// W: parallel samples of this prompt.
    pub samples: usize,
    /// Index of the first sample; sample `i` of the request uses random
    /// stream `first_sample + i`, so a wider run reuses a narrower one's
    /// samples.
    pub first_sample: u64,
    /// L: the most new tokens per sample.
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: StopCriteria,
}

/// Wall-clock time of one sample, and how full its batch was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Prefill of the (shared) prompt.
    pub prefill_seconds: f64,
    /// The sample's share of the decode steps it was in, in proportion to
    /// the bytes it made each step move ([`attribute_step`]); alone in a
    /// step, the step's whole wall time.
    pub decode_seconds: f64,
    /// Generated tokens per decode second (0 when nothing was decoded).
    pub decode_tokens_per_second: f64,
    /// Mean sequences in flight over the sample's decode steps (0 when it
    /// had none).
    pub occupancy: f64,
}

/// One finished sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Index of the request in the input slice.
    pub request: usize,
    /// Sample index (random stream) within the request.
    pub sample: u64,
    pub text: String,
    /// Generated ids, the EOS token included when there was one.
    pub token_ids: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// The sample's KV budget as counted by the store.
    pub kv: KvStats,
    /// Peak entries of the whole store while this request's batch ran (the
    /// W samples' shared prompt counted once).
    pub batch_peak_resident: u64,
    pub timing: Timing,
}

/// A token as it is produced, for streaming.
#[derive(Debug, Clone, Copy)]
pub struct TokenEvent {
    pub request: usize,
    pub sample: u64,
    pub token: u32,
}

/// One sample in the batch (shared with the continuous scheduler).
pub(super) struct Live {
    pub(super) request: usize,
    pub(super) sample: u64,
    pub(super) seq: SeqId,
    pub(super) sampler: Sampler,
    pub(super) tokens: Vec<u32>,
    pub(super) decode_seconds: f64,
    /// Σ batch size over the decode steps the sample was in.
    pub(super) occupancy_sum: u64,
}

/// Generate every sample of every request. `store` holds the cache policy and
/// must be empty and shaped for `model`.
pub fn generate<M: Decoder, T: TextDecoder>(
    model: &M,
    text: &T,
    store: &mut KvStore,
    requests: &[Request],
    mut on_token: impl FnMut(TokenEvent),
) -> Vec<Completion> {
    let mut live: Vec<Live> = Vec::new();
    let mut done: Vec<Completion> = Vec::new();
    let mut prefill_seconds = vec![0.0; requests.len()];

    for (r, req) in requests.iter().enumerate() {
        if req.samples == 0 {
            continue;
        }
        let (children, logits, seconds) = prefill_request(model, store, req);
        prefill_seconds[r] = seconds;
        start_samples(r, req, children, &logits, &mut live, &mut on_token);
    }

    loop {
        // Retire finished samples before paying for another step.
        let mut i = 0;
        while i < live.len() {
            let s = &live[i];
            let req = &requests[s.request];
            if let Some(reason) = finished(req, &s.tokens, text) {
                let s = live.swap_remove(i);
                let prefill = prefill_seconds[s.request];
                done.push(complete(s, reason, req, text, store, prefill));
            } else {
                i += 1;
            }
        }
        if live.is_empty() {
            break;
        }
        decode_step(model, store, &mut live, &mut on_token);
    }
    let peak = store.peak_resident();
    for c in &mut done {
        c.batch_peak_resident = peak;
    }
    done.sort_by_key(|c| (c.request, c.sample));
    done
}

/// Prefills `req`'s prompt into a new sequence of `store` (its own fork
/// group) and forks it into the request's W samples: their sequences, the
/// prompt's last logits row (`[vocab]`) and the prefill's wall seconds.
pub(super) fn prefill_request<M: Decoder>(
    model: &M,
    store: &mut KvStore,
    req: &Request,
) -> (Vec<SeqId>, Vec<f32>, f64) {
    let start = Instant::now();
    let parent = store.add_sequence();
    let logits = model.prefill(store, parent, &req.prompt);
    let children = store.fork(parent, req.samples);
    store.release(parent);
    (children, logits, start.elapsed().as_secs_f64())
}

/// Starts request `r`'s samples on their forked sequences: each draws its
/// first token from the prompt's last logits row (`[vocab]`) with its own
/// seeded sampler, reports it, and joins `live`.
pub(super) fn start_samples(
    r: usize,
    req: &Request,
    children: Vec<SeqId>,
    logits: &[f32],
    live: &mut Vec<Live>,
    on_token: &mut impl FnMut(TokenEvent),
) {
    let first = live.len();
    live.extend(children.into_iter().enumerate().map(|(i, seq)| {
        let sample = req.first_sample + i as u64;
        Live {
            request: r,
            sample,
            seq,
            sampler: Sampler::new(req.sampling, sample),
            tokens: Vec::new(),
            decode_seconds: 0.0,
            occupancy_sum: 0,
        }
    }));
    let started = &mut live[first..];
    let tokens = sample_rows(
        started
            .iter_mut()
            .map(|s| (&mut s.sampler, logits))
            .collect(),
    );
    for (s, token) in started.iter_mut().zip(tokens) {
        s.tokens.push(token);
        on_token(TokenEvent {
            request: r,
            sample: s.sample,
            token,
        });
    }
}

/// One batched decode step: every live sequence feeds its last token, then
/// samples its next from its own logits row (`[batch * vocab]`), is charged
/// its share of the step's wall time ([`attribute_step`]), and reports the
/// token.
pub(super) fn decode_step<M: Decoder>(
    model: &M,
    store: &mut KvStore,
    live: &mut [Live],
    on_token: &mut impl FnMut(TokenEvent),
) {
    let vocab = model.vocab_size();
    let seqs: Vec<SeqId> = live.iter().map(|s| s.seq).collect();
    let last: Vec<u32> = live
        .iter()
        .map(|s| *s.tokens.last().expect("sampled"))
        .collect();
    let reads_before: Vec<u64> = seqs.iter().map(|&s| store.decode_reads(s)).collect();
    let start = Instant::now();
    let logits = model.decode(store, &seqs, &last);
    let step = start.elapsed().as_secs_f64();
    let entry = store.entry_bytes();
    let kv_bytes: Vec<u64> = seqs
        .iter()
        .zip(&reads_before)
        .map(|(&s, &before)| (store.decode_reads(s) - before) * entry)
        .collect();
    let shares = attribute_step(step, &kv_bytes, model.weight_bytes());
    // Each sequence samples from its own row with its own stream, so
    // drawing them in parallel changes no token.
    let tokens = sample_rows(
        live.iter_mut()
            .zip(logits.chunks_exact(vocab))
            .map(|(s, row)| (&mut s.sampler, row))
            .collect(),
    );
    let batch = live.len() as u64;
    for ((s, token), share) in live.iter_mut().zip(tokens).zip(shares) {
        s.decode_seconds += share;
        s.occupancy_sum += batch;
        s.tokens.push(token);
        on_token(TokenEvent {
            request: s.request,
            sample: s.sample,
            token,
        });
    }
}

/// A decode step's wall time `seconds` divided among its sequences in
/// proportion to the bytes each made the step move: its KV bytes read
/// (`kv_bytes[i]`, counted by the store) plus an equal part of the weight
/// bytes the step read once for all (`weight_bytes / batch`). Equal parts
/// when nothing was counted. The shares add up to `seconds`.
pub fn attribute_step(seconds: f64, kv_bytes: &[u64], weight_bytes: u64) -> Vec<f64> {
    let n = kv_bytes.len();
    if n == 0 {
        return Vec::new();
    }
    let weight = weight_bytes as f64 / n as f64;
    let total: f64 = kv_bytes.iter().map(|&b| b as f64).sum::<f64>() + weight_bytes as f64;
    if total <= 0.0 {
        return vec![seconds / n as f64; n];
    }
    kv_bytes
        .iter()
        .map(|&b| seconds * (b as f64 + weight) / total)
        .collect()
}

/// Why `tokens` ends here, if it does.
pub(super) fn finished<T: TextDecoder>(
    req: &Request,
    tokens: &[u32],
    text: &T,
) -> Option<FinishReason> {
    let last = *tokens.last()?;
    if req.stop.is_eos(last) {
        return Some(FinishReason::Eos);
    }
    if !req.stop.stop_strings.is_empty() && req.stop.find_stop(&text.decode(tokens)).is_some() {
        return Some(FinishReason::Stop);
    }
    (tokens.len() >= req.max_tokens).then_some(FinishReason::Length)
}

pub(super) fn complete<T: TextDecoder>(
    s: Live,
    reason: FinishReason,
    req: &Request,
    text: &T,
    store: &mut KvStore,
    prefill_seconds: f64,
) -> Completion {
    let body = match reason {
        FinishReason::Eos => &s.tokens[..s.tokens.len() - 1],
        _ => &s.tokens[..],
    };
    let mut out = text.decode(body);
    if let Some(at) = req.stop.find_stop(&out) {
        out.truncate(at);
    }
    let kv = store.stats(s.seq);
    store.release(s.seq);
    let generated = s.tokens.len();
    let steps = generated.saturating_sub(1) as u64;
    Completion {
        request: s.request,
        sample: s.sample,
        text: out,
        finish_reason: reason,
        prompt_tokens: req.prompt.len(),
        generated_tokens: generated,
        kv,
        batch_peak_resident: 0,
        timing: Timing {
            prefill_seconds,
            decode_seconds: s.decode_seconds,
            decode_tokens_per_second: if s.decode_seconds > 0.0 {
                (generated.saturating_sub(1)) as f64 / s.decode_seconds
            } else {
                0.0
            },
            occupancy: if steps > 0 {
                s.occupancy_sum as f64 / steps as f64
            } else {
                0.0
            },
        },
        token_ids: s.tokens,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy model over the real store: one layer, one KV head, head_dim 4.
    /// Its logits depend on the attention output over all the sequence's
    /// entries, so any mix-up between sequences changes the tokens.
    pub(crate) struct Toy;
    const VOCAB: usize = 11;

    fn embed(token: u32, pos: usize) -> [f32; 4] {
        let t = token as f32;
        let p = pos as f32;
        [
            (t * 0.7).sin(),
            (t * 1.3 + p * 0.1).cos(),
            (t * 0.3).sin(),
            1.0,
        ]
    }

    fn logits_from(o: &[f32], token: u32) -> Vec<f32> {
        (0..VOCAB)
            .map(|i| {
                let i = i as f32;
                3.0 * ((o[0] * 5.0 + i).sin() + (o[1] * 3.0 - i * 0.5).cos())
                    + 0.1 * (token as f32 + i).sin()
            })
            .collect()
    }

    impl Decoder for Toy {
        fn kv_shape(&self) -> KvShape {
            KvShape {
                layers: 1,
                kv_heads: 1,
                head_dim: 4,
            }
        }
        fn vocab_size(&self) -> usize {
            VOCAB
        }
        fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
            let kv: Vec<f32> = tokens
                .iter()
                .enumerate()
                .flat_map(|(p, &t)| embed(t, p))
                .collect();
            store.append_prefill(seq, 0, &kv, &kv);
            store.advance(seq, tokens.len());
            logits_from(&kv[kv.len() - 4..], tokens[tokens.len() - 1])
        }
        fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
            let kv: Vec<f32> = seqs
                .iter()
                .zip(tokens)
                .flat_map(|(&s, &t)| embed(t, store.position(s)))
                .collect();
            let mut out = vec![0.0; kv.len()];
            store.decode_attend(0, seqs, &kv, &kv, &kv, 0.5, &mut out);
            for &s in seqs {
                store.advance(s, 1);
            }
            out.chunks(4)
                .zip(tokens)
                .flat_map(|(o, &t)| logits_from(o, t))
                .collect()
        }
    }

    pub(crate) struct Letters;
    impl TextDecoder for Letters {
        fn decode(&self, ids: &[u32]) -> String {
            ids.iter().map(|&i| (b'a' + i as u8) as char).collect()
        }
    }

    pub(crate) fn request(samples: usize, first_sample: u64, max_tokens: usize) -> Request {
        Request {
            prompt: vec![1, 5, 3, 7],
            samples,
            first_sample,
            max_tokens,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 0.95,
                top_k: 0,
                seed: 42,
            },
            stop: StopCriteria::default(),
        }
    }

    fn run(requests: &[Request]) -> Vec<Completion> {
        let mut store = KvStore::new(Toy.kv_shape());
        generate(&Toy, &Letters, &mut store, requests, |_| {})
    }

    #[test]
    fn a_sample_does_not_depend_on_its_batch() {
        let together = run(&[request(4, 0, 12)]);
        assert_eq!(together.len(), 4);
        for c in &together {
            let alone = run(&[request(1, c.sample, 12)]);
            assert_eq!(alone[0].token_ids, c.token_ids, "sample {}", c.sample);
        }
        // The samples really differ from each other.
        assert!(
            together
                .iter()
                .any(|c| c.token_ids != together[0].token_ids)
        );
        // Two prompts in one batch give the same tokens as each alone.
        let mut other = request(2, 0, 9);
        other.prompt = vec![2, 2, 9];
        let both = run(&[request(4, 0, 12), other.clone()]);
        assert_eq!(both.iter().filter(|c| c.request == 0).count(), 4);
        for c in both.iter().filter(|c| c.request == 1) {
            assert_eq!(
                run(&[other.clone()])[c.sample as usize].token_ids,
                c.token_ids
            );
        }
    }

    #[test]
    fn same_seed_same_tokens() {
        let strip = |v: Vec<Completion>| {
            v.into_iter()
                .map(|mut c| {
                    c.timing = Timing::default();
                    c
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(run(&[request(3, 0, 10)])),
            strip(run(&[request(3, 0, 10)]))
        );
    }

    #[test]
    fn length_eos_and_stop_strings_end_samples() {
        let c = run(&[request(2, 0, 7)]);
        assert!(c.iter().all(|c| c.generated_tokens <= 7));
        let mut eos = request(8, 0, 50);
        eos.stop.eos_ids = vec![4];
        for c in run(&[eos]) {
            match c.finish_reason {
                FinishReason::Eos => {
                    assert_eq!(*c.token_ids.last().unwrap(), 4);
                    assert!(!c.text.contains('e'), "EOS is not part of the text");
                }
                FinishReason::Length => assert_eq!(c.generated_tokens, 50),
                FinishReason::Stop => panic!("no stop strings given"),
                FinishReason::Error => panic!("the local engine does not fail samples"),
            }
        }
        let mut stop = request(8, 0, 50);
        stop.stop.stop_strings = vec!["c".into()];
        let out = run(&[stop]);
        assert!(out.iter().any(|c| c.finish_reason == FinishReason::Stop));
        for c in out.iter().filter(|c| c.finish_reason == FinishReason::Stop) {
            assert!(!c.text.contains('c'));
            assert_eq!(Letters.decode(&c.token_ids).find('c'), Some(c.text.len()));
        }
    }

    #[test]
    fn a_steps_shares_add_up_to_its_wall_time() {
        for (kv, weights) in [
            (vec![10u64, 0, 300, 7], 1_000u64),
            (vec![5, 5], 0),
            (vec![0, 0, 0], 0),
            (vec![1 << 40, 3], 1 << 20),
            (vec![42], 9),
        ] {
            let shares = attribute_step(0.37, &kv, weights);
            assert_eq!(shares.len(), kv.len());
            let sum: f64 = shares.iter().sum();
            assert!((sum - 0.37).abs() < 1e-12, "{kv:?} {weights}: {sum}");
            assert!(shares.iter().all(|&x| x >= 0.0));
        }
        // More KV bytes, more time; equal bytes, equal time.
        let s = attribute_step(1.0, &[100, 300, 100], 600);
        assert!((s[0] - 300.0 / 1100.0).abs() < 1e-12);
        assert!((s[1] - 500.0 / 1100.0).abs() < 1e-12);
        assert_eq!(s[0], s[2]);
        assert!(attribute_step(1.0, &[], 5).is_empty());
    }

    #[test]
    fn occupancy_is_the_mean_batch_over_a_samples_steps() {
        // Two samples of lengths 3 and 6: steps 1-2 hold both, 3-5 one.
        let mut short = request(1, 0, 3);
        short.prompt = vec![2, 2];
        let out = run(&[short, request(1, 0, 6)]);
        assert_eq!(out[0].timing.occupancy, 2.0);
        assert!((out[1].timing.occupancy - (2.0 + 2.0 + 1.0 + 1.0 + 1.0) / 5.0).abs() < 1e-12);
        assert!(run(&[request(1, 0, 1)])[0].timing.occupancy == 0.0);
    }

    #[test]
    fn dense_reads_match_the_closed_form_and_prefix_is_shared() {
        let out = run(&[request(3, 0, 6)]);
        let p = 4u64;
        for c in &out {
            // Decode steps feed tokens 1..L-1; step t reads P + t entries.
            let steps = c.generated_tokens as u64 - 1;
            let expect: u64 = (1..=steps).map(|t| p + t).sum();
            assert_eq!(c.kv.decode_reads, expect);
            assert_eq!(c.kv.prefill_reads, p * (p + 1) / 2);
        }
    }
}
