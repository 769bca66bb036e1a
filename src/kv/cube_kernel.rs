//! cubecl kernels over the paged layout, for any cubecl runtime (CUDA,
//! wgpu): scatter new entries into a layer's pools, copy slots
//! (copy-on-write, eviction moves), grow a pool, and split-K decode
//! attention.
//!
//! Decode attention runs in two launches. `decode_partial` gives one cube to
//! each (row, span) of `span` entries — a row is a (sequence, KV head) with
//! its G query heads — with `head_dim` units: per tile of `head_dim` keys,
//! unit `t` scores key `t` for all G heads (one key load for the group) into
//! shared memory, every unit reads the tile's maximum from shared memory,
//! unit `t` turns its scores into max-subtracted exponentials, and unit `t`
//! accumulates dimension `t` of the weighted values (an online softmax in
//! f32). `decode_merge` combines the spans of a row with the log-sum-exp rule.
//!
//! Reductions use shared memory only, never plane (warp) operations: Mesa's
//! lavapipe, where these kernels are tested, reports no plane features and a
//! subgroup of 8 on which a 32-lane `plane_sum` silently returns partial sums
//! (`docs/dependencies.md` §4), so a plane path would be the one path the tests cannot
//! check. Running maxima start at a finite `-1e30`: WGSL has no `-inf`.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::cpu_kernel::{PagedKv, RowRef};

/// Units per cube of the elementwise kernels.
const ELEMWISE_UNITS: u32 = 256;

#[cube(launch)]
fn scatter_entries(
    src_k: &Array<f32>,
    src_v: &Array<f32>,
    slots: &Array<u32>,
    keys: &mut Array<f32>,
    values: &mut Array<f32>,
    #[comptime] head_dim: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos < src_k.len() {
        let i = pos / head_dim;
        let c = pos % head_dim;
        let at = slots[i] as usize * head_dim + c;
        keys[at] = src_k[pos];
        values[at] = src_v[pos];
    }
}

#[cube(launch)]
fn copy_slots(
    src: &Array<u32>,
    dst: &Array<u32>,
    keys: &mut Array<f32>,
    values: &mut Array<f32>,
    #[comptime] head_dim: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos < src.len() * head_dim {
        let i = pos / head_dim;
        let c = pos % head_dim;
        let from = src[i] as usize * head_dim + c;
        let to = dst[i] as usize * head_dim + c;
        keys[to] = keys[from];
        values[to] = values[from];
    }
}

#[cube(launch)]
fn copy_prefix(src: &Array<f32>, dst: &mut Array<f32>) {
    let pos = ABSOLUTE_POS;
    if pos < src.len() {
        dst[pos] = src[pos];
    }
}

#[cube(launch)]
fn decode_partial(
    q: &Array<f32>,
    keys: &Array<f32>,
    values: &Array<f32>,
    tables: &Array<u32>,
    table_start: &Array<u32>,
    lens: &Array<u32>,
    partial: &mut Array<f32>,
    scale: f32,
    span: u32,
    block_size: u32,
    #[comptime] group: usize,
    #[comptime] head_dim: usize,
) {
    let row = CUBE_POS_X as usize;
    let split = CUBE_POS_Y as usize;
    let splits = CUBE_COUNT_Y as usize;
    let t = UNIT_POS_X as usize;
    let mut q_sh = SharedMemory::<f32>::new(group * head_dim);
    let mut w_sh = SharedMemory::<f32>::new(group * head_dim);
    let mut m = Array::<f32>::new(group);
    let mut m_new = Array::<f32>::new(group);
    let mut l = Array::<f32>::new(group);
    let mut acc = Array::<f32>::new(group);
    for g in 0..group {
        q_sh[g * head_dim + t] = q[(row * group + g) * head_dim + t] * scale;
        m[g] = f32::new(-1.0e30);
        l[g] = f32::new(0.0);
        acc[g] = f32::new(0.0);
    }
    sync_cube();

    let len = lens[row] as usize;
    let first = table_start[row] as usize;
    let bs = block_size as usize;
    let mut base = split * span as usize;
    let mut end = base + span as usize;
    if len < end {
        end = len;
    }
    while base < end {
        let mut n = end - base;
        if head_dim < n {
            n = head_dim;
        }
        if t < n {
            let j = base + t;
            let slot = tables[first + j / bs] as usize * bs + j % bs;
            for g in 0..group {
                let mut s = f32::new(0.0);
                for c in 0..head_dim {
                    s += q_sh[g * head_dim + c] * keys[slot * head_dim + c];
                }
                w_sh[g * head_dim + t] = s;
            }
        }
        sync_cube();
        for g in 0..group {
            let mut mx = m[g];
            for i in 0..n {
                let s = w_sh[g * head_dim + i];
                if s > mx {
                    mx = s;
                }
            }
            m_new[g] = mx;
        }
        sync_cube();
        if t < n {
            for g in 0..group {
                let at = g * head_dim + t;
                w_sh[at] = (w_sh[at] - m_new[g]).exp();
            }
        }
        sync_cube();
        for g in 0..group {
            let corr = (m[g] - m_new[g]).exp();
            let mut ls = f32::new(0.0);
            let mut a = f32::new(0.0);
            for i in 0..n {
                let j = base + i;
                let slot = tables[first + j / bs] as usize * bs + j % bs;
                let w = w_sh[g * head_dim + i];
                ls += w;
                a += w * values[slot * head_dim + t];
            }
            l[g] = l[g] * corr + ls;
            acc[g] = acc[g] * corr + a;
            m[g] = m_new[g];
        }
        sync_cube();
        base += head_dim;
    }
    for g in 0..group {
        let at = ((row * splits + split) * group + g) * (head_dim + 2);
        partial[at + 2 + t] = acc[g];
        if t == 0 {
            partial[at] = m[g];
            partial[at + 1] = l[g];
        }
    }
}

