//! Errors of the KV store: misuse of rows, slots and positions.

use super::SeqId;

/// What went wrong in a [`KvStore`](super::KvStore) call. Each variant names
/// the row or slot involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("sequence {0:?} is unknown or was released")]
    UnknownSequence(SeqId),
    #[error(
        "row (layer {layer}, kv head {head}) is outside the store shape ({layers} layers, {kv_heads} kv heads)"
    )]
    RowOutOfRange {
        layer: usize,
        head: usize,
        layers: usize,
        kv_heads: usize,
    },
    #[error("slot {slot} of row (layer {layer}, kv head {head}) is not below its length {len}")]
    SlotOutOfRange {
        layer: usize,
        head: usize,
        slot: usize,
        len: usize,
    },
    #[error(
        "position {pos} written to row (layer {layer}, kv head {head}) does not follow its last position {last}"
    )]
    PositionNotIncreasing {
        layer: usize,
        head: usize,
        pos: u32,
        last: u32,
    },
    #[error("entry of {got} floats where head_dim is {head_dim}")]
    EntryWidth { got: usize, head_dim: usize },
    #[error("block size must be at least 1, got {0}")]
    BlockSize(usize),
    #[error("store payload lives on a device; this call needs it on the host")]
    PayloadOnDevice,
    #[error("sequence {0:?} appears twice in one decode batch")]
    DuplicateSequence(SeqId),
    #[error("store invariant broken: {0}")]
    Invariant(String),
    #[error("cache policy: {0}")]
    Policy(String),
    #[error(
        "--kv-dtype {dtype}: policy {policy} keeps its K/V on the host, in f32; a narrower KV dtype applies to dense and dms on a device"
    )]
    KvDtypeOnHost {
        dtype: super::KvDtype,
        policy: String,
    },
    #[error("--kv-dtype {0}: the store already holds entries")]
    KvDtypeNotEmpty(super::KvDtype),
    #[error(
        "policy dms needs one decision per (token, kv head) for layer {layer}: expected {expected}, got {got}"
    )]
    Decisions {
        layer: usize,
        expected: usize,
        got: usize,
    },
}
