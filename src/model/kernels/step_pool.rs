//! Spinning workers for a CPU decode step's small parallel loops.
//!
//! A single-sequence decode step runs a few hundred projections of
//! 0.1–0.3 ms each (SmolLM2: four per layer, 30 layers). Split with rayon,
//! each one is a fork whose other half waits for a pool thread that has
//! often gone to sleep between two projections (rayon parks idle workers
//! after a few dozen yields): a futex wake, and in a VM an inter-processor
//! interrupt to a halted virtual CPU, per projection. llama.cpp instead
//! keeps its threads spinning at a barrier for the whole graph.
//!
//! [`with_spinning_workers`] does the same for the duration of one step:
//! every other thread of the current rayon pool runs a loop that spins on
//! one shared job slot, claims chunks of whatever job the step's thread
//! publishes there ([`for_each_mut`]), and between jobs runs the pool's
//! ordinary rayon work (`rayon::yield_now`, e.g. the attention kernel's
//! spans), so nothing else loses a thread. Outside such a step, or on any
//! other thread, [`for_each_mut`] is rayon's `par_iter_mut`.
//! `HYPERSCALE_DECODE_SPIN=off` turns the workers off (every loop on rayon,
//! as before; a shared machine may prefer it, and benchmarks compare the
//! two in one build).
//!
//! Chunks are claimed dynamically (an atomic counter), so which thread runs
//! a chunk varies from run to run; callers make each chunk's result depend
//! only on its index, as the GEMV kernels do (every output row is computed
//! by the same code whichever thread takes it), so results do not change
//! (`tests::results_match_one_thread`).

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// Bits of the slot word per field: `epoch | chunks | next`.
const FIELD: u32 = 20;
const MASK: u64 = (1 << FIELD) - 1;

/// How long the step's thread waits for a worker to start its loop before
/// it goes on without it (a worker starting later still joins in).
const START_WAIT: Duration = Duration::from_micros(200);

/// The job slot shared by the step's thread and its workers.
struct Slot {
    /// `epoch << 40 | chunks << 20 | next`: a claim is one `fetch_add`,
    /// valid when its `next < chunks`.
    word: AtomicU64,
    /// Chunks of the current job finished (claimed and run).
    done: AtomicUsize,
    /// The current job; written only by the step's thread while no job is
    /// open (every chunk of the previous one done).
    job: UnsafeCell<Option<JobRef>>,
    /// The first panic of a chunk run by a worker, rethrown by the step's
    /// thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The step's thread ([`this_thread`]); 0 when no step holds the
    /// workers.
    owner: AtomicUsize,
    /// Set when the step ends: the workers leave their loops.
    stop: AtomicBool,
    /// Workers that have entered their loop in the current step.
    started: AtomicUsize,
    /// Set once the step's thread has stopped waiting for workers to
    /// start: until then a worker runs no other rayon work (it could be
    /// another worker's loop, which would then return unused).
    settled: AtomicBool,
}

/// A job: `f(chunk)` for every chunk, the lifetime erased (the publishing
/// call returns only after every chunk ran).
#[derive(Clone, Copy)]
struct JobRef(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: `job` is written only by the owner while no worker can read it
// (no chunk of an open job is left unclaimed-and-unfinished, see `Slot`),
// and read only after a claim that synchronizes with the publishing store;
// the closure it points to is `Sync`.
unsafe impl Sync for Slot {}
// SAFETY: the pointee is `Sync` and outlives every use (see `JobRef`).
unsafe impl Send for JobRef {}

static SLOT: Slot = Slot {
    word: AtomicU64::new(0),
    done: AtomicUsize::new(0),
    job: UnsafeCell::new(None),
    panic: Mutex::new(None),
    owner: AtomicUsize::new(0),
    stop: AtomicBool::new(false),
    started: AtomicUsize::new(0),
    settled: AtomicBool::new(false),
};

thread_local! {
    /// Whether this thread runs a worker loop or publishes a job now
    /// (nested calls fall back).
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// This thread's number (from 1), unique in the process.
    static ID: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
}

/// This thread's number (never 0).
fn this_thread() -> usize {
    ID.with(|id| *id)
}

/// Whether the spinning workers are on (`HYPERSCALE_DECODE_SPIN`: `on`,
/// the default, or `off`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var("HYPERSCALE_DECODE_SPIN") {
        Ok(v) if v == "off" => false,
        Ok(v) if v.is_empty() || v == "on" => true,
        Ok(v) => {
            tracing::warn!("HYPERSCALE_DECODE_SPIN: `{v}` is neither on nor off; using on");
            true
        }
        Err(_) => true,
    })
}

