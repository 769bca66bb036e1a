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
//! The pools hold K and V in the store's [`KvDtype`] (f32, f16 or bf16):
//! the kernels are generic over the stored float (`#[define]`d from the
//! pools' dtype at launch), round each entry once when they write it, and
//! convert every key and value to f32 as attention reads it — scores, the
//! softmax and the accumulation are f32 whatever the storage.
//!
//! Reductions use shared memory only, never plane (warp) operations: Mesa's
//! lavapipe, where these kernels are tested, reports no plane features and a
//! subgroup of 8 on which a 32-lane `plane_sum` silently returns partial sums
//! (`docs/dependencies.md` §4), so a plane path would be the one path the tests cannot
//! check. Running maxima start at a finite `-1e30`: WGSL has no `-inf`.

use cubecl::ir::FloatKind;
use cubecl::prelude::*;
use cubecl::server::Handle;

use super::KvDtype;
use super::cpu_kernel::{PagedKv, RowRef};

/// Units per cube of the elementwise kernels.
const ELEMWISE_UNITS: u32 = 256;

#[cube(launch)]
fn scatter_entries<F: Float>(
    src_k: &Array<f32>,
    src_v: &Array<f32>,
    slots: &Array<u32>,
    keys: &mut Array<F>,
    values: &mut Array<F>,
    slots_at: u32,
    #[comptime] head_dim: usize,
    #[define(F)] _kv: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos < src_k.len() {
        let i = pos / head_dim;
        let c = pos % head_dim;
        let at = slots[slots_at as usize + i] as usize * head_dim + c;
        keys[at] = F::cast_from(src_k[pos]);
        values[at] = F::cast_from(src_v[pos]);
    }
}

#[cube(launch)]
// The cube macro's expansion of a `#[define]`d kernel may or may not
// trip the lint (an allow, not an expect).
#[allow(clippy::too_many_arguments, reason = "kernel parameters")]
fn copy_slots<F: Float>(
    meta: &Array<u32>,
    keys: &mut Array<F>,
    values: &mut Array<F>,
    n: u32,
    src_at: u32,
    dst_at: u32,
    #[comptime] head_dim: usize,
    #[define(F)] _kv: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos < n as usize * head_dim {
        let i = pos / head_dim;
        let c = pos % head_dim;
        let from = meta[src_at as usize + i] as usize * head_dim + c;
        let to = meta[dst_at as usize + i] as usize * head_dim + c;
        keys[to] = keys[from];
        values[to] = values[from];
    }
}

#[cube(launch)]
fn copy_prefix<F: Float>(src: &Array<F>, dst: &mut Array<F>, #[define(F)] _kv: StorageType) {
    let pos = ABSOLUTE_POS;
    if pos < src.len() {
        dst[pos] = src[pos];
    }
}

