//! The device pools' memory on wgpu (Mesa lavapipe here): sized once from a
//! KV memory budget ([`KvStore::with_device_pool_bytes`]) they are allocated
//! once per layer and never copied to grow; without one they grow by
//! copying; dropping the store returns the memory to the device.
#![cfg(feature = "wgpu")]

use burn::backend::wgpu::{WgpuDevice, WgpuRuntime};
use burn::prelude::*;
use cubecl::Runtime;
use hyperscale::kv::{AttentionBackend, DevicePoolStats, KvShape, KvStore};

type Gpu = hyperscale::kv::WgpuBackend;

const SHAPE: KvShape = KvShape {
    layers: 2,
    kv_heads: 2,
    head_dim: 16,
};

/// A 100-token prefill then 10 decode steps of a new sequence, every layer;
/// the pools' stats so far.
fn run(store: &mut KvStore) -> DevicePoolStats {
    let device = WgpuDevice::default();
    let d = SHAPE.head_dim;
    let seq = store.add_sequence();
    let prompt = 100;
    for layer in 0..SHAPE.layers {
        let dims = [SHAPE.kv_heads, prompt, d];
        let x: Vec<f32> = (0..SHAPE.kv_heads * prompt * d)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let t = || Tensor::<Gpu, 3>::from_data(TensorData::new(x.clone(), dims), &device);
        Gpu::prefill_write(store, layer, seq, t(), t());
    }
    store.advance(seq, prompt);
    for _ in 0..10 {
        for layer in 0..SHAPE.layers {
            let t = |heads| Tensor::<Gpu, 3>::ones([1, heads, d], &device);
            let out = Gpu::decode_attention(store, layer, &[seq], t(4), t(2), t(2), 0.25);
            assert_eq!(out.dims(), [1, 4, d]);
        }
        store.advance(seq, 1);
    }
    store
        .device_pool_stats()
        .expect("the payload is on the device")
}

#[test]
fn device_pools_sized_from_the_budget_are_allocated_once_and_returned_on_drop() {
    let client = WgpuRuntime::client(&WgpuDevice::default());
    // 96 MiB of K/V over both layers: 49 152 blocks of 8 entries per layer.
    let budget: u64 = 96 << 20;
    let before = client.memory_usage().expect("memory usage");
    {
        let mut store = KvStore::with_block_size(SHAPE, 8)
            .unwrap()
            .with_device_pool_bytes(budget);
        run(&mut store);
        let stats = run(&mut store);
        assert_eq!(
            stats,
            DevicePoolStats {
                allocations: 2 * SHAPE.layers as u64,
                bytes: budget,
                grow_copies: 0,
            }
        );
        let held = client.memory_usage().expect("memory usage");
        assert!(
            held.bytes_in_use >= budget,
            "pools live: {held:?} vs {before:?}"
        );
    }
    let after = client.memory_usage().expect("memory usage");
    eprintln!("before {before:?}\nafter drop {after:?}");
    assert!(
        after.bytes_reserved < before.bytes_reserved + budget / 2,
        "the pools' memory went back to the device: {after:?} vs {before:?}"
    );

    // Without a reservation the pools follow the ledger (×1.5), copying:
    // the second sequence outgrows what the first one allocated.
    let mut store = KvStore::with_block_size(SHAPE, 8).unwrap();
    run(&mut store);
    let stats = run(&mut store);
    assert!(stats.grow_copies > 0, "{stats:?}");
}
