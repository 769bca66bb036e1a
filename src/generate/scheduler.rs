//! Continuous batching: a stream of requests decoded with up to
//! `max_sequences` sequences in flight.
//!
//! Requests are admitted in stream order. The head request is admitted as
//! soon as its W samples fit beside the sequences in flight (a request wider
//! than `max_sequences` runs when the batch is empty, alone); its prompt is
//! prefilled between two decode steps and forked into its W samples, as in
//! [`generate`](super::generate). A sample that finishes releases its
//! sequence at once, so the room it frees is used before the next step. A
//! request's completions are handed out together when its last sample ends,
//! because its `batch_peak_resident` is only known then.
//!
//! # What batching may not change
//! Each sample draws from its own seeded stream over its own logits row, and
//! a decode step computes every row independently, so a sample's tokens do
//! not depend on which other sequences share its steps. Its counters come
//! from the store per sequence (reads, peak, bytes), and the request's
//! `batch_peak_resident` is the peak of the entries its own samples hold
//! together ([`KvStore::group_peak`], a shared prompt counted once), kept by
//! the store on every write (H2O and TOVA peak inside a step, between the
//! write of the step's entry and the eviction), not the peak of the whole
//! store. Only the timings depend on the batch. The tests check all of this
//! against [`generate`](super::generate) run on each request alone.
//!
//! With a KV memory budget, a request is admitted only while the bounds of
//! the requests in flight and its own ([`request_bound`]: what it may hold
//! at most under the store's policy) fit it; a request whose bound alone exceeds the
//! budget runs when the batch is empty. The bounds never undershoot, so
//! nothing is preempted; DMS is admitted at a guess, and preempted when
//! the guess is wrong.
//!
//! With [`SchedulerOptions::prefill_chunk`], at most that many prompt
//! tokens are prefilled between two decode steps (the oldest unfinished
//! prompt first), so a long prompt does not stall the sequences decoding;
//! only where the model's prefill is chunk-invariant under the store's
//! policy ([`Decoder::chunks_prefill`]; for the real models, no policy
//! yet: [`super::chunked`]).
//!
//! # Shared prompts
//! Requests that follow each other in the stream with the same prompt (a
//! sweep's nested widths: four requests of 1, 1, 2 and 4 samples per problem
//! and method) prefill it once while they overlap. When a request's prompt
//! is prefilled and the next request of the stream has the same prompt, a
//! copy of the prompt's sequence is kept ([`KvStore::copy_prefilled`]: its
//! own blocks, policy state, prefill reads and group peak) with the last
//! row's logits; the next request, when admitted, forks its samples from
//! that copy (or from a copy of it, when the request after it shares the
//! prompt too) instead of prefilling: the same entries, counters and peaks
//! as its own prefill, so nothing it reports changes but its prefill time.
//! The kept copy lives while the request holding it is in flight (the last
//! one that prefilled or shared the prompt), so with `max_sequences` 1,
//! where requests never overlap, nothing is shared. Under a KV memory
//! budget the copy is a cache that yields to the requests: it is kept only
//! where it fits beside the reservations in flight (DMS, which reserves
//! nothing: beside what the store holds), admission counts it beside them,
//! and it is dropped before any request is preempted.

use super::admission::{KeepRate, dms_guess, request_bound};
use super::engine::{Live, complete, decode_step, finished, start_samples};
use super::{Completion, Decoder, Request, TextDecoder, TokenEvent};
use crate::kv::{KvStore, SeqId};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// How many sequences may be in flight, and in how much KV memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerOptions {
    /// Sequences decoded together at most (≥ 1; 0 is taken as 1). A request
    /// wider than this runs alone.
    pub max_sequences: usize,
    /// Bytes of KV the requests in flight may hold together, each counted
    /// at its [`request_bound`] (DMS: at its guess, [`KeepRate`]); `None`:
    /// no limit. A request whose bound alone exceeds it runs alone.
    pub kv_memory: Option<u64>,
    /// DMS's keep rate (entries kept per position) assumed until one is
    /// measured: `1 / CR` of the checkpoint's target; `None`: 1 (keeps
    /// everything).
    pub keep_prior: Option<f64>,
    /// Prompt tokens prefilled between two decode steps at most (≥ 1; 0 is
    /// taken as 1), a long prompt in pieces; `None`: each prompt in one
    /// piece when its request is admitted. Applied only where the model's
    /// prefill is chunk-invariant ([`Decoder::chunks_prefill`]); elsewhere
    /// ignored.
    pub prefill_chunk: Option<usize>,
}

/// What the scheduler did besides decoding: the requests it preempted and
/// the work it threw away with them (done again when they restarted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Requests preempted: their KV dropped, restarted later from scratch.
    pub preemptions: u64,
    /// Generated tokens thrown away by the preemptions (decoded again).
    pub recomputed_tokens: u64,
    /// Prompt tokens prefilled again.
    pub recomputed_prompt_tokens: u64,
    /// Requests that forked their samples from a copy of a prompt prefilled
    /// by a request in flight instead of prefilling it (module docs,
    /// "Shared prompts").
    pub shared_prefills: u64,
    /// Requests whose own bound (or DMS guess) exceeded the KV memory
    /// budget: each ran alone, as the scheduler admits such a request when
    /// nothing else is in flight (on a device, its store's pools grow past
    /// the reservation by copying).
    pub over_budget: u64,
}

/// A request in flight: its completions so far and its own peak.
struct InFlight {
    request: Request,
    prefill_seconds: f64,
    /// Samples still decoding.
    live: usize,
    /// Its [`request_bound`], reserved while it is in flight.
    reserved: u64,
    /// Admission order (a restarted request is admitted anew).
    admitted: u64,
    /// Entries (Σ over the rows) each of its samples held when it started:
    /// what the prefill kept.
    start_entries: u64,
    /// [`KvStore::group_peak`] of the request, read before each of its
    /// samples is released.
    peak: u64,
    done: Vec<Completion>,
    /// While its prompt is prefilled in pieces: the prompt's sequence and
    /// the prompt tokens prefilled so far.
    prefilling: Option<(SeqId, usize)>,
    /// Whether to keep a copy of its prompt when the prefill completes: the
    /// next request of the stream has the same prompt.
    keep_prompt: bool,
}

