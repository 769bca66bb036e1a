//! A sweep's KV memory on a device (wgpu over Mesa's lavapipe here): the
//! store `kv_store_for` builds allocates its pools once from the budget;
//! a request whose own bound exceeds the budget runs alone, its pools
//! growing by copying (counted); the default KV memory on wgpu is what the
//! pools can hold. Every case gives the tokens of the run without a budget.
#![cfg(feature = "wgpu")]

use hyperscale::device::DeviceKind;
use hyperscale::generate::{
    Completion, Decoder, Request, SamplingParams, SchedulerOptions, SchedulerStats, StopCriteria,
    generate_continuous, request_bound,
};
use hyperscale::kv::{CachePolicy, DevicePoolStats};
use hyperscale::runtime::{LoadedModel, default_kv_memory, device_pool_limit};
use hyperscale::sweep::wiring::kv_store_for;

use super::device_parity::{device_lock, fixture};

/// Two requests (W = 4 and 2) of 100- and 60-token prompts, 40 and 30
/// new tokens: each sample's rows outgrow the 8 blocks a pool starts with.
fn requests() -> Vec<Request> {
    [(100usize, 4usize, 40usize), (60, 2, 30)]
        .iter()
        .enumerate()
        .map(|(r, &(len, samples, max_tokens))| Request {
            prompt: (0..len)
                .map(|i| ((i * 41 + r * 97) % 450 + 3) as u32)
                .collect(),
            samples,
            first_sample: 0,
            max_tokens,
            sampling: SamplingParams {
                temperature: 0.0,
                ..SamplingParams::default()
            },
            stop: StopCriteria::default(),
        })
        .collect()
}

/// The requests through the scheduler in the sweep's store for `kv_memory`:
/// completions (sorted), the scheduler's stats and the pools' stats.
fn run(
    model: &LoadedModel,
    policy: &CachePolicy,
    kv_memory: Option<u64>,
) -> (Vec<Completion>, SchedulerStats, Option<DevicePoolStats>) {
    run_these(model, policy, requests(), kv_memory)
}

fn run_these(
    model: &LoadedModel,
    policy: &CachePolicy,
    requests: Vec<Request>,
    kv_memory: Option<u64>,
) -> (Vec<Completion>, SchedulerStats, Option<DevicePoolStats>) {
    let mut store = kv_store_for(model, policy, kv_memory).expect("store");
    let mut done = Vec::new();
    let stats = generate_continuous(
        model,
        &model.tokenizer,
        &mut store,
        requests,
        SchedulerOptions {
            max_sequences: 8,
            kv_memory,
            keep_prior: None,
            prefill_chunk: None,
        },
        |_| {},
        |c| done.extend(c),
    );
    done.sort_by_key(|c| (c.request, c.sample));
    for c in &mut done {
        c.timing = Default::default();
    }
    (done, stats, store.device_pool_stats())
}

#[test]
fn wgpu_sweep_store_takes_its_pools_from_the_kv_memory_once() {
    let _device = device_lock();
    let model = LoadedModel::load(&fixture("tiny-qwen3"), DeviceKind::Wgpu).expect("wgpu model");
    let layers = model.kv_shape().layers as u64;
    let dense = CachePolicy::Dense {};
    // Both requests in one batch (6 of 8 places), without a budget: the
    // pools grow by copying.
    let (together, _, grown) = run(&model, &dense, None);
    assert_eq!(together.len(), 6);
    let grown = grown.expect("device pools");
    assert!(
        grown.grow_copies > 0,
        "without a budget the pools grow by copying: {grown:?}"
    );

    // Room for both requests at once (twice their bounds: the ledger's
    // pools grow by ×1.5 within it): one allocation per pool, of the
    // budget's whole blocks, never copied; the same batch, the same tokens.
    let probe = kv_store_for(&model, &dense, None).unwrap();
    let bound: u64 = requests().iter().map(|r| request_bound(&probe, r)).sum();
    let budget = 2 * bound;
    let (got, stats, pools) = run(&model, &dense, Some(budget));
    assert_eq!(got, together, "a reserved pool changes no token");
    assert_eq!(stats.over_budget, 0);
    let pools = pools.expect("device pools");
    let block = (probe.block_size() as u64) * probe.entry_bytes() * layers;
    assert_eq!(
        pools,
        DevicePoolStats {
            allocations: 2 * layers,
            bytes: budget / block * block,
            grow_copies: 0,
        }
    );

    // A budget an eighth of the two bounds, below either request's: each
    // runs alone, its pools growing past the reservation by copying (the
    // counted fallback), with the tokens of the requests run one at a time.
    let mut one_at_a_time = Vec::new();
    for (r, request) in requests().into_iter().enumerate() {
        let (alone, _, _) = run_these(&model, &dense, vec![request], None);
        one_at_a_time.extend(alone.into_iter().map(|c| Completion { request: r, ..c }));
    }
    let (got, stats, pools) = run(&model, &dense, Some(bound / 8));
    assert_eq!(got, one_at_a_time, "requests over the budget run alone");
    assert_eq!(stats.over_budget, 2, "{stats:?}");
    assert!(pools.expect("device pools").grow_copies > 0);

    // On the CPU the budget reserves nothing (host vectors).
    let cpu = LoadedModel::load(&fixture("tiny-qwen3"), DeviceKind::Cpu).expect("cpu model");
    let (on_cpu, _, none) = run(&cpu, &dense, Some(budget));
    assert_eq!(on_cpu.len(), 6);
    assert_eq!(none, None);
}

#[test]
fn wgpu_default_kv_memory_is_what_the_pools_hold_within_half_the_host() {
    let _device = device_lock();
    let layers = 2;
    let limit = device_pool_limit(DeviceKind::Wgpu, layers).expect("wgpu buffer limit");
    // Lavapipe: 128 MiB per buffer, K and V of 2 layers.
    assert_eq!(limit % (2 * layers as u64), 0);
    // Other tests allocate and free while this one reads the available
    // memory, so the default (read inside) is checked against the
    // readings just before and after it, give or take 1%.
    let half_host = || hyperscale::limits::available_memory().map(|m| m / 2);
    let host = half_host();
    let d = default_kv_memory(DeviceKind::Wgpu, layers).expect("wgpu default");
    let cpu = default_kv_memory(DeviceKind::Cpu, layers);
    let after = half_host();
    match host.zip(after) {
        Some((a, b)) => {
            let within = |got: u64, cap: u64| {
                let (lo, hi) = (a.min(b).min(cap), a.max(b).min(cap));
                got + hi / 100 >= lo && got <= hi + hi / 100
            };
            assert!(within(d.bytes, limit), "{d:?} against {a}..{b}");
            let cpu = cpu.as_ref().expect("a CPU default where memory is known");
            assert!(within(cpu.bytes, u64::MAX), "{cpu:?} against {a}..{b}");
        }
        None => {
            assert_eq!(d.bytes, limit, "{d:?}");
            assert!(cpu.is_none());
        }
    }
    assert!(d.source.contains("largest buffer"), "{}", d.source);
    if let Some(cpu) = cpu {
        assert!(cpu.source.contains("half the available memory"));
    }
    assert_eq!(device_pool_limit(DeviceKind::Cpu, layers), None);
}
