//! K/V payload in host memory: per layer one key and one value vector laid
//! out by global slot (`slot * head_dim ..`), the same numbering as the
//! ledger's block pools.

use super::SlotCopy;

/// One layer's keys and values.
///
/// # Shapes
/// `keys`, `values`: `[capacity_blocks × block_size, head_dim]`, row-major.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostLayer {
    pub(crate) keys: Vec<f32>,
    pub(crate) values: Vec<f32>,
}

/// Host payload of every layer.
#[derive(Debug, Clone)]
pub(crate) struct HostPayload {
    head_dim: usize,
    block_size: usize,
    pub(crate) layers: Vec<HostLayer>,
}

impl HostPayload {
    pub(crate) fn new(layers: usize, block_size: usize, head_dim: usize) -> Self {
        Self {
            head_dim,
            block_size,
            layers: vec![HostLayer::default(); layers],
        }
    }

    /// Make room for `blocks` blocks in `layer` (new space is zeroed).
    pub(crate) fn ensure(&mut self, layer: usize, blocks: usize) {
        let n = blocks * self.block_size * self.head_dim;
        let l = &mut self.layers[layer];
        if l.keys.len() < n {
            l.keys.resize(n, 0.0);
            l.values.resize(n, 0.0);
        }
    }

    /// Apply copy-on-write and eviction moves, in order.
    pub(crate) fn apply(&mut self, copies: &[SlotCopy]) {
        let d = self.head_dim;
        for c in copies {
            let l = &mut self.layers[c.layer];
            let (s, t, n) = (c.src as usize * d, c.dst as usize * d, c.n as usize * d);
            l.keys.copy_within(s..s + n, t);
            l.values.copy_within(s..s + n, t);
        }
    }

    /// Write one entry into a global slot.
    ///
    /// # Shapes
    /// `k`, `v`: `[head_dim]`.
    pub(crate) fn write(&mut self, layer: usize, slot: u32, k: &[f32], v: &[f32]) {
        let d = self.head_dim;
        let at = slot as usize * d;
        let l = &mut self.layers[layer];
        l.keys[at..at + d].copy_from_slice(k);
        l.values[at..at + d].copy_from_slice(v);
    }
}
