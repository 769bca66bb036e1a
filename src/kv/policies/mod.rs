//! The cache policies' implementations: one file per method, over one shared
//! mechanism.
//!
//! A scored policy (window, TOVA, H2O) is a [`scorer::Scorer`]: how a score
//! follows attention, what is protected, the budget. `slots.rs` picks the
//! lowest-scoring entries and evicts them with the bookkeeping; `prefill.rs`
//! and `decode.rs` run every policy through the store ([`KvStore::
//! policy_prefill`](super::KvStore::policy_prefill), [`KvStore::
//! policy_decode`](super::KvStore::policy_decode)). DMS (`dms.rs`) places by
//! its ring; Quest (`quest.rs`) selects pages to read.
//!
//! Per-sequence state lives in a [`book::PolicyBook`] beside the ledger and
//! follows forks and releases.

pub(crate) mod book;
mod decode;
pub(crate) mod dms;
mod h2o;
pub mod prefill;
pub(crate) mod quest;
pub(crate) mod scorer;
pub(crate) mod slots;
mod tova;
mod window;

pub(crate) use book::PolicyBook;
pub use prefill::PrefillStep;