/// Run `f` on a thread of rayon's pool (directly when already on one).
///
/// A CPU decode step forks a few hundred small parallel loops (the GEMV's
/// output blocks, the attention kernel's spans). Forked from a pool worker,
/// each one runs partly on that worker and the join is work-stealing; forked
/// from outside, each one wakes the pool and parks the calling thread until
/// a worker signals it, twice a few microseconds of latency per loop. On
/// SmolLM2 here that cut the profile's attention phase of a single-sequence
/// step from ≈ 3.1 to ≈ 1.1 ms (2-core AMD EPYC, 2026-12-03, `bench decode --profile`).
/// The forward passes run here (`runtime`), and so does sampling
/// (`generate::sample_rows`), whose split rows fork the same way.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        // `join` called from outside the pool runs both closures on it.
        rayon::join(f, || ()).0
    }
}

/// Run `f` (a decode step) with every other thread of the current rayon
/// pool spinning for [`for_each_mut`]'s jobs until it returns. Without a
/// pool of at least two threads, off the pool, inside another such step
/// or nested, it just runs `f`.
pub fn with_spinning_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let me = this_thread();
    let threads = rayon::current_num_threads();
    if !enabled() || rayon::current_thread_index().is_none() || threads < 2 || BUSY.with(Cell::get)
    {
        return f();
    }
    if SLOT
        .owner
        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return f();
    }
    // Frees the slot however the step ends.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            SLOT.owner.store(0, Ordering::Release);
        }
    }
    let _release = Release;
    SLOT.stop.store(false, Ordering::Release);
    SLOT.started.store(0, Ordering::Release);
    SLOT.settled.store(false, Ordering::Release);
    let out = rayon::in_place_scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| worker(me));
        }
        // Let the workers start before the step forks anything of its own:
        // this thread, waiting inside a rayon join, would otherwise take a
        // worker's job from its own queue (and drop it, see `worker`).
        let t0 = Instant::now();
        while SLOT.started.load(Ordering::Acquire) < threads - 1 && t0.elapsed() < START_WAIT {
            std::hint::spin_loop();
        }
        SLOT.settled.store(true, Ordering::Release);
        let out = catch_unwind(AssertUnwindSafe(f));
        SLOT.stop.store(true, Ordering::Release);
        out
    });
    out.unwrap_or_else(|p| resume_unwind(p))
}

/// A worker's loop: claim chunks of published jobs, else run rayon work,
/// until the step ends. Returns at once on the step's own thread or on a
/// thread already running a loop (a job taken from a queue while waiting).
fn worker(owner: usize) {
    if this_thread() == owner || BUSY.with(Cell::get) || SLOT.stop.load(Ordering::Acquire) {
        return;
    }
    let _busy = Busy::set();
    SLOT.started.fetch_add(1, Ordering::AcqRel);
    let mut idle = 0u32;
    while !SLOT.stop.load(Ordering::Acquire) {
        if claim_and_run() {
            idle = 0;
            continue;
        }
        if SLOT.settled.load(Ordering::Acquire)
            && matches!(rayon::yield_now(), Some(rayon::Yield::Executed))
        {
            idle = 0;
            continue;
        }
        idle = idle.saturating_add(1);
        if idle > 1 << 14 {
            // Nothing for a while (a long sampling step, a loaded machine):
            // give the core away now and then.
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Marks this thread [`BUSY`] until dropped (a panic included).
struct Busy;

impl Busy {
    fn set() -> Busy {
        BUSY.with(|b| b.set(true));
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
    }
}

/// Claim one chunk of the open job and run it; false when there is none.
fn claim_and_run() -> bool {
    let w = SLOT.word.load(Ordering::Acquire);
    if w & MASK >= (w >> FIELD) & MASK {
        return false;
    }
    let w = SLOT.word.fetch_add(1, Ordering::AcqRel);
    let (next, chunks) = (w & MASK, (w >> FIELD) & MASK);
    if next >= chunks {
        return false;
    }
    // SAFETY: the claim is valid, so its job is open: the owner wrote `job`
    // before the release store this claim read and rewrites it only after
    // every chunk (this one included) is done.
    let job = unsafe { (*SLOT.job.get()).expect("an open job") };
    // SAFETY: the closure outlives the open job (`publish` waits for it).
    let f = unsafe { &*job.0 };
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(next as usize))) {
        SLOT.panic
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(p);
    }
    SLOT.done.fetch_add(1, Ordering::AcqRel);
    true
}

/// `f(i, &mut items[i])` for every `i`, in parallel: on the step's
/// spinning workers inside [`with_spinning_workers`] (on its thread), else
/// on rayon's pool. Each item is visited exactly once, by some thread.
pub fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let n = items.len();
    let spinning = n > 1
        // Failed claims push `next` past `chunks` by at most one per thread.
        && n < 1 << 16
        && SLOT.owner.load(Ordering::Acquire) == this_thread()
        && !BUSY.with(Cell::get);
    if !spinning {
        items
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, item)| f(i, item));
        return;
    }
    let base = SendPtr(items.as_mut_ptr());
    let run = move |i: usize| {
        let base = &base;
        // SAFETY: `i < n` and each index is claimed exactly once, so the
        // `&mut` are disjoint and inside `items`, which outlives the job.
        f(i, unsafe { &mut *base.0.add(i) })
    };
    publish(n, &run);
}

