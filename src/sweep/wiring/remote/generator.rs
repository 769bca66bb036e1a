//! [`RemoteGenerator`]: a W-batch decoded by an OpenAI-compatible server.
//!
//! A batch of `samples` is sent as ceil(samples / max_n) concurrent
//! requests with `n` samples each. Seeds: request `k` carries
//! `base(seed, repeat) + its first sample index`; vLLM seeds choice `i` of
//! a request with `seed + i`, so sample `s` always gets `base + s`, whatever
//! batch it is decoded in (nested widths stay consistent). Token counts
//! come from re-tokenising each returned text with the local tokenizer
//! (plus the EOS token when the sample ended on one), budgets from the
//! closed form of dense attention ([`super::budget`]), marked computed.
//! A request that fails after every retry (429, 5xx, timeouts) gives error
//! records (`finish_reason = "error"`, no text; the next session retries
//! them); a rejected one (400, 401, 404, 422, a validation error under any
//! status) stops the sweep, and so does the same failure on
//! [`REPEATS_TO_STOP`] requests in a row (a server that is down, or that
//! fails every request the same way, is not a transient outage).
//!
//! With `prompt_format = "text"` the prompt is the local ids decoded back
//! to text (special tokens written out), without a leading BOS when the
//! server prepends one itself; it is sent only if it tokenises back to
//! exactly those ids, and a server that reports a different prompt token
//! count (`usage.prompt_tokens`) stops the sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::budget::{dense_batch_peak, dense_stats};
use super::client::{Choice, CompletionRequest, OpenAiClient, PromptBody, RemoteError};
use super::prompt::PromptModel;
use crate::generate::{Completion, FinishReason, Request, Timing};
use crate::kv::{CachePolicy, KvStats};
use crate::record::BudgetSource;
use crate::sweep::config::PromptFormat;
use crate::sweep::trial::split_stream;
use crate::sweep::{BoxError, Generated, ModelShape, RemoteSpec, SampleGenerator, Trial};

/// Requests in a row that fail the same way (each after every retry) before
/// the sweep stops.
pub const REPEATS_TO_STOP: u32 = 3;

/// Decodes on a remote server.
pub struct RemoteGenerator {
    /// The last failure and how many requests in a row ended with it.
    streak: Option<(String, u32)>,
    client: Arc<OpenAiClient>,
    runtime: tokio::runtime::Runtime,
    model: Arc<PromptModel>,
    spec: RemoteSpec,
    shape: ModelShape,
    /// KV element size for peak bytes (2: bf16/f16, 4: f32).
    bytes_per_element: u64,
}

