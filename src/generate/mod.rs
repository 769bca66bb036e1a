//! Batched decoding under a cache policy: prefill a prompt once, fork its KV
//! for W samples, decode all live samples of all requests as one batch,
//! sample each with its own seeded stream, stop on EOS / stop strings / the
//! token limit.

pub mod admission;
pub mod chunked;
pub mod draw;
pub mod engine;
mod exp;
mod head;
mod ranking;
pub mod sampling;
pub mod scheduler;
pub mod stop;
#[cfg(test)]
mod testing;

pub use admission::{KeepRate, dms_guess, request_bound};
pub use chunked::chunks_prefill;
pub use draw::sample_rows;
pub use engine::{
    Completion, Decoder, Request, TextDecoder, Timing, TokenEvent, attribute_step, generate,
};
pub use sampling::{Sampler, SamplingError, SamplingParams, check_sampling};
pub use scheduler::{SchedulerOptions, SchedulerStats, generate_continuous};
pub use stop::{FinishReason, StopCriteria};