#[cube(launch)]
fn decode_partial<F: Float>(
    q: &Array<f32>,
    keys: &Array<F>,
    values: &Array<F>,
    meta: &Array<u32>,
    partial: &mut Array<f32>,
    scale: f32,
    span: u32,
    block_size: u32,
    starts_at: u32,
    lens_at: u32,
    tables_at: u32,
    #[comptime] group: usize,
    #[comptime] head_dim: usize,
    #[define(F)] _kv: StorageType,
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

    let len = meta[lens_at as usize + row] as usize;
    let first = tables_at as usize + meta[starts_at as usize + row] as usize;
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
            let slot = meta[first + j / bs] as usize * bs + j % bs;
            for g in 0..group {
                let mut s = f32::new(0.0);
                for c in 0..head_dim {
                    s += q_sh[g * head_dim + c] * f32::cast_from(keys[slot * head_dim + c]);
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
                let slot = meta[first + j / bs] as usize * bs + j % bs;
                let w = w_sh[g * head_dim + i];
                ls += w;
                a += w * f32::cast_from(values[slot * head_dim + t]);
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
fn decode_merge<O: Float>(
    partial: &Array<f32>,
    out: &mut Array<O>,
    splits: u32,
    #[comptime] group: usize,
    #[comptime] head_dim: usize,
    #[define(O)] _written: StorageType,
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
    // Rounded once, to the output projection's input dtype.
    out[rg * head_dim + t] = O::cast_from(r);
}

/// One layer's key and value pools on the device, `len` elements of
/// `dtype` each.
#[derive(Debug, Clone)]
pub(crate) struct DevicePools {
    pub(crate) keys: Handle,
    pub(crate) values: Handle,
    pub(crate) len: usize,
    pub(crate) dtype: KvDtype,
}

impl DevicePools {
    /// The stored element as the kernels' `#[define]` takes it.
    fn storage(&self) -> StorageType {
        storage(self.dtype)
    }
}

/// cubecl's storage type for a KV element.
fn storage(dtype: KvDtype) -> StorageType {
    match dtype {
        KvDtype::F32 => FloatKind::F32,
        KvDtype::F16 => FloatKind::F16,
        KvDtype::Bf16 => FloatKind::BF16,
    }
    .into()
}

/// Whether `client`'s device can store and convert `dtype` (f16 on wgpu
/// needs the adapter's `shader-f16`; WGSL has no bf16).
pub fn supports<R: Runtime>(client: &ComputeClient<R>, dtype: KvDtype) -> bool {
    client.properties().supports_type(storage(dtype))
}

/// Arguments for an array of `len` elements.
fn arr<R: Runtime>(handle: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: every caller passes the element count the handle was created
    // with (or fewer); the kernels also bound-check their indices.
    unsafe { ArrayArg::from_raw_parts(handle.clone(), len) }
}

pub(crate) fn upload_u32<R: Runtime>(client: &ComputeClient<R>, data: &[u32]) -> Handle {
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

/// A copy of `pools` grown to `len` elements of `dtype` per pool (new space
/// undefined).
pub(crate) fn grow<R: Runtime>(
    client: &ComputeClient<R>,
    pools: Option<DevicePools>,
    len: usize,
    dtype: KvDtype,
) -> DevicePools {
    let bytes = len * dtype.bytes() as usize;
    let keys = client.empty(bytes);
    let values = client.empty(bytes);
    if let Some(old) = pools.filter(|p| p.len > 0) {
        assert_eq!(old.dtype, dtype, "kv pools keep their dtype");
        let (count, dim) = elemwise(client, old.len);
        copy_prefix::launch::<R>(
            client,
            count.clone(),
            dim,
            arr(&old.keys, old.len),
            arr(&keys, len),
            storage(dtype),
        );
        copy_prefix::launch::<R>(
            client,
            count,
            dim,
            arr(&old.values, old.len),
            arr(&values, len),
            storage(dtype),
        );
    }
    DevicePools {
        keys,
        values,
        len,
        dtype,
    }
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
    if slots.is_empty() {
        return;
    }
    let slots_h = upload_u32(client, slots);
    let at = Span {
        at: 0,
        n: slots.len(),
    };
    scatter_launch(
        client,
        pools,
        src_k,
        src_v,
        (&slots_h, slots.len()),
        at,
        head_dim,
    );
}

/// A run of `n` numbers at `at` in a table buffer on the device.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub(crate) at: usize,
    pub(crate) n: usize,
}

/// [`scatter`] with the slot numbers already on the device (`slots` of a
/// table buffer of `len` numbers).
fn scatter_launch<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    src_k: &Handle,
    src_v: &Handle,
    (table, table_len): (&Handle, usize),
    slots: Span,
    head_dim: usize,
) {
    let n = slots.n;
    let len = n * head_dim;
    let (count, dim) = elemwise(client, len);
    scatter_entries::launch::<R>(
        client,
        count,
        dim,
        arr(src_k, len),
        arr(src_v, len),
        arr(table, table_len),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        slots.at as u32,
        head_dim,
        pools.storage(),
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
    assert_eq!(src.len(), dst.len(), "one destination per source");
    // Sources and destinations in one upload.
    let table: Vec<u32> = src.iter().chain(dst).copied().collect();
    let h = upload_u32(client, &table);
    let n = src.len();
    copy_in(
        client,
        pools,
        (&h, table.len()),
        CopyAt {
            src_at: 0,
            dst_at: n,
            n,
        },
        head_dim,
    );
}

/// Where a batch of slot copies lies in a table buffer: `n` sources at
/// `src_at`, their destinations at `dst_at`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyAt {
    pub(crate) src_at: usize,
    pub(crate) dst_at: usize,
    pub(crate) n: usize,
}

/// [`copy`] with the slot numbers already in a table buffer of `len`
/// numbers on the device.
pub(crate) fn copy_in<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    (table, table_len): (&Handle, usize),
    at: CopyAt,
    head_dim: usize,
) {
    if at.n == 0 {
        return;
    }
    let (count, dim) = elemwise(client, at.n * head_dim);
    copy_slots::launch::<R>(
        client,
        count,
        dim,
        arr(table, table_len),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        at.n as u32,
        at.src_at as u32,
        at.dst_at as u32,
        head_dim,
        pools.storage(),
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

/// New entries to write before attending: entry `i` of `k`, `v` (`[n,
/// head_dim]`) goes to slot `slots[i]`.
pub(crate) struct NewEntries<'a> {
    pub(crate) k: &'a Handle,
    pub(crate) v: &'a Handle,
    pub(crate) slots: &'a [u32],
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
    let params = AttendParams {
        block_size,
        head_dim,
        group,
        scale,
        span,
        out: KvDtype::F32,
    };
    scatter_attend(client, pools, None, rows, q, params)
}

/// How [`scatter_attend`] attends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttendParams {
    pub(crate) block_size: usize,
    pub(crate) head_dim: usize,
    pub(crate) group: usize,
    pub(crate) scale: f32,
    /// Entries per cube; `None`: [`default_span`].
    pub(crate) span: Option<usize>,
    /// The output's element: f32, or the output projection's
    /// half-precision input, rounded once when the merge writes it (where
    /// a cast would have, in a launch of its own).
    pub(crate) out: KvDtype,
}

/// Where one layer's decode tables lie in a table buffer on the device:
/// the new entries' slots, then the rows' starts (into the tables), lengths
/// and block tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DecodeTables {
    pub(crate) slots: Span,
    pub(crate) starts_at: usize,
    pub(crate) lens_at: usize,
    pub(crate) tables_at: usize,
    pub(crate) rows: usize,
    /// The longest row's length.
    pub(crate) max_len: usize,
}