/// A prefilled prompt kept for the next request of the stream (module docs,
/// "Shared prompts").
struct Kept {
    prompt: Vec<u32>,
    /// A [`KvStore::copy_prefilled`] of the prompt's sequence, never decoded.
    seq: SeqId,
    /// The prefill's last-row logits (`[vocab]`).
    logits: Vec<f32>,
    /// The request in flight holding it: released when that request ends.
    holder: usize,
}

/// Generate every sample of every request of `requests`, at most
/// `options.max_sequences` sequences at a time, handing each request's
/// completions (sorted by sample) to `on_done` when its last sample ends.
/// `Completion::request` is the request's index in the stream. `store`
/// holds the cache policy and must be empty and shaped for `model`.
/// `on_token` sees a preempted request's tokens again when it restarts.
pub fn generate_continuous<M: Decoder, T: TextDecoder>(
    model: &M,
    text: &T,
    store: &mut KvStore,
    requests: impl IntoIterator<Item = Request>,
    options: SchedulerOptions,
    mut on_token: impl FnMut(TokenEvent),
    mut on_done: impl FnMut(Vec<Completion>),
) -> SchedulerStats {
    let max = options.max_sequences.max(1);
    let mut pending = requests.into_iter().enumerate().peekable();
    // Preempted requests, to be admitted before `pending`, oldest first.
    let mut front: VecDeque<(usize, Request)> = VecDeque::new();
    let mut live: Vec<Live> = Vec::new();
    let mut flight: BTreeMap<usize, InFlight> = BTreeMap::new();
    let mut stats = SchedulerStats::default();
    let mut admissions = 0u64;
    // DMS keep rate measured on the samples that finished.
    let mut finished_rate = KeepRate::default();
    let dms = store.policy().needs_decisions();
    let chunk = options
        .prefill_chunk
        .filter(|_| model.chunks_prefill(store.policy()))
        .map(|c| c.max(1));
    let mut kept: Option<Kept> = None;
    loop {
        // Prompt tokens this gap between decode steps may still prefill.
        let mut gap = chunk.unwrap_or(usize::MAX);
        // First the prompts already admitted, oldest first.
        let mut order: Vec<(u64, usize)> = flight
            .iter()
            .filter(|(_, f)| f.prefilling.is_some())
            .map(|(&r, f)| (f.admitted, r))
            .collect();
        order.sort_unstable();
        for (_, r) in order {
            if gap == 0 {
                break;
            }
            let reserved = flight.values().map(|f| f.reserved).sum();
            let f = flight.get_mut(&r).expect("in flight");
            gap -= prefill_piece(
                model,
                store,
                (r, f),
                gap,
                (options.kv_memory, reserved),
                &mut kept,
                &mut live,
                &mut on_token,
            );
        }
        let mut preempted = preempt_over_budget(
            &mut live,
            &mut flight,
            store,
            &options,
            &mut kept,
            &mut front,
            &mut stats,
        );
        // Retire and admit until neither changes the batch: a sample may
        // finish on its first token, before any decode step.
        loop {
            retire(
                &mut live,
                &mut flight,
                text,
                store,
                &mut kept,
                &mut on_done,
                &mut finished_rate,
            );
            if preempted || gap == 0 {
                break;
            }
            let Some(head) = front
                .front()
                .map(|(_, r)| r)
                .or(pending.peek().map(|(_, r)| r))
            else {
                break;
            };
            let (committed, bound) = if dms {
                let rate = finished_rate
                    .merged(live_rate(&live, &flight, store))
                    .rate(options.keep_prior);
                (
                    dms_committed(&live, &flight, store, rate),
                    dms_guess(store, head, rate).min(request_bound(store, head)),
                )
            } else {
                let reserved: u64 = flight.values().map(|f| f.reserved).sum();
                (
                    reserved + kept_bytes(store, &kept),
                    request_bound(store, head),
                )
            };
            let fits = sequences(&live, &flight) + head.samples <= max
                && options
                    .kv_memory
                    .is_none_or(|budget| committed.saturating_add(bound) <= budget);
            if !flight.is_empty() && !fits {
                break;
            }
            if options
                .kv_memory
                .is_some_and(|budget| committed.saturating_add(bound) > budget)
            {
                stats.over_budget += 1;
            }
            let (r, req) = front
                .pop_front()
                .or_else(|| pending.next())
                .expect("peeked");
            if req.samples == 0 {
                continue;
            }
            admissions += 1;
            let keep_prompt = front.is_empty()
                && pending
                    .peek()
                    .is_some_and(|(_, next)| next.prompt == req.prompt);
            let mut f = InFlight {
                live: req.samples,
                reserved: request_bound(store, &req),
                admitted: admissions,
                start_entries: 0,
                request: req,
                prefill_seconds: 0.0,
                peak: 0,
                done: Vec::new(),
                prefilling: None,
                keep_prompt,
            };
            match kept.take_if(|k| k.prompt == f.request.prompt) {
                Some(k) => {
                    let start = Instant::now();
                    // The request after it shares the prompt too: keep it.
                    let (parent, logits) = if keep_prompt {
                        let copy = store.copy_prefilled(k.seq);
                        let logits = k.logits.clone();
                        kept = Some(Kept { holder: r, ..k });
                        (copy, logits)
                    } else {
                        (k.seq, k.logits)
                    };
                    start_prompt(
                        store,
                        r,
                        &mut f,
                        parent,
                        start,
                        &logits,
                        &mut live,
                        &mut on_token,
                    );
                    stats.shared_prefills += 1;
                }
                None => {
                    f.prefilling = Some((store.add_sequence(), 0));
                    let reserved = flight.values().map(|f| f.reserved).sum::<u64>() + f.reserved;
                    gap -= prefill_piece(
                        model,
                        store,
                        (r, &mut f),
                        gap,
                        (options.kv_memory, reserved),
                        &mut kept,
                        &mut live,
                        &mut on_token,
                    );
                }
            }
            flight.insert(r, f);
            // The prompt alone may not fit beside the others: wait for a
            // decode step before admitting again.
            preempted = preempt_over_budget(
                &mut live,
                &mut flight,
                store,
                &options,
                &mut kept,
                &mut front,
                &mut stats,
            );
        }
        if flight.is_empty() {
            break; // nothing in flight, so nothing pending either
        }
        if live.is_empty() {
            continue; // prompts still being prefilled
        }
        decode_step(model, store, &mut live, &mut on_token);
        preempt_over_budget(
            &mut live,
            &mut flight,
            store,
            &options,
            &mut kept,
            &mut front,
            &mut stats,
        );
    }
    // Its holder's end released it; this only guards the store.
    if let Some(k) = kept {
        store.release(k.seq);
    }
    stats
}

