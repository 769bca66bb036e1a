//! A small client of the OpenAI-compatible `/v1/completions` endpoint:
//! token-id or text prompts, `n` samples per request, a bound on requests
//! in flight, a per-request timeout, and retries with exponential backoff
//! on 429, 5xx, timeouts and connection errors. Other statuses (400, 401,
//! 404, 422, …) mean the request itself is wrong and are not retried; nor
//! is a 5xx whose body is a validation error (some servers answer a
//! malformed request with 500: retrying it cannot help).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::sweep::RemoteSpec;

/// A prompt as sent: token ids (a JSON array of integers) or text (a JSON
/// string).
#[derive(Debug, Clone, PartialEq)]
pub enum PromptBody {
    Tokens(Vec<u32>),
    Text(String),
}

impl Serialize for PromptBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PromptBody::Tokens(ids) => ids.serialize(s),
            PromptBody::Text(text) => text.serialize(s),
        }
    }
}

/// The body of a completions request. With token ids the server sees
/// exactly the tokens a local run would (no second BOS, no
/// re-tokenisation); a text prompt is checked to tokenise to them
/// ([`super::generator`]). Logprobs are left off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: PromptBody,
    pub n: usize,
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// vLLM/SGLang extension; sent only when sampling uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    pub seed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    pub stream: bool,
}

/// The parts of a completions response the sweep reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CompletionResponse {
    pub choices: Vec<Choice>,
    /// Token counts as the server saw them, when it says.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// The `usage` object of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Choice {
    pub index: usize,
    pub text: String,
    /// `stop` (EOS or a stop string) or `length`.
    pub finish_reason: Option<String>,
    /// vLLM: the stop string that ended the sample, or the EOS id; null
    /// when it ended on EOS.
    #[serde(default)]
    pub stop_reason: Option<serde_json::Value>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// 429, 5xx, timeouts, connection errors, after every retry: the samples
    /// become error records.
    #[error("`{url}` failed {attempts} times, last: {last}")]
    Exhausted {
        url: String,
        attempts: u32,
        last: String,
    },
    /// Any other status, or a validation error whatever its status: a
    /// harness failure (bad model name, bad key, a prompt the server does
    /// not take, …) that stops the sweep.
    #[error("`{url}` answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// The same failure on several requests in a row, each after every
    /// retry: not transient, so the sweep stops instead of recording every
    /// remaining sample as an error.
    #[error(
        "`{url}` failed {requests} requests in a row with the same error, each after every retry: {last}"
    )]
    Repeating {
        url: String,
        requests: u32,
        last: String,
    },
    #[error("`{url}`: unreadable response: {message}")]
    Malformed { url: String, message: String },
    #[error("environment variable `{name}` (model.api_key_env) is not set")]
    NoApiKey { name: String },
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
}

/// One server, shared by concurrent requests.
#[derive(Debug)]
pub struct OpenAiClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl OpenAiClient {
    pub fn new(spec: &RemoteSpec) -> Result<Self, RemoteError> {
        let api_key = match &spec.api_key_env {
            Some(name) => Some(
                std::env::var(name).map_err(|_| RemoteError::NoApiKey { name: name.clone() })?,
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(OpenAiClient {
            http,
            url: format!("{}/completions", spec.base_url),
            api_key,
            permits: Arc::new(Semaphore::new(spec.concurrency.max(1))),
            timeout: spec.timeout,
            retries: spec.retries,
            backoff: spec.backoff,
        })
    }

    /// Send `body`, retrying retryable failures; holds one of the
    /// `concurrency` permits while a request is in flight (not while
    /// backing off).
    pub async fn complete(
        &self,
        body: &CompletionRequest,
    ) -> Result<CompletionResponse, RemoteError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|e| RemoteError::Client(e.to_string()))?;
                self.attempt(body).await
            };
            let (last, retry_after) = match outcome {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry {
                    reason,
                    retry_after,
                } => (reason, retry_after),
            };
            if attempt > self.retries {
                return Err(RemoteError::Exhausted {
                    url: self.url.clone(),
                    attempts: attempt,
                    last,
                });
            }
            let wait = retry_after.unwrap_or_else(|| backoff(self.backoff, attempt - 1));
            tracing::warn!(
                "{} (attempt {attempt}): {last}; retrying in {:.1} s",
                self.url,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, body: &CompletionRequest) -> Attempt {
        let mut request = self.http.post(&self.url).timeout(self.timeout).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() {
                    format!("no answer within {:.1} s", self.timeout.as_secs_f64())
                } else {
                    format!("request failed: {e}")
                };
                return Attempt::Retry {
                    reason,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                let reason = if e.is_timeout() {
                    format!(
                        "no complete answer within {:.1} s",
                        self.timeout.as_secs_f64()
                    )
                } else {
                    format!("reading the answer failed: {e}")
                };
                return Attempt::Retry {
                    reason,
                    retry_after: None,
                };
            }
        };
        let code = status.as_u16();
        if status.is_server_error() && is_validation_error(&text) {
            return Attempt::Fatal(RemoteError::Rejected {
                url: self.url.clone(),
                status: code,
                body: excerpt(&text),
            });
        }
        if code == 429 || status.is_server_error() {
            return Attempt::Retry {
                reason: format!("status {code}: {}", excerpt(&text)),
                retry_after,
            };
        }
        if !status.is_success() {
            return Attempt::Fatal(RemoteError::Rejected {
                url: self.url.clone(),
                status: code,
                body: excerpt(&text),
            });
        }
        match serde_json::from_str(&text) {
            Ok(r) => Attempt::Done(r),
            Err(e) => Attempt::Fatal(RemoteError::Malformed {
                url: self.url.clone(),
                message: e.to_string(),
            }),
        }
    }
}