#[cube(launch)]
fn decode_merge(
    partial: &Array<f32>,
    out: &mut Array<f32>,
    splits: u32,
    #[comptime] group: usize,
    #[comptime] head_dim: usize,
) {
    let rg = CUBE_POS_X as usize;
    let row = rg / group;
    let g = rg % group;
    let t = UNIT_POS_X as usize;
    let n = splits as usize;
    let mut mx = f32::new(-1.0e30);
    for s in 0..n {
        let m = partial[((row * n + s) * group + g) * (head_dim + 2)];
        if m > mx {
            mx = m;
        }
    }
    let mut l = f32::new(0.0);
    let mut a = f32::new(0.0);
    for s in 0..n {
        let at = ((row * n + s) * group + g) * (head_dim + 2);
        let w = (partial[at] - mx).exp();
        l += w * partial[at + 1];
        a += w * partial[at + 2 + t];
    }
    let mut r = f32::new(0.0);
    if l > f32::new(0.0) {
        r = a / l;
    }
    out[rg * head_dim + t] = r;
}

/// One layer's key and value pools on the device, `len` floats each.
#[derive(Debug, Clone)]
pub(crate) struct DevicePools {
    pub(crate) keys: Handle,
    pub(crate) values: Handle,
    pub(crate) len: usize,
}

/// Arguments for an array of `len` elements.
fn arr<R: Runtime>(handle: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: every caller passes the element count the handle was created
    // with (or fewer); the kernels also bound-check their indices.
    unsafe { ArrayArg::from_raw_parts(handle.clone(), len) }
}

fn upload_u32<R: Runtime>(client: &ComputeClient<R>, data: &[u32]) -> Handle {
    // A zero-sized buffer is not a valid binding everywhere: pad to one.
    let padded = [0u32];
    let data = if data.is_empty() { &padded[..] } else { data };
    crate::profile::upload(4 * data.len());
    client.create_from_slice(u32::as_bytes(data))
}

fn elemwise<R: Runtime>(client: &ComputeClient<R>, n: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new_1d(ELEMWISE_UNITS);
    (cubecl::calculate_cube_count_elemwise(client, n, dim), dim)
}

/// A copy of `pools` grown to `len` floats per pool (new space undefined).
pub(crate) fn grow<R: Runtime>(
    client: &ComputeClient<R>,
    pools: Option<DevicePools>,
    len: usize,
) -> DevicePools {
    let keys = client.empty(len * 4);
    let values = client.empty(len * 4);
    if let Some(old) = pools.filter(|p| p.len > 0) {
        let (count, dim) = elemwise(client, old.len);
        copy_prefix::launch::<R>(
            client,
            count.clone(),
            dim,
            arr(&old.keys, old.len),
            arr(&keys, len),
        );
        copy_prefix::launch::<R>(
            client,
            count,
            dim,
            arr(&old.values, old.len),
            arr(&values, len),
        );
    }
    DevicePools { keys, values, len }
}

/// Write entries `i` of `src_k`/`src_v` (`[n, head_dim]`) into `slots[i]`.
pub(crate) fn scatter<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    src_k: &Handle,
    src_v: &Handle,
    slots: &[u32],
    head_dim: usize,
) {
    let n = slots.len() * head_dim;
    if n == 0 {
        return;
    }
    let slots = upload_u32(client, slots);
    let (count, dim) = elemwise(client, n);
    scatter_entries::launch::<R>(
        client,
        count,
        dim,
        arr(src_k, n),
        arr(src_v, n),
        arr(&slots, n / head_dim),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        head_dim,
    );
}