impl RemoteGenerator {
    pub fn new(
        spec: RemoteSpec,
        model: Arc<PromptModel>,
        bytes_per_element: u64,
    ) -> Result<Self, super::super::WiringError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(RemoteGenerator {
            streak: None,
            client: Arc::new(OpenAiClient::new(&spec)?),
            runtime,
            shape: spec.shape.unwrap_or(model.shape),
            model,
            spec,
            bytes_per_element,
        })
    }

    /// The seed sample 0 of `repeat` gets; sample `s` gets this + `s`.
    /// Below 2^40, so seed + sample fits any server's integer.
    pub fn base_seed(seed: u64, repeat: u32) -> u64 {
        let mut z = seed ^ (u64::from(repeat) << 32) ^ 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & ((1 << 40) - 1)
    }

    /// The prompt as sent: the ids, or their text when the format is text.
    fn prompt_body(&self, ids: &[u32]) -> Result<PromptBody, BoxError> {
        if self.spec.prompt_format == PromptFormat::Tokens {
            return Ok(PromptBody::Tokens(ids.to_vec()));
        }
        let tokenizer = &self.model.tokenizer;
        let server_adds_bos = self.spec.server_adds_bos.unwrap_or(tokenizer.add_bos());
        let body = match (server_adds_bos, tokenizer.bos_id()) {
            (false, _) => ids,
            (true, Some(bos)) if ids.first() == Some(&bos) => &ids[1..],
            (true, _) => {
                return Err(
                    "the server prepends BOS to a text prompt (model.server_adds_bos, \
                     default: the tokenizer's add_bos_token) but the rendered prompt does not \
                     start with BOS, so the server would see one token more; set \
                     model.server_adds_bos = false if the server adds none, or use \
                     prompt_format = \"tokens\""
                        .into(),
                );
            }
        };
        let text = tokenizer.decode(body, false)?;
        let again = tokenizer.encode(&text, false)?;
        if again != body {
            return Err(format!(
                "the rendered prompt does not survive decoding to text ({} tokens tokenise \
                 back to {}), so a server given the text would see other tokens; use \
                 prompt_format = \"tokens\"",
                body.len(),
                again.len()
            )
            .into());
        }
        Ok(PromptBody::Text(text))
    }

    /// Count a request's outcome; the error that stops the sweep when the
    /// same failure has ended [`REPEATS_TO_STOP`] requests in a row.
    fn note(&mut self, failure: Option<&str>) -> Option<RemoteError> {
        let Some(last) = failure else {
            self.streak = None;
            return None;
        };
        let n = match &self.streak {
            Some((m, n)) if m == last => n + 1,
            _ => 1,
        };
        self.streak = Some((last.to_string(), n));
        (n >= REPEATS_TO_STOP).then(|| RemoteError::Repeating {
            url: format!("{}/completions", self.spec.base_url),
            requests: n,
            last: last.to_string(),
        })
    }

    /// The completion of one returned choice.
    fn completion(
        &self,
        request: &Request,
        sample: u64,
        choice: &Choice,
        seconds: f64,
    ) -> Result<Completion, BoxError> {
        let mut ids = self.model.tokenizer.encode(&choice.text, false)?;
        let finish = match (choice.finish_reason.as_deref(), &choice.stop_reason) {
            (Some("length"), _) => FinishReason::Length,
            (_, Some(serde_json::Value::String(_))) => FinishReason::Stop,
            _ => {
                if let Some(&eos) = request.stop.eos_ids.first() {
                    ids.push(eos);
                }
                FinishReason::Eos
            }
        };
        let (prompt, generated) = (request.prompt.len() as u64, ids.len() as u64);
        Ok(Completion {
            request: 0,
            sample,
            text: choice.text.clone(),
            finish_reason: finish,
            prompt_tokens: request.prompt.len(),
            generated_tokens: ids.len(),
            kv: dense_stats(self.shape, prompt, generated, self.bytes_per_element),
            batch_peak_resident: 0,
            timing: Timing {
                prefill_seconds: 0.0,
                decode_seconds: seconds,
                decode_tokens_per_second: if seconds > 0.0 {
                    generated as f64 / seconds
                } else {
                    0.0
                },
                // The server batches on its side, unseen.
                occupancy: 0.0,
            },
            token_ids: ids,
        })
    }
}

/// A sample the server failed on after every retry.
fn failed(request: &Request, sample: u64) -> Completion {
    Completion {
        request: 0,
        sample,
        text: String::new(),
        token_ids: Vec::new(),
        finish_reason: FinishReason::Error,
        prompt_tokens: request.prompt.len(),
        generated_tokens: 0,
        kv: KvStats::default(),
        batch_peak_resident: 0,
        timing: Timing::default(),
    }
}

impl SampleGenerator for RemoteGenerator {
    fn device(&self) -> String {
        format!("openai:{} at {}", self.spec.model, self.spec.base_url)
    }

    fn supports(&self, trial: &Trial) -> Result<(), String> {
        match trial.spec.policy {
            CachePolicy::Dense {} => Ok(()),
            _ => Err(format!(
                "backend \"openai\" runs only the dense policy, not `{}`",
                trial.spec.policy.method()
            )),
        }
    }

    fn budget_source(&self) -> BudgetSource {
        BudgetSource::Computed
    }