/// Sequences in flight: the live samples, and the W samples of each
/// request whose prompt is still being prefilled.
fn sequences(live: &[Live], flight: &BTreeMap<usize, InFlight>) -> usize {
    live.len()
        + flight
            .values()
            .filter(|f| f.prefilling.is_some())
            .map(|f| f.request.samples)
            .sum::<usize>()
}

/// Prefills up to `most` more tokens of request `r`'s prompt (`f` is
/// prefilling); when the prompt is complete, keeps a copy of it in `kept`
/// if `f.keep_prompt` and the copy fits the KV memory `budget` beside
/// `reserved` (the bounds of the requests in flight, `f`'s included; DMS:
/// what the store holds), and starts the request's samples
/// ([`start_prompt`]). Returns the tokens prefilled.
#[allow(clippy::too_many_arguments)]
fn prefill_piece<M: Decoder>(
    model: &M,
    store: &mut KvStore,
    (r, f): (usize, &mut InFlight),
    most: usize,
    (budget, reserved): (Option<u64>, u64),
    kept: &mut Option<Kept>,
    live: &mut Vec<Live>,
    on_token: &mut impl FnMut(TokenEvent),
) -> usize {
    let (parent, done) = f.prefilling.expect("prefilling");
    let prompt = f.request.prompt.len();
    let n = most.min(prompt - done);
    let start = Instant::now();
    let logits = model.prefill(store, parent, &f.request.prompt[done..done + n]);
    if done + n < prompt {
        f.prefill_seconds += start.elapsed().as_secs_f64();
        f.prefilling = Some((parent, done + n));
        return n;
    }
    if f.keep_prompt {
        // A copy kept for another prompt is stale: the next request wants
        // this one.
        if let Some(old) = kept.take() {
            store.release(old.seq);
        }
        let copy = entries(store, parent) * store.entry_bytes();
        let committed = if store.policy().needs_decisions() {
            store.store_stats().resident * store.entry_bytes()
        } else {
            reserved
        };
        if budget.is_none_or(|b| committed.saturating_add(copy) <= b) {
            // Before the fork: the copy takes the group's peak of the prefill.
            *kept = Some(Kept {
                prompt: f.request.prompt.clone(),
                seq: store.copy_prefilled(parent),
                logits: logits.clone(),
                holder: r,
            });
        }
    }
    start_prompt(store, r, f, parent, start, &logits, live, on_token);
    n
}

/// Forks `parent`, request `r`'s prefilled prompt (started at `start`),
/// into the request's W samples (its own fork group), which draw their
/// first tokens from `logits` and join `live`; releases `parent`.
#[allow(clippy::too_many_arguments)]
fn start_prompt(
    store: &mut KvStore,
    r: usize,
    f: &mut InFlight,
    parent: SeqId,
    start: Instant,
    logits: &[f32],
    live: &mut Vec<Live>,
    on_token: &mut impl FnMut(TokenEvent),
) {
    let children = store.fork(parent, f.request.samples);
    store.release(parent);
    f.prefill_seconds += start.elapsed().as_secs_f64();
    f.prefilling = None;
    f.start_entries = entries(store, children[0]);
    start_samples(r, &f.request, children, logits, live, on_token);
}

/// Bytes the kept prompt copy holds (0 without one).
fn kept_bytes(store: &KvStore, kept: &Option<Kept>) -> u64 {
    kept.as_ref()
        .map_or(0, |k| entries(store, k.seq) * store.entry_bytes())
}

/// Entries `seq` holds, summed over its rows.
fn entries(store: &KvStore, seq: SeqId) -> u64 {
    store.stats(seq).row_len.iter().map(|&n| u64::from(n)).sum()
}

/// The keep rate measured so far on the live samples.
fn live_rate(live: &[Live], flight: &BTreeMap<usize, InFlight>, store: &KvStore) -> KeepRate {
    let mut rate = KeepRate::default();
    for s in live {
        rate.add(sample_rate(s.seq, &flight[&s.request], store));
    }
    rate
}

/// What sample `seq` of `f` kept over the positions it generated.
fn sample_rate(seq: SeqId, f: &InFlight, store: &KvStore) -> KeepRate {
    let shape = store.shape();
    let rows = (shape.layers * shape.kv_heads) as u64;
    let generated = (store.position(seq) - f.request.prompt.len()) as u64;
    KeepRate::measured(entries(store, seq), f.start_entries, generated * rows)
}