enum Attempt {
    Done(CompletionResponse),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(RemoteError),
}

/// A `Retry-After` header in seconds, at most [`MAX_BACKOFF`]: capped before
/// it becomes a `Duration`, so a server answering `1e30` cannot panic the
/// harness. `None` for a date or anything else that is not seconds.
fn retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_BACKOFF.as_secs_f64())))
}

/// `first × 2^retry`, at most [`MAX_BACKOFF`].
pub fn backoff(first: Duration, retry: u32) -> Duration {
    first
        .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}

/// True when an error body says the request itself is invalid (FastAPI /
/// pydantic validation errors, OpenAI's `invalid_request_error`), which no
/// retry can fix, whatever status came with it.
pub fn is_validation_error(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    [
        "validation error",
        "validationerror",
        "invalid_request_error",
        "unprocessable",
        "field required",
        "extra_forbidden",
    ]
    .iter()
    .any(|m| b.contains(m))
}

/// The first 200 characters of a body, on one line.
fn excerpt(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_retry_after_is_capped_not_a_panic() {
        assert_eq!(retry_after("1e30"), Some(MAX_BACKOFF));
        assert_eq!(retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("inf"), None);
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), 0), s(1));
        assert_eq!(backoff(s(1), 3), s(8));
        assert_eq!(backoff(s(1), 10), s(60));
        assert_eq!(backoff(s(1), 40), s(60));
    }

    #[test]
    fn requests_serialise_without_logprobs_or_unused_extensions() {
        let r = CompletionRequest {
            model: "m".into(),
            prompt: PromptBody::Tokens(vec![1, 2]),
            n: 4,
            max_tokens: 16,
            temperature: 0.5,
            top_p: 1.0,
            top_k: None,
            seed: 7,
            stop: vec![],
            stream: false,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"model":"m","prompt":[1,2],"n":4,"max_tokens":16,"temperature":0.5,"top_p":1.0,"seed":7,"stream":false}"#
        );
        let text = CompletionRequest {
            prompt: PromptBody::Text("<|im_start|>user\nhi".into()),
            ..r
        };
        assert!(
            serde_json::to_string(&text)
                .unwrap()
                .contains(r#""prompt":"<|im_start|>user\nhi""#)
        );
    }

    #[test]
    fn validation_errors_are_told_from_outages() {
        assert!(is_validation_error(
            r#"{"detail":[{"type":"missing","msg":"Field required"}]}"#
        ));
        assert!(is_validation_error(
            r#"{"error":{"message":"1 validation error for CreateCompletionRequest","type":"internal_server_error"}}"#
        ));
        assert!(is_validation_error(
            r#"{"error":{"type":"invalid_request_error"}}"#
        ));
        assert!(!is_validation_error(r#"{"error":"boom"}"#));
        assert!(!is_validation_error("Bad Gateway"));
    }
}