    fn generate(
        &mut self,
        trial: &Trial,
        request: &Request,
        tokens: &AtomicU64,
    ) -> Result<Generated, BoxError> {
        let (repeat, first) = split_stream(request.first_sample);
        let base = Self::base_seed(request.sampling.seed, repeat);
        let sampling = &request.sampling;
        let max_n = self.spec.max_n.max(1);
        let prompt = self.prompt_body(&request.prompt)?;
        let mut tasks = tokio::task::JoinSet::new();
        for offset in (0..request.samples).step_by(max_n) {
            let n = max_n.min(request.samples - offset);
            let body = CompletionRequest {
                model: self.spec.model.clone(),
                prompt: prompt.clone(),
                n,
                max_tokens: request.max_tokens,
                temperature: sampling.temperature,
                top_p: sampling.top_p,
                top_k: (sampling.top_k > 0).then_some(sampling.top_k),
                seed: base + u64::from(first) + offset as u64,
                stop: request.stop.stop_strings.clone(),
                stream: false,
            };
            let client = self.client.clone();
            tasks.spawn_on(
                async move {
                    let start = Instant::now();
                    let r = client.complete(&body).await;
                    (offset, n, r, start.elapsed().as_secs_f64())
                },
                self.runtime.handle(),
            );
        }
        let mut results = self.runtime.block_on(async {
            let mut out = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                out.push(joined?);
            }
            Ok::<_, tokio::task::JoinError>(out)
        })?;
        // In sample order, so the failure streak counts requests in order.
        results.sort_by_key(|r| r.0);
        let mut completions = Vec::new();
        for (offset, n, result, seconds) in results {
            let stream = |i: usize| request.first_sample + (offset + i) as u64;
            let failure = match &result {
                Err(RemoteError::Exhausted { last, .. }) => Some(last.as_str()),
                _ => None,
            };
            if let Some(stop) = self.note(failure) {
                return Err(Box::new(stop));
            }
            match result {
                Ok(mut response) => {
                    let prompt_len = request.prompt.len() as u64;
                    if let (PromptBody::Text(_), Some(seen)) =
                        (&prompt, response.usage.and_then(|u| u.prompt_tokens))
                        && seen != prompt_len
                        && seen != prompt_len * n as u64
                    {
                        return Err(format!(
                            "the server counted {seen} prompt tokens where the local tokenizer \
                             has {prompt_len}: it tokenises the text prompt differently (a BOS \
                             added or not: see model.server_adds_bos; another tokenizer or \
                             chat template), so its samples would not be the local prompt's"
                        )
                        .into());
                    }
                    response.choices.sort_by_key(|c| c.index);
                    let indices: Vec<usize> = response.choices.iter().map(|c| c.index).collect();
                    if indices != (0..n).collect::<Vec<_>>() {
                        let hint = if indices.len() < n {
                            " (a server that ignores `n`, as llama.cpp and Ollama do, needs model.max_n = 1)"
                        } else {
                            ""
                        };
                        return Err(format!(
                            "asked the server for n = {n} choices, got indices {indices:?}{hint}"
                        )
                        .into());
                    }
                    for (i, choice) in response.choices.iter().enumerate() {
                        let c = self.completion(request, stream(i), choice, seconds)?;
                        tokens.fetch_add(c.generated_tokens as u64, Ordering::Relaxed);
                        completions.push(c);
                    }
                }
                Err(e @ RemoteError::Exhausted { .. }) => {
                    tracing::warn!(
                        "trial {}: samples {}..{} recorded as errors: {e}",
                        trial.id,
                        first as usize + offset,
                        first as usize + offset + n
                    );
                    completions.extend((0..n).map(|i| failed(request, stream(i))));
                }
                Err(e) => return Err(Box::new(e)),
            }
        }
        let generated: Vec<u64> = completions
            .iter()
            .filter(|c| c.finish_reason != FinishReason::Error)
            .map(|c| c.generated_tokens as u64)
            .collect();
        let peak = dense_batch_peak(self.shape, request.prompt.len() as u64, &generated);
        for c in &mut completions {
            c.batch_peak_resident = peak;
        }
        Ok(Generated {
            completions,
            kv_rows: (self.shape.layers * self.shape.kv_heads) as u64,
            kv_dtype: None,
        })
    }
}