/// Bytes the DMS requests in flight hold now plus their guessed growth:
/// each live sample's remaining positions (L − tokens so far) × rows ×
/// `rate`.
fn dms_committed(
    live: &[Live],
    flight: &BTreeMap<usize, InFlight>,
    store: &KvStore,
    rate: f64,
) -> u64 {
    let shape = store.shape();
    let rows = (shape.layers * shape.kv_heads) as f64;
    let remaining: usize = live
        .iter()
        .map(|s| {
            flight[&s.request]
                .request
                .max_tokens
                .saturating_sub(s.tokens.len())
        })
        .sum();
    // A prompt still being prefilled: its rest, and each sample's L − 1.
    let unstarted: usize = flight
        .values()
        .filter_map(|f| {
            let (_, done) = f.prefilling?;
            let req = &f.request;
            Some(req.prompt.len() - done + req.samples * req.max_tokens.saturating_sub(1))
        })
        .sum();
    let growth = ((remaining + unstarted) as f64 * rows * rate).ceil() as u64;
    (store.store_stats().resident + growth) * store.entry_bytes()
}

/// While the store holds more than the budget and more than one request is
/// in flight, preempt the most recently admitted: release its sequences,
/// forget its samples (finished ones too) and put it back at the head of
/// the queue, to restart from scratch. A kept prompt copy is released
/// first. Returns whether it preempted.
fn preempt_over_budget(
    live: &mut Vec<Live>,
    flight: &mut BTreeMap<usize, InFlight>,
    store: &mut KvStore,
    options: &SchedulerOptions,
    kept: &mut Option<Kept>,
    front: &mut VecDeque<(usize, Request)>,
    stats: &mut SchedulerStats,
) -> bool {
    let Some(budget) = options.kv_memory else {
        return false;
    };
    let over = |store: &KvStore| store.store_stats().resident * store.entry_bytes() > budget;
    // The kept prompt is a cache: it goes before any request does.
    if over(store)
        && let Some(k) = kept.take()
    {
        store.release(k.seq);
    }
    let mut preempted = false;
    while flight.len() > 1 && over(store) {
        let r = *flight
            .iter()
            .max_by_key(|(_, f)| f.admitted)
            .expect("in flight")
            .0;
        let f = flight.remove(&r).expect("in flight");
        let prompt = match f.prefilling {
            Some((parent, done)) => {
                store.release(parent);
                done
            }
            None => f.request.prompt.len(),
        };
        live.retain(|s| {
            if s.request != r {
                return true;
            }
            store.release(s.seq);
            stats.recomputed_tokens += s.tokens.len() as u64;
            false
        });
        stats.recomputed_tokens += f
            .done
            .iter()
            .map(|c| c.generated_tokens as u64)
            .sum::<u64>();
        stats.recomputed_prompt_tokens += prompt as u64;
        stats.preemptions += 1;
        front.push_front((r, f.request));
        preempted = true;
    }
    preempted
}