impl DecodeTables {
    /// Append a layer's slots and row tables (`(block table, length)` per
    /// row) to `table`; returns where they are.
    pub(crate) fn push(
        table: &mut Vec<u32>,
        slots: &[u32],
        rows: &[(&[u32], usize)],
        block_size: usize,
    ) -> Self {
        let base = table.len();
        let n_rows = rows.len();
        table.extend_from_slice(slots);
        let starts_at = table.len();
        let mut at = 0u32;
        for (_, len) in rows {
            table.push(at);
            at += len.div_ceil(block_size) as u32;
        }
        let lens_at = table.len();
        table.extend(rows.iter().map(|r| r.1 as u32));
        let tables_at = table.len();
        for (blocks, len) in rows {
            table.extend_from_slice(&blocks[..len.div_ceil(block_size)]);
        }
        Self {
            slots: Span {
                at: base,
                n: slots.len(),
            },
            starts_at,
            lens_at,
            tables_at,
            rows: n_rows,
            max_len: rows.iter().map(|r| r.1).max().unwrap_or(0),
        }
    }
}

/// [`scatter`] of `new` (when given), then [`attend`]: the slots and the
/// rows' block tables, starts and lengths go to the device in one upload.
///
/// # Shapes
/// `q` and the result: `[rows, group, head_dim]`.
pub(crate) fn scatter_attend<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    new: Option<NewEntries<'_>>,
    rows: &[(&[u32], usize)],
    q: &Handle,
    params: AttendParams,
) -> Handle {
    let slots = new.as_ref().map_or(&[][..], |n| n.slots);
    if rows.is_empty() && slots.is_empty() {
        return client.empty(4);
    }
    let mut table = Vec::new();
    let at = DecodeTables::push(&mut table, slots, rows, params.block_size);
    let table_h = upload_u32(client, &table);
    let kv = new.map(|n| (n.k, n.v));
    scatter_attend_in(client, pools, (&table_h, table.len()), at, kv, q, params)
}

