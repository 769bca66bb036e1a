//! The [`Transformer`] as generation's [`Decoder`]: logits leave the device
//! as host f32 rows (a decode step's DMS decisions with them, in one read).

use burn::prelude::*;

use super::Transformer;
use crate::generate::Decoder;
use crate::kv::{AttentionBackend, KvShape, KvStore, SeqId};

/// Row-major host copy of f32 logits.
fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    crate::profile::read_back(t)
}

impl<B: AttentionBackend> Decoder for Transformer<B> {
    fn kv_shape(&self) -> KvShape {
        Transformer::kv_shape(self)
    }

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        host(self.prefill_last(store, seq, tokens))
    }

    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        Transformer::decode_host(self, store, seqs, tokens)
    }
}