/// Release finished samples; hand out the requests whose last sample ended.
/// Under DMS, adds what each finished sample kept to `rate` first.
/// A prompt kept for the next request is released with its holder.
fn retire<T: TextDecoder>(
    live: &mut Vec<Live>,
    flight: &mut BTreeMap<usize, InFlight>,
    text: &T,
    store: &mut KvStore,
    kept: &mut Option<Kept>,
    on_done: &mut impl FnMut(Vec<Completion>),
    rate: &mut KeepRate,
) {
    let dms = store.policy().needs_decisions();
    let mut i = 0;
    while i < live.len() {
        let f = flight.get_mut(&live[i].request).expect("in flight");
        let Some(reason) = finished(&f.request, &live[i].tokens, text) else {
            i += 1;
            continue;
        };
        // `remove`, not `swap_remove`: the batch keeps admission order.
        let s = live.remove(i);
        let r = s.request;
        if dms {
            rate.add(sample_rate(s.seq, f, store));
        }
        // The group's peak is monotonic and forgotten with its last release.
        f.peak = f.peak.max(store.group_peak(s.seq));
        f.done.push(complete(
            s,
            reason,
            &f.request,
            text,
            store,
            f.prefill_seconds,
        ));
        f.live -= 1;
        if f.live == 0 {
            if let Some(k) = kept.take_if(|k| k.holder == r) {
                store.release(k.seq);
            }
            let mut f = flight.remove(&r).expect("in flight");
            for c in &mut f.done {
                c.batch_peak_resident = f.peak;
            }
            f.done.sort_by_key(|c| c.sample);
            on_done(f.done);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::generate::engine::tests::{Letters, Toy, request};
    use crate::generate::{Timing, generate};
    use crate::kv::{KvShape, SeqId};

    /// A toy model, recording the batch size of every decode step, and the
    /// tokens of every prefill call with the decode steps before it.
    struct Counting<M>(M, RefCell<Vec<usize>>, RefCell<Vec<(usize, usize)>>);
    impl<M> Counting<M> {
        fn new(model: M) -> Self {
            Counting(model, RefCell::new(Vec::new()), RefCell::new(Vec::new()))
        }
        fn into_steps(self) -> Vec<usize> {
            self.1.into_inner()
        }
        /// (decode steps before it, tokens) per prefill call.
        fn prefills(&self) -> Vec<(usize, usize)> {
            self.2.borrow().clone()
        }
    }
    impl<M: Decoder> Decoder for Counting<M> {
        fn kv_shape(&self) -> KvShape {
            self.0.kv_shape()
        }
        fn vocab_size(&self) -> usize {
            self.0.vocab_size()
        }
        fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
            let steps = self.1.borrow().len();
            self.2.borrow_mut().push((steps, tokens.len()));
            self.0.prefill(store, seq, tokens)
        }
        fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
            self.1.borrow_mut().push(seqs.len());
            self.0.decode(store, seqs, tokens)
        }
        fn chunks_prefill(&self, policy: &crate::kv::ResolvedPolicy) -> bool {
            self.0.chunks_prefill(policy)
        }
    }

    /// Requests of different widths, prompts, lengths and stops.
    fn mix() -> Vec<Request> {
        let mut out = Vec::new();
        for i in 0..7u32 {
            let mut r = request(
                [1, 2, 4, 1, 3, 2, 1][i as usize],
                u64::from(i) * 3,
                5 + 3 * i as usize,
            );
            r.prompt = (0..3 + i % 4).map(|t| (t * 7 + i) % 11).collect();
            if i % 3 == 1 {
                r.stop.eos_ids = vec![1, 4, 7];
            }
            out.push(r);
        }
        out
    }

    fn without_timing(mut c: Completion) -> Completion {
        c.timing = Timing::default();
        c
    }

    /// Every request run alone through [`generate`] in a fresh store, its
    /// completions numbered by its index in `requests`, timings cleared.
    fn each_alone<M: Decoder>(
        model: &M,
        store: impl Fn() -> KvStore,
        requests: &[Request],
    ) -> Vec<Completion> {
        requests
            .iter()
            .enumerate()
            .flat_map(|(r, req)| {
                generate(
                    model,
                    &Letters,
                    &mut store(),
                    std::slice::from_ref(req),
                    |_| {},
                )
                .into_iter()
                .map(move |mut c| {
                    c.request = r;
                    without_timing(c)
                })
            })
            .collect()
    }

    /// `requests` through [`generate_continuous`] into `store`: the
    /// completions without timings, by request and sample, and the stats.
    fn stream<M: Decoder>(
        model: &M,
        store: &mut KvStore,
        requests: &[Request],
        options: SchedulerOptions,
    ) -> (Vec<Completion>, SchedulerStats) {
        let mut got = Vec::new();
        let stats = generate_continuous(
            model,
            &Letters,
            store,
            requests.iter().cloned(),
            options,
            |_| {},
            |done| got.extend(done.into_iter().map(without_timing)),
        );
        got.sort_by_key(|c| (c.request, c.sample));
        (got, stats)
    }

    fn continuous(requests: &[Request], max_sequences: usize) -> (Vec<Completion>, Vec<usize>) {
        let model = Counting::new(Toy);
        let mut store = KvStore::new(Toy.kv_shape());
        let mut out = Vec::new();
        generate_continuous(
            &model,
            &Letters,
            &mut store,
            requests.iter().cloned(),
            SchedulerOptions {
                max_sequences,
                kv_memory: None,
                keep_prior: None,
                prefill_chunk: None,
            },
            |_| {},
            |done| out.extend(done),
        );
        assert_eq!(store.store_stats().resident, 0, "every sequence released");
        out.sort_by_key(|c| (c.request, c.sample));
        (out, model.into_steps())
    }

    #[test]
    fn a_sample_does_not_change_with_max_sequences() {
        let requests = mix();
        let alone = each_alone(&Toy, || KvStore::new(Toy.kv_shape()), &requests);
        assert!(
            alone
                .iter()
                .any(|c| c.finish_reason == super::super::FinishReason::Eos)
        );
        for max in [1, 2, 3, 4, 5, 1000] {
            let (got, steps) = continuous(&requests, max);
            let got: Vec<Completion> = got.into_iter().map(without_timing).collect();
            assert_eq!(got, alone, "max_sequences {max}");
            let widest = requests.iter().map(|r| r.samples).max().unwrap();
            assert!(
                steps.iter().all(|&n| n <= max.max(widest)),
                "max {max}: {steps:?}"
            );
        }
    }

    #[test]
    fn freed_room_is_refilled_before_the_next_step() {
        // Eight single-sample requests of lengths 3..=10 on four slots: while
        // requests wait, every step runs four sequences.
        let requests: Vec<Request> = (0..8).map(|i| request(1, i, 3 + i as usize)).collect();
        let (out, steps) = continuous(&requests, 4);
        assert_eq!(out.len(), 8);
        let full = steps.iter().take_while(|&&n| n == 4).count();
        // Once the last request is admitted the batch only drains.
        assert!(full >= 6, "{steps:?}");
        assert!(
            steps.windows(2).skip(full).all(|w| w[1] <= w[0]),
            "{steps:?}"
        );
        let one_at_a_time: usize = requests.iter().map(|r| r.max_tokens - 1).sum();
        assert!(steps.len() < one_at_a_time);
        // Generated tokens = Σ batch sizes + one first token per sample.
        let generated: usize = out.iter().map(|c| c.generated_tokens).sum();
        assert_eq!(steps.iter().sum::<usize>() + 8, generated);
    }

    /// The toy model driven through the cache-policy API, so evicting
    /// policies run their own placement and scoring.
    struct PolicyToy;
    fn toy_kv(store: &KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        seqs.iter()
            .zip(tokens)
            .flat_map(|(&s, &t)| {
                let p = store.position(s) as f32;
                let t = t as f32;
                [
                    (t * 0.7).sin(),
                    (t * 1.3 + p * 0.1).cos(),
                    (t * 0.3).sin(),
                    1.0,
                ]
            })
            .collect()
    }
    fn toy_logits(o: &[f32]) -> Vec<f32> {
        (0..Toy.vocab_size())
            .map(|i| 3.0 * ((o[0] * 5.0 + i as f32).sin() + (o[1] * 3.0).cos() * i as f32 * 0.1))
            .collect()
    }
    impl Decoder for PolicyToy {
        fn kv_shape(&self) -> KvShape {
            Toy.kv_shape()
        }
        fn vocab_size(&self) -> usize {
            Toy.vocab_size()
        }
        fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
            let kv: Vec<f32> = tokens
                .iter()
                .enumerate()
                .flat_map(|(p, &t)| {
                    let (p, t) = (p as f32, t as f32);
                    [
                        (t * 0.7).sin(),
                        (t * 1.3 + p * 0.1).cos(),
                        (t * 0.3).sin(),
                        1.0,
                    ]
                })
                .collect();
            let mut out = vec![0.0; kv.len()];
            let step = crate::kv::PrefillStep {
                layer: 0,
                seq,
                q: &kv,
                k: &kv,
                v: &kv,
                scale: 0.5,
                decisions: &[],
            };
            store.policy_prefill(step, &mut out).expect("prefill");
            store.advance(seq, tokens.len());
            toy_logits(&out[out.len() - 4..])
        }
        fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
            let kv = toy_kv(store, seqs, tokens);
            let mut out = vec![0.0; kv.len()];
            let step = crate::kv::DecodeStep {
                layer: 0,
                seqs,
                q: &kv,
                k: &kv,
                v: &kv,
                scale: 0.5,
                slots: &[],
            };
            store.policy_decode(step, &[], &mut out).expect("decode");
            for &s in seqs {
                store.advance(s, 1);
            }
            out.chunks(4).flat_map(toy_logits).collect()
        }
    }

    #[test]
    fn window_keeps_each_requests_own_peak() {
        check_policy(crate::kv::ResolvedPolicy::Window {
            sink: 1,
            budget: crate::kv::Budget::Tokens { tokens: 4 },
        });
    }

    /// H2O writes a step's entry before it evicts, so the request's peak
    /// lies inside a step; measured at step boundaries it came out one
    /// entry per row short (5 for 6 here).
    #[test]
    fn h2o_keeps_each_requests_own_peak() {
        check_policy(crate::kv::ResolvedPolicy::H2o {
            recent: 2,
            budget: crate::kv::Budget::Tokens { tokens: 5 },
        });
    }

    /// A KV budget so tight that only one or two requests fit at a time
    /// changes no sample, and the store never holds more than the budget
    /// (or the one request that alone exceeds it).
    #[test]
    fn a_tight_kv_memory_changes_no_sample() {
        use crate::kv::{Budget, ResolvedPolicy};
        let requests = mix();
        let policies = [
            ResolvedPolicy::Dense,
            ResolvedPolicy::Window {
                sink: 1,
                budget: Budget::Tokens { tokens: 4 },
            },
            ResolvedPolicy::H2o {
                recent: 2,
                budget: Budget::Tokens { tokens: 5 },
            },
        ];
        for policy in policies {
            let store = || KvStore::with_resolved_policy(Toy.kv_shape(), policy.clone()).unwrap();
            let alone = each_alone(&PolicyToy, store, &requests);
            let probe = store();
            let bounds: Vec<u64> = requests.iter().map(|r| request_bound(&probe, r)).collect();
            let largest = *bounds.iter().max().unwrap();
            for budget in [largest / 2, largest, largest + bounds[0]] {
                let model = Counting::new(PolicyToy);
                let mut s = store();
                let (got, stats) = stream(
                    &model,
                    &mut s,
                    &requests,
                    SchedulerOptions {
                        max_sequences: 1000,
                        kv_memory: Some(budget),
                        keep_prior: None,
                        prefill_chunk: None,
                    },
                );
                assert_eq!(got, alone, "{policy:?}, kv_memory {budget}");
                // Exact bounds never need a preemption; the requests whose
                // bound alone exceeds the budget are counted (they ran
                // alone).
                let over = bounds.iter().filter(|&&b| b > budget).count() as u64;
                assert_eq!(
                    stats,
                    SchedulerStats {
                        over_budget: over,
                        ..SchedulerStats::default()
                    },
                    "{policy:?}, kv_memory {budget}"
                );
                assert_eq!(over > 0, budget < largest);
                let held = s.peak_resident() * s.entry_bytes();
                assert!(held <= budget.max(largest), "{policy:?}: {held} > {budget}");
                let steps = model.into_steps();
                let total: usize = requests.iter().map(|r| r.samples).sum();
                assert!(
                    steps.iter().all(|&n| n < total),
                    "{policy:?}, kv_memory {budget}: never all at once {steps:?}"
                );
            }
        }
    }

    /// TOVA, like H2O, writes the step's entry before it evicts.
    #[test]
    fn tova_keeps_each_requests_own_peak() {
        check_policy(crate::kv::ResolvedPolicy::Tova {
            budget: crate::kv::Budget::Tokens { tokens: 5 },
            granularity: crate::kv::TovaGranularity::Layer,
        });
    }

    /// Every completion under `policy` equals the request run alone.
    fn check_policy(policy: crate::kv::ResolvedPolicy) {
        use crate::kv::ResolvedPolicy;
        let policies = [policy];
        let requests = mix();
        let store = |p: &ResolvedPolicy| {
            KvStore::with_resolved_policy(Toy.kv_shape(), p.clone()).expect("policy")
        };
        for policy in &policies {
            let alone = each_alone(&PolicyToy, || store(policy), &requests);
            for max in [1, 3, 1000] {
                let mut s = store(policy);
                let (got, _) = stream(
                    &PolicyToy,
                    &mut s,
                    &requests,
                    SchedulerOptions {
                        max_sequences: max,
                        kv_memory: None,
                        keep_prior: None,
                        prefill_chunk: None,
                    },
                );
                assert_eq!(got, alone, "{policy:?}, max_sequences {max}");
            }
        }
    }

    /// DMS is admitted at a guess (the prior, then its measured keep rate);
    /// a budget so tight that the guesses keep failing preempts requests
    /// every few steps, and every completion (tokens, KV reads, peaks,
    /// group peak) still equals the request run alone.
    #[test]
    fn dms_preempted_under_a_tight_budget_changes_no_sample() {
        use crate::generate::testing::{Layered, store};
        use crate::kv::{DmsParams, ResolvedPolicy};
        let policy = ResolvedPolicy::Dms(DmsParams {
            window: 2,
            shifted: false,
        });
        let mut requests = mix();
        for mut r in mix() {
            r.first_sample += 100;
            r.max_tokens += 15;
            r.stop.eos_ids.clear();
            requests.push(r);
        }
        let alone = each_alone(&Layered, || store(policy.clone(), 4), &requests);
        let entry = store(policy.clone(), 4).entry_bytes();
        let largest = alone.iter().map(|c| c.batch_peak_resident).max().unwrap() * entry;
        let run = |kv_memory: Option<u64>, keep_prior: Option<f64>| {
            let model = Counting::new(Layered);
            let mut s = store(policy.clone(), 4);
            let (got, stats) = stream(
                &model,
                &mut s,
                &requests,
                SchedulerOptions {
                    max_sequences: 1000,
                    kv_memory,
                    keep_prior,
                    prefill_chunk: None,
                },
            );
            assert_eq!(s.store_stats().resident, 0, "every sequence released");
            (got, stats, model.into_steps())
        };
        let (free, stats, _) = run(None, None);
        assert_eq!(free, alone);
        assert_eq!(stats, SchedulerStats::default());
        let mut most = SchedulerStats::default();
        for (budget, prior) in [
            (largest, Some(0.05)),
            (largest * 3 / 2, Some(0.05)),
            (largest * 2, None),
            (largest * 3, Some(0.2)),
        ] {
            let (got, stats, steps) = run(Some(budget), prior);
            assert_eq!(got, alone, "kv_memory {budget}, prior {prior:?}");
            eprintln!(
                "kv_memory {budget} (largest request {largest}), prior {prior:?}: {stats:?} \
                 over {} steps",
                steps.len()
            );
            if stats.preemptions > most.preemptions {
                most = stats;
            }
            if stats.preemptions > 0 {
                assert!(stats.recomputed_tokens > 0 && stats.recomputed_prompt_tokens > 0);
            }
        }
        assert!(most.preemptions >= 5, "{most:?}");
    }

    /// A checkpoint that evicts only early positions ([`FrontLoaded`]):
    /// the keep rate measured on young samples undershoots what they keep
    /// later, so under a budget of about one request's peak the guesses
    /// keep failing and requests are preempted every few steps. Every
    /// completion (tokens, text, KV reads, peaks, group peak) still equals
    /// its request run alone.
    #[test]
    fn dms_preempted_every_few_steps_changes_no_sample() {
        use crate::generate::testing::{FrontLoaded, store};
        use crate::kv::{DmsParams, ResolvedPolicy};
        let policy = ResolvedPolicy::Dms(DmsParams {
            window: 2,
            shifted: false,
        });
        let requests: Vec<Request> = (0..24u32)
            .map(|i| {
                let mut r = request(
                    [1, 2, 1, 3][i as usize % 4],
                    u64::from(i) * 5,
                    24 + i as usize % 5,
                );
                r.prompt = (0..3 + i % 3).map(|t| (t * 5 + i) % 11).collect();
                r
            })
            .collect();
        let model = FrontLoaded { keep_from: 12 };
        let alone = each_alone(&model, || store(policy.clone(), 4), &requests);
        let entry = store(policy.clone(), 4).entry_bytes();
        let largest = alone.iter().map(|c| c.batch_peak_resident).max().unwrap() * entry;
        let mut measured = Vec::new();
        for (times, prior) in [(1, None), (2, Some(0.05)), (3, Some(0.05))] {
            let budget = largest * times;
            let counting = Counting::new(FrontLoaded { keep_from: 12 });
            let mut s = store(policy.clone(), 4);
            let (got, stats) = stream(
                &counting,
                &mut s,
                &requests,
                SchedulerOptions {
                    max_sequences: 1000,
                    kv_memory: Some(budget),
                    keep_prior: prior,
                    prefill_chunk: None,
                },
            );
            assert_eq!(s.store_stats().resident, 0, "every sequence released");
            assert_eq!(got, alone, "kv_memory {budget}, prior {prior:?}");
            assert!(stats.recomputed_tokens > 0 && stats.recomputed_prompt_tokens > 0);
            let steps = counting.into_steps().len() as u64;
            eprintln!(
                "kv_memory {times} × {largest}, prior {prior:?}: {} preemption(s) over {steps} steps",
                stats.preemptions
            );
            measured.push((stats.preemptions, steps));
        }
        // Measured: 5 over 378 steps, 20 over 159, 19 over 107.
        let (preemptions, steps) = measured[2];
        assert!(preemptions * 6 >= steps, "{measured:?}");
        assert!(measured.iter().all(|&(p, _)| p >= 3), "{measured:?}");
    }

    /// A sweep's nested widths: per prompt, requests of 1, 1, 2 and 4
    /// samples (samples 0, 1, 2–3, 4–7), their lengths and stops varied.
    fn nested() -> Vec<Request> {
        let mut out = Vec::new();
        for p in 0..4u32 {
            let prompt: Vec<u32> = (0..3 + p * 2).map(|t| (t * 5 + p) % 11).collect();
            for (i, (samples, first)) in [(1, 0), (1, 1), (2, 2), (4, 4)].into_iter().enumerate() {
                let mut r = request(samples, first, 6 + 2 * i + p as usize);
                r.prompt = prompt.clone();
                r.sampling.seed = u64::from(p);
                if p % 2 == 1 {
                    r.stop.eos_ids = vec![2, 9];
                }
                out.push(r);
            }
        }
        out
    }

    /// One policy of each kind, for the shared-prompt tests: dense, window,
    /// TOVA, H2O (evicting, with scores) and DMS (decisions).
    fn sharing_policies() -> [crate::kv::ResolvedPolicy; 5] {
        use crate::kv::{Budget, DmsParams, ResolvedPolicy, TovaGranularity};
        [
            ResolvedPolicy::Dense,
            ResolvedPolicy::Window {
                sink: 1,
                budget: Budget::Tokens { tokens: 4 },
            },
            ResolvedPolicy::Tova {
                budget: Budget::Tokens { tokens: 4 },
                granularity: TovaGranularity::Layer,
            },
            ResolvedPolicy::H2o {
                recent: 2,
                budget: Budget::Tokens { tokens: 5 },
            },
            ResolvedPolicy::Dms(DmsParams {
                window: 2,
                shifted: false,
            }),
        ]
    }

    /// Nested requests overlapping in flight share their prompt's prefill
    /// (one prefill per prompt with room for all four), and every completion
    /// — tokens, KV reads, prefill reads, peaks, group peak — equals its
    /// request run alone, under every policy, evicting ones included (their
    /// scores, DMS's decisions, and the peak of a prefill longer than the
    /// budget, above what it keeps, travel with the copy). One at a time nothing overlaps, so
    /// nothing is shared.
    #[test]
    fn nested_requests_in_flight_share_one_prefill() {
        use crate::generate::testing::{Layered, store};
        let requests = nested();
        let prompts = requests.len() as u64 / 4;
        for policy in sharing_policies() {
            let alone = each_alone(&Layered, || store(policy.clone(), 4), &requests);
            for max_sequences in [1, 3, 8, 16, 1000] {
                let model = Counting::new(Layered);
                let mut s = store(policy.clone(), 4);
                let (got, stats) = stream(
                    &model,
                    &mut s,
                    &requests,
                    SchedulerOptions {
                        max_sequences,
                        kv_memory: None,
                        keep_prior: None,
                        prefill_chunk: None,
                    },
                );
                let why = format!("{policy:?}, max_sequences {max_sequences}");
                assert_eq!(
                    s.store_stats().resident,
                    0,
                    "{why}: every sequence released"
                );
                assert_eq!(got, alone, "{why}");
                let prefills = model.prefills().len() as u64;
                assert_eq!(
                    prefills + stats.shared_prefills,
                    requests.len() as u64,
                    "{why}"
                );
                match max_sequences {
                    1 => assert_eq!(stats.shared_prefills, 0, "{why}"),
                    // Every request admitted at once: one prefill per prompt.
                    1000 => assert_eq!(prefills, prompts, "{why}"),
                    _ => assert!(stats.shared_prefills > 0, "{why}"),
                }
            }
        }
    }

    /// Under a KV memory budget the shared prompt still changes no sample:
    /// the kept copy is counted beside the reservations (budgeted policies
    /// stay within the budget), yields to a preemption (DMS), and is still
    /// shared where it fits.
    #[test]
    fn nested_requests_share_their_prompt_under_a_kv_memory_budget() {
        use crate::generate::testing::{Layered, store};
        let requests = nested();
        for policy in sharing_policies() {
            let dms = matches!(policy, crate::kv::ResolvedPolicy::Dms(_));
            let alone = each_alone(&Layered, || store(policy.clone(), 4), &requests);
            let probe = store(policy.clone(), 4);
            let largest = requests
                .iter()
                .map(|r| request_bound(&probe, r))
                .max()
                .unwrap();
            let mut shared = 0;
            for (budget, max_sequences) in [(largest, 1000), (2 * largest, 3), (4 * largest, 16)] {
                let model = Counting::new(Layered);
                let mut s = store(policy.clone(), 4);
                let (got, stats) = stream(
                    &model,
                    &mut s,
                    &requests,
                    SchedulerOptions {
                        max_sequences,
                        kv_memory: Some(budget),
                        keep_prior: Some(0.5),
                        prefill_chunk: None,
                    },
                );
                let why = format!("{policy:?}, kv_memory {budget}, max_sequences {max_sequences}");
                assert_eq!(got, alone, "{why}");
                assert_eq!(
                    s.store_stats().resident,
                    0,
                    "{why}: every sequence released"
                );
                // Each admission prefills or shares; a preempted request is
                // admitted again.
                assert_eq!(
                    model.prefills().len() as u64 + stats.shared_prefills,
                    requests.len() as u64 + stats.preemptions,
                    "{why}"
                );
                if !dms {
                    assert_eq!(stats.preemptions, 0, "{why}");
                    let held = s.peak_resident() * s.entry_bytes();
                    assert!(held <= budget, "{why}: {held} > {budget}");
                }
                shared += stats.shared_prefills;
            }
            assert!(shared > 0, "{policy:?}: a prompt shared under a budget");
        }
    }

    /// With `prefill_chunk`, prompts are prefilled in pieces of at most
    /// `chunk` tokens between decode steps while the requests already
    /// started decode, and under DMS (chunk-invariant)
    /// every completion, counters and peaks included, equals its request
    /// run alone. Under a policy that is not chunk-invariant (H2O) the
    /// option is ignored: each prompt in one piece.
    #[test]
    fn a_long_prompt_is_prefilled_in_chunks_between_decode_steps() {
        use crate::generate::testing::{Layered, store};
        use crate::kv::{Budget, DmsParams, ResolvedPolicy};
        let mut requests = mix();
        let mut long = request(2, 50, 12);
        long.prompt = (0..40u32).map(|t| (t * 3 + 1) % 11).collect();
        requests.push(long);
        let policies = [
            ResolvedPolicy::Dms(DmsParams {
                window: 2,
                shifted: true,
            }),
            ResolvedPolicy::Dms(DmsParams {
                window: 3,
                shifted: false,
            }),
            ResolvedPolicy::H2o {
                recent: 2,
                budget: Budget::Tokens { tokens: 5 },
            },
        ];
        for policy in policies {
            let alone = each_alone(&Layered, || store(policy.clone(), 4), &requests);
            for (chunk, max_sequences) in [(1, 1000), (3, 1000), (8, 1000), (5, 3)] {
                let model = Counting::new(Layered);
                let mut s = store(policy.clone(), 4);
                let (got, _) = stream(
                    &model,
                    &mut s,
                    &requests,
                    SchedulerOptions {
                        max_sequences,
                        kv_memory: None,
                        keep_prior: None,
                        prefill_chunk: Some(chunk),
                    },
                );
                assert_eq!(s.store_stats().resident, 0, "every sequence released");
                assert_eq!(got, alone, "{policy:?}, prefill_chunk {chunk}");
                let prefills = model.prefills();
                // Decode steps that had prompt pieces prefilled before them.
                let gaps: std::collections::BTreeSet<usize> =
                    prefills.iter().map(|&(steps, _)| steps).collect();
                if Layered.chunks_prefill(&policy) {
                    assert!(
                        prefills.iter().all(|&(_, n)| n <= chunk),
                        "{policy:?}, chunk {chunk}: {prefills:?}"
                    );
                    // The long prompt, admitted last, is prefilled while the
                    // others decode: its pieces spread over decode steps.
                    assert!(gaps.len() >= 5, "{prefills:?}");
                } else {
                    assert!(prefills.iter().any(|&(_, n)| n == 40), "{prefills:?}");
                }
            }
        }
    }
}