/// [`scatter_attend`] with the tables already on the device (`at` in a
/// table buffer of `len` numbers); `new`: the new entries' keys and values
/// (`[at.slots.n, head_dim]`).
///
/// # Shapes
/// `q` and the result: `[at.rows, group, head_dim]`.
pub(crate) fn scatter_attend_in<R: Runtime>(
    client: &ComputeClient<R>,
    pools: &DevicePools,
    (table, table_len): (&Handle, usize),
    at: DecodeTables,
    new: Option<(&Handle, &Handle)>,
    q: &Handle,
    params: AttendParams,
) -> Handle {
    let AttendParams {
        block_size,
        head_dim,
        group,
        scale,
        span,
        out: out_dtype,
    } = params;
    let n_rows = at.rows;
    let out_len = n_rows * group * head_dim;
    let out = client.empty(out_len.max(1) * out_dtype.bytes() as usize);
    if let Some((k, v)) = new.filter(|_| at.slots.n > 0) {
        scatter_launch(client, pools, k, v, (table, table_len), at.slots, head_dim);
    }
    if n_rows == 0 {
        return out;
    }
    let max_len = at.max_len;
    let span = span.unwrap_or_else(|| default_span(n_rows, max_len, head_dim));
    let splits = max_len.div_ceil(span).max(1);
    let part_len = n_rows * splits * group * (head_dim + 2);
    let partial = client.empty(part_len * 4);
    decode_partial::launch::<R>(
        client,
        CubeCount::Static(n_rows as u32, splits as u32, 1),
        CubeDim::new_1d(head_dim as u32),
        arr(q, out_len),
        arr(&pools.keys, pools.len),
        arr(&pools.values, pools.len),
        arr(table, table_len.max(1)),
        arr(&partial, part_len),
        scale,
        span as u32,
        block_size as u32,
        at.starts_at as u32,
        at.lens_at as u32,
        at.tables_at as u32,
        group,
        head_dim,
        pools.storage(),
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
        storage(out_dtype),
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
    decode_attention_roundtrip_as(client, kv, rows, q, group, scale, span, KvDtype::F32)
}

/// [`decode_attention_roundtrip`] with the pools stored as `dtype` (each
/// key and value rounded to nearest once on upload).
#[expect(clippy::too_many_arguments, reason = "the roundtrip's inputs")]
pub fn decode_attention_roundtrip_as<R: Runtime>(
    client: &ComputeClient<R>,
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    span: Option<usize>,
    dtype: KvDtype,
) -> Vec<f32> {
    let upload = |x: &[f32]| {
        let bytes: Vec<u8> = match dtype {
            KvDtype::F32 => f32::as_bytes(x).to_vec(),
            KvDtype::F16 => x
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            KvDtype::Bf16 => x
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        };
        client.create_from_slice(&bytes)
    };
    let pools = DevicePools {
        keys: upload(kv.keys),
        values: upload(kv.values),
        len: kv.keys.len(),
        dtype,
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