/// Copy slot `src[i]` to `dst[i]` for every `i`, all at once: no `dst` may
/// be another pair's `src`.
pub(crate) fn copy<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    src: &[u32],
    dst: &[u32],
    head_dim: usize,
) {
    if src.is_empty() {
        return;
    }
    let (s, d) = (upload_u32(client, src), upload_u32(client, dst));
    let (count, dim) = elemwise(client, src.len() * head_dim);
    copy_slots::launch::<R>(
        client,
        count,
        dim,
        arr(&s, src.len()),
        arr(&d, dst.len()),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        head_dim,
    );
}

/// Entries per span so that rows × spans gives the device about this many
/// cubes (at least one `head_dim` tile per span).
const TARGET_CUBES: usize = 512;

/// The span (entries per cube) [`attend`] uses by default for these rows.
pub fn default_span(rows: usize, max_len: usize, head_dim: usize) -> usize {
    let splits = (TARGET_CUBES / rows.max(1)).max(1);
    max_len.div_ceil(splits).div_ceil(head_dim).max(1) * head_dim
}

/// Decode attention over device pools; returns the output handle.
///
/// # Shapes
/// `q` and the result: `[rows, group, head_dim]`.
#[expect(clippy::too_many_arguments, reason = "kernel launch parameters")]
pub(crate) fn attend<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    block_size: usize,
    head_dim: usize,
    rows: &[(&[u32], usize)],
    q: &Handle,
    group: usize,
    scale: f32,
    span: Option<usize>,
) -> Handle {
    let n_rows = rows.len();
    let out_len = n_rows * group * head_dim;
    let out = client.empty(out_len.max(1) * 4);
    if n_rows == 0 {
        return out;
    }
    let max_len = rows.iter().map(|r| r.1).max().unwrap_or(0);
    let span = span.unwrap_or_else(|| default_span(n_rows, max_len, head_dim));
    let splits = max_len.div_ceil(span).max(1);
    let mut tables = Vec::new();
    let mut starts = Vec::with_capacity(n_rows);
    let mut lens = Vec::with_capacity(n_rows);
    for (blocks, len) in rows {
        starts.push(tables.len() as u32);
        lens.push(*len as u32);
        tables.extend_from_slice(&blocks[..len.div_ceil(block_size)]);
    }
    let (tables_h, starts_h, lens_h) = (
        upload_u32(client, &tables),
        upload_u32(client, &starts),
        upload_u32(client, &lens),
    );
    let part_len = n_rows * splits * group * (head_dim + 2);
    let partial = client.empty(part_len * 4);
    decode_partial::launch::<R>(
        client,
        CubeCount::Static(n_rows as u32, splits as u32, 1),
        CubeDim::new_1d(head_dim as u32),
        arr(q, out_len),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        arr(&tables_h, tables.len().max(1)),
        arr(&starts_h, n_rows),
        arr(&lens_h, n_rows),
        arr(&partial, part_len),
        scale,
        span as u32,
        block_size as u32,
        group,
        head_dim,
    );
    decode_merge::launch::<R>(
        client,
        CubeCount::Static((n_rows * group) as u32, 1, 1),
        CubeDim::new_1d(head_dim as u32),
        arr(&partial, part_len),
        arr(&out, out_len),
        splits as u32,
        group,
        head_dim,
    );
    out
}

/// Host-to-host decode attention on the device: upload a paged layout and
/// queries, run [`attend`], read the result back. For tests and benchmarks
/// against [`super::cpu_kernel::decode_attention`].
///
/// # Shapes
/// `q` and the result: `[rows, group, head_dim]`.
pub fn decode_attention_roundtrip<R: Runtime>(
    client: &ComputeClient<R>,
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    span: Option<usize>,
) -> Vec<f32> {
    let pools = DevicePools {
        keys: client.create_from_slice(f32::as_bytes(kv.keys)),
        values: client.create_from_slice(f32::as_bytes(kv.values)),
        len: kv.keys.len(),
    };
    let q_h = client.create_from_slice(f32::as_bytes(q));
    let rows: Vec<(&[u32], usize)> = rows.iter().map(|r| (r.blocks, r.len)).collect();
    let out = attend(
        client,
        &pools,
        kv.block_size,
        kv.head_dim,
        &rows,
        &q_h,
        group,
        scale,
        span,
    );
    let bytes = client
        .read_one(out)
        .expect("reading the attention output back");
    f32::from_bytes(&bytes)[..q.len()].to_vec()
}