struct SendPtr<T>(*mut T);
// SAFETY: used only to hand out disjoint `&mut T` of a `T: Send` slice.
unsafe impl<T: Send> Sync for SendPtr<T> {}
unsafe impl<T: Send> Send for SendPtr<T> {}

/// Open a job of `chunks` chunks, take part, wait for all of them.
fn publish(chunks: usize, run: &(dyn Fn(usize) + Sync)) {
    let busy = Busy::set();
    // SAFETY: lifetime erased; this function returns only after every
    // chunk has run (`done == chunks`), and no worker reads `job` after
    // its chunk is done.
    let job: JobRef = JobRef(unsafe {
        std::mem::transmute::<
            *const (dyn Fn(usize) + Sync + '_),
            *const (dyn Fn(usize) + Sync + 'static),
        >(run)
    });
    // SAFETY: no job is open (the previous `publish` waited for all its
    // chunks), so no worker reads `job` now.
    unsafe { *SLOT.job.get() = Some(job) };
    SLOT.done.store(0, Ordering::Release);
    let epoch = (SLOT.word.load(Ordering::Acquire) >> (2 * FIELD)).wrapping_add(1);
    SLOT.word.store(
        (epoch << (2 * FIELD)) | ((chunks as u64) << FIELD),
        Ordering::Release,
    );
    while claim_and_run() {}
    let mut spins = 0u32;
    while SLOT.done.load(Ordering::Acquire) < chunks {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) {
            // A worker descheduled mid-chunk (loaded machine).
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    drop(busy);
    let panic = SLOT
        .panic
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(p) = panic {
        resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::block_gemv::BlockWeight;
    use crate::model::kernels::q8act::{IntPath, gemv_q8act_with};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The slot is one per process: these tests take it in turn (a step
    /// that finds it taken runs without workers, which they check).
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
    }

    #[test]
    fn every_item_runs_once_over_many_jobs() {
        let _serial = serial();
        pool(3).install(|| {
            with_spinning_workers(|| {
                assert_eq!(SLOT.owner.load(Ordering::Acquire), this_thread());
                for job in 0..2000usize {
                    let n = 1 + job % 37;
                    let mut items = vec![0usize; n];
                    for_each_mut(&mut items, |i, v| *v += i + 1);
                    let want: Vec<usize> = (1..=n).collect();
                    assert_eq!(items, want, "job {job}");
                    // Rayon work in between, as a decode step has.
                    let s: usize = (0..64usize).into_par_iter().sum();
                    assert_eq!(s, 2016);
                }
            });
            assert_eq!(SLOT.owner.load(Ordering::Acquire), 0);
        });
    }

    #[test]
    fn a_chunk_panic_reaches_the_step() {
        let _serial = serial();
        let caught = pool(2).install(|| {
            catch_unwind(AssertUnwindSafe(|| {
                with_spinning_workers(|| {
                    let mut items = vec![0u8; 64];
                    for_each_mut(&mut items, |i, _| assert!(i != 40, "chunk 40"));
                })
            }))
        });
        assert!(caught.is_err());
        // The slot is free again: a later step works.
        pool(2).install(|| {
            with_spinning_workers(|| {
                let mut items = vec![0u8; 8];
                for_each_mut(&mut items, |_, v| *v = 1);
                assert_eq!(items, vec![1; 8]);
            })
        });
    }

    /// The q8act product inside a step on two and four threads gives the
    /// one-thread bits, for one and several activation rows.
    #[test]
    fn results_match_one_thread() {
        let _serial = serial();
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let (out, inp) = (1004, 512);
        let rows = out;
        // Q8_0 blocks with random bytes and f16 scales.
        let mut bytes = Vec::with_capacity(rows * inp / 32 * 34);
        for _ in 0..rows * inp / 32 {
            let d = half::f16::from_f32(rng.random_range(0.001f32..0.05));
            bytes.extend_from_slice(&d.to_le_bytes());
            for _ in 0..32 {
                bytes.push(rng.random::<u8>());
            }
        }
        let w = BlockWeight::new(
            crate::model::formats::gguf::GgmlType::Q8_0,
            rows,
            inp,
            bytes,
        )
        .expect("a Q8_0 weight")
        .with_int8_activations(true);
        for n in [1usize, 3] {
            let x: Vec<f32> = (0..n * inp)
                .map(|_| rng.random_range(-2.0f32..2.0))
                .collect();
            for path in IntPath::supported() {
                let one = pool(1).install(|| gemv_q8act_with(path, &w, &x, n, None));
                for threads in [2, 4] {
                    let many = pool(threads).install(|| {
                        with_spinning_workers(|| {
                            (0..5)
                                .map(|_| gemv_q8act_with(path, &w, &x, n, None))
                                .collect::<Vec<_>>()
                        })
                    });
                    for y in many {
                        let same = y.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{path:?}, {n} rows, {threads} threads");
                    }
                }
            }
        }
    }
}
