//! Fused elementwise steps of a layer on the cubecl backends (wgpu, CUDA):
//! one kernel launch where the burn composition launches five to ten.
//!
//! - [`rms_norm`]: `x / sqrt(mean(x²) + eps) * w` over the last dimension
//!   (the composition: square, mean, add, sqrt, recip, two products);
//! - [`add_rms_norm`]: the residual add and the next norm, both outputs;
//! - [`swiglu`]: `silu(gate) * up` over a fused `[n, 2 * inter]` output;
//! - [`rope`]: rotate-half RoPE of `[n, heads, head_dim]`;
//! - [`qkv_rope`]: the fused q/k/v projection's output split into
//!   contiguous q, k and v, with the q/k/v bias, the per-head q/k RMSNorm
//!   (Qwen3) and RoPE of q and k, in one launch;
//! - [`dms_adapter`]: a DMS adapter's decision logits, `(RMSNorm(h) ·
//!   Wᵀ + b) × scale − offset`, in one launch.
//!
//! Each returns `None` unless `B` is a cubecl backend (its float primitive a
//! `CubeTensor`) holding f32, and the caller then runs the burn ops. With
//! half-precision projections (`--decode-weights bf16` on CUDA, `f16` on
//! wgpu) the kernels next to a projection read its output and write its
//! input in the weight's dtype, rounding where the composition's casts
//! would (`*_as`, [`swiglu`], [`qkv_rope`]), so no cast runs in a launch of
//! its own; arithmetic stays f32. The results equal the compositions' up
//! to the order of f32 additions (the norms sum squares in a shared-memory
//! tree): `tests/model/cube_ops.rs` holds them within 1e-5 relative on wgpu
//! (one f16 rounding where the result is f16). Reductions use shared
//! memory only, never plane operations (see [`crate::kv::cube_kernel`]).

// Built without a cubecl runtime (neither `wgpu` nor `cuda`), every entry
// point answers `None` and the kernels behind them are never called.
#![cfg_attr(
    not(any(feature = "wgpu", feature = "cuda")),
    allow(dead_code, unused_variables, unused_imports)
)]

use std::any::{Any, TypeId};

use burn::prelude::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::server::Handle;

/// Units per cube of the row kernels (a power of two).
const ROW_UNITS: usize = 256;

/// Sum of every unit's `v` over a cube of `units` units (a power of two,
/// equal to the launch's cube size), returned to every unit.
#[cube]
fn cube_sum(v: f32, #[comptime] units: usize) -> f32 {
    let mut sh = SharedMemory::<f32>::new(units);
    let t = UNIT_POS_X as usize;
    sh[t] = v;
    sync_cube();
    let mut stride = CUBE_DIM_X as usize / 2;
    while stride > 0 {
        if t < stride {
            sh[t] += sh[t + stride];
        }
        sync_cube();
        stride /= 2;
    }
    sh[0]
}

/// One cube per row: `sum = x + a` (when `add`, else `sum` is unused and
/// the row is `x`), then `out = row / sqrt(mean(row²) + eps) * w`.
#[cube(launch)]
// The cube macro's expansion of a `#[define]`d kernel may or may not
// trip the lint (an allow, not an expect).
#[allow(clippy::too_many_arguments, reason = "kernel parameters")]
fn rms_norm_kernel<A: Float, O: Float>(
    x: &Array<f32>,
    a: &Array<A>,
    w: &Array<f32>,
    sum: &mut Array<f32>,
    out: &mut Array<O>,
    eps: f32,
    dim: u32,
    #[comptime] add: bool,
    #[comptime] units: usize,
    #[define(A, O)] _dtypes: [StorageType; 2],
) {
    let d = dim as usize;
    let base = CUBE_POS_X as usize * d;
    let t = UNIT_POS_X as usize;
    let mut ss = f32::new(0.0);
    let mut i = t;
    while i < d {
        let mut v = x[base + i];
        if add {
            v += f32::cast_from(a[base + i]);
            sum[base + i] = v;
        }
        ss += v * v;
        i += units;
    }
    let total = cube_sum(ss, units);
    let inv = f32::new(1.0) / (total / f32::cast_from(dim) + eps).sqrt();
    let mut i = t;
    while i < d {
        let mut v = x[base + i];
        if add {
            v = sum[base + i];
        }
        out[base + i] = O::cast_from(v * inv * w[i]);
        i += units;
    }
}

/// `silu(gate) * up` in f32 over `F` input and output (f32, or the
/// projections' half type).
#[cube(launch)]
fn swiglu_kernel<F: Float>(
    gu: &Array<F>,
    out: &mut Array<F>,
    inter: u32,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let n = inter as usize;
        let r = pos / n;
        let c = pos % n;
        let g = f32::cast_from(gu[r * 2 * n + c]);
        let u = f32::cast_from(gu[r * 2 * n + n + c]);
        out[pos] = F::cast_from(g * (f32::new(1.0) / (f32::new(1.0) + (-g).exp())) * u);
    }
}

/// One cube per (token, head) of `[n, heads, head_dim]`, `units` ≥
/// `head_dim` units (a power of two).
#[cube(launch)]
fn rope_kernel(
    x: &Array<f32>,
    cos: &Array<f32>,
    sin: &Array<f32>,
    out: &mut Array<f32>,
    #[comptime] head_dim: usize,
    #[comptime] units: usize,
) {
    let tok = CUBE_POS_X as usize;
    let at = (tok * CUBE_COUNT_Y as usize + CUBE_POS_Y as usize) * head_dim;
    let t = UNIT_POS_X as usize;
    let mut sh = SharedMemory::<f32>::new(units);
    let mut v = f32::new(0.0);
    if t < head_dim {
        v = x[at + t];
    }
    sh[t] = v;
    sync_cube();
    if t < head_dim {
        let half = head_dim / 2;
        let mut partner = t + half;
        if t >= half {
            partner = t - half;
        }
        let r = tok * head_dim + t;
        out[at + t] = v * cos[r] + sh[partner] * sin[r];
    }
}

/// One cube per (token, head of q, k and v); see [`qkv_rope`].
#[cube(launch)]
// The cube macro's expansion of a `#[define]`d kernel may or may not
// trip the lint (an allow, not an expect).
#[allow(clippy::too_many_arguments, reason = "kernel parameters")]
fn qkv_rope_kernel<I: Float>(
    qkv: &Array<I>,
    bias: &Array<f32>,
    q_norm: &Array<f32>,
    k_norm: &Array<f32>,
    cos: &Array<f32>,
    sin: &Array<f32>,
    q_out: &mut Array<f32>,
    k_out: &mut Array<f32>,
    v_out: &mut Array<f32>,
    logits: &mut Array<f32>,
    eps: f32,
    n_heads: u32,
    kv_heads: u32,
    neuron_scale: f32,
    neuron_offset: f32,
    #[comptime] head_dim: usize,
    #[comptime] units: usize,
    #[comptime] has_bias: bool,
    #[comptime] has_norm: bool,
    #[comptime] neuron_group: usize,
    #[define(I)] _dtype: StorageType,
) {
    let tok = CUBE_POS_X as usize;
    let h = CUBE_POS_Y as usize;
    let t = UNIT_POS_X as usize;
    let nh = n_heads as usize;
    let kh = kv_heads as usize;
    let width = (nh + 2 * kh) * head_dim;
    let mut v = f32::new(0.0);
    if t < head_dim {
        v = f32::cast_from(qkv[tok * width + h * head_dim + t]);
        if has_bias {
            v += bias[h * head_dim + t];
        }
    }
    let rotated = h < nh + kh;
    if has_norm {
        let total = cube_sum(v * v, units);
        if rotated && t < head_dim {
            let inv = f32::new(1.0) / (total / f32::cast_from(head_dim as u32) + eps).sqrt();
            if h < nh {
                v = v * inv * q_norm[t];
            } else {
                v = v * inv * k_norm[t];
            }
        }
    }
    // The query neuron: the last channel of each group's first q head,
    // normed and not yet rotated, is the decision logit's input; the
    // channel is zeroed before RoPE and again after.
    let mut borrowed = false;
    if neuron_group > 0 {
        // `%` rather than `is_multiple_of`: the cube macro expands operators,
        // not that method.
        #[allow(clippy::manual_is_multiple_of)]
        {
            borrowed = h < nh && h % neuron_group == 0 && t == head_dim - 1;
        }
        if borrowed {
            logits[tok * kh + h / neuron_group] = v * neuron_scale - neuron_offset;
            v = f32::new(0.0);
        }
    }
    let mut sh = SharedMemory::<f32>::new(units);
    sh[t] = v;
    sync_cube();
    if t < head_dim {
        if rotated {
            let half = head_dim / 2;
            let mut partner = t + half;
            if t >= half {
                partner = t - half;
            }
            let r = tok * head_dim + t;
            v = v * cos[r] + sh[partner] * sin[r];
        }
        if borrowed {
            v = f32::new(0.0);
        }
        if h < nh {
            q_out[(tok * nh + h) * head_dim + t] = v;
        } else if h < nh + kh {
            k_out[(tok * kh + h - nh) * head_dim + t] = v;
        } else {
            v_out[(tok * kh + h - nh - kh) * head_dim + t] = v;
        }
    }
}

/// One cube per token: the RMSNorm of the residual row (the adapter's own
/// norm weight), then for each KV head the dot product with its row of the
/// projection (`[kv_heads, dim]`), plus the bias, times `scale` minus
/// `offset`.
#[cube(launch)]
#[expect(clippy::too_many_arguments, reason = "kernel parameters")]
fn dms_adapter_kernel(
    x: &Array<f32>,
    norm: &Array<f32>,
    proj: &Array<f32>,
    bias: &Array<f32>,
    logits: &mut Array<f32>,
    eps: f32,
    dim: u32,
    kv_heads: u32,
    scale: f32,
    offset: f32,
    #[comptime] has_bias: bool,
    #[comptime] units: usize,
) {
    let d = dim as usize;
    let tok = CUBE_POS_X as usize;
    let base = tok * d;
    let t = UNIT_POS_X as usize;
    let mut ss = f32::new(0.0);
    let mut i = t;
    while i < d {
        let v = x[base + i];
        ss += v * v;
        i += units;
    }
    let total = cube_sum(ss, units);
    let inv = f32::new(1.0) / (total / f32::cast_from(dim) + eps).sqrt();
    let kh = kv_heads as usize;
    let mut sh = SharedMemory::<f32>::new(units);
    for h in 0..kh {
        let mut acc = f32::new(0.0);
        let mut i = t;
        while i < d {
            acc += x[base + i] * inv * norm[i] * proj[h * d + i];
            i += units;
        }
        // The sum over the cube, as `cube_sum`, in one shared buffer for
        // every head.
        sh[t] = acc;
        sync_cube();
        let mut stride = CUBE_DIM_X as usize / 2;
        while stride > 0 {
            if t < stride {
                sh[t] += sh[t + stride];
            }
            sync_cube();
            stride /= 2;
        }
        if t == 0 {
            let mut l = sh[0];
            if has_bias {
                l += bias[h];
            }
            logits[tok * kh + h] = l * scale - offset;
        }
        // Unit 0 reads the sum before the next head overwrites it.
        sync_cube();
    }
}

/// Whether `B`'s float tensors are runtime `R`'s.
fn on<B: Backend, R: CubeRuntime>() -> bool {
    TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<CubeTensor<R>>()
}

/// The contiguous f32 `CubeTensor` behind `t`, when `B` runs on `R`.
fn cube<B: Backend, R: CubeRuntime, const D: usize>(t: &Tensor<B, D>) -> Option<CubeTensor<R>> {
    if !on::<B, R>() {
        return None;
    }
    let p: Box<dyn Any> = Box::new(t.clone().into_primitive().tensor());
    let c = *p.downcast::<CubeTensor<R>>().ok()?;
    (c.dtype == DType::F32).then(|| into_contiguous(c))
}

/// The contiguous `CubeTensor` behind `t` when it holds f32, f16 or bf16
/// (a projection's output in its weight's half type), and `B` runs on `R`.
fn cube_float<B: Backend, R: CubeRuntime, const D: usize>(
    t: &Tensor<B, D>,
) -> Option<CubeTensor<R>> {
    if !on::<B, R>() {
        return None;
    }
    let p: Box<dyn Any> = Box::new(t.clone().into_primitive().tensor());
    let c = *p.downcast::<CubeTensor<R>>().ok()?;
    matches!(c.dtype, DType::F32 | DType::F16 | DType::BF16).then(|| into_contiguous(c))
}

/// A fresh contiguous f32 tensor of `shape` on `like`'s device.
fn empty<R: CubeRuntime>(like: &CubeTensor<R>, shape: &[usize]) -> CubeTensor<R> {
    empty_as(like, shape, DType::F32)
}

/// A fresh contiguous tensor of `dtype` and `shape` on `like`'s device.
fn empty_as<R: CubeRuntime>(like: &CubeTensor<R>, shape: &[usize], dtype: DType) -> CubeTensor<R> {
    let n: usize = shape.iter().product();
    let handle = like.client.empty(n.max(1) * dtype.size());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::from(shape.to_vec()),
        handle,
        dtype,
    )
}

/// Whether `dtype` is one the row kernels read and write (f32, f16, bf16).
fn float_io(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
}

/// `c` as a tensor of `B` (`B` runs on `R`: checked by [`cube`]).
fn tensor<B: Backend, R: CubeRuntime, const D: usize>(c: CubeTensor<R>) -> Tensor<B, D> {
    let p: Box<dyn Any> = Box::new(c);
    let p = p
        .downcast::<B::FloatTensorPrimitive>()
        .expect("B's float primitive is CubeTensor<R>");
    Tensor::from_primitive(TensorPrimitive::Float(*p))
}

/// Arguments for an array of `len` elements of a contiguous tensor.
fn arr<R: CubeRuntime>(t: &CubeTensor<R>) -> ArrayArg<R> {
    arr_of(&t.handle, t.shape().num_elements())
}

fn arr_of<R: Runtime>(handle: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: `len` is the element count of the contiguous tensor the handle
    // holds; the kernels index within it.
    unsafe { ArrayArg::from_raw_parts(handle.clone(), len.max(1)) }
}

/// Runs `$f::<B, R, ..>` for the first enabled cubecl runtime `B` runs on.
macro_rules! dispatch {
    ($f:ident::<$B:ty $(, $c:tt)*>($($arg:expr),* $(,)?)) => {{
        #[cfg(feature = "wgpu")]
        if on::<$B, cubecl::wgpu::WgpuRuntime>() {
            return $f::<$B, cubecl::wgpu::WgpuRuntime $(, $c)*>($($arg),*);
        }
        #[cfg(feature = "cuda")]
        if on::<$B, cubecl::cuda::CudaRuntime>() {
            return $f::<$B, cubecl::cuda::CudaRuntime $(, $c)*>($($arg),*);
        }
        None
    }};
}

/// RMSNorm over the last dimension in one launch.
///
/// # Shapes
/// `x`: `[..., dim]`; `w`: `[dim]`; returns `x`'s shape.
pub fn rms_norm<B: Backend, const D: usize>(
    x: &Tensor<B, D>,
    w: &Tensor<B, 1>,
    eps: f64,
) -> Option<Tensor<B, D>> {
    rms_norm_as(x, w, eps, DType::F32)
}

/// [`rms_norm`] written as `out` (f32, f16 or bf16: the dtype of the
/// projection that reads it, rounded once, as a cast would).
pub fn rms_norm_as<B: Backend, const D: usize>(
    x: &Tensor<B, D>,
    w: &Tensor<B, 1>,
    eps: f64,
    out: DType,
) -> Option<Tensor<B, D>> {
    dispatch!(rms_norm_on::<B, D>(x, w, eps, out))
}

fn rms_norm_on<B: Backend, R: CubeRuntime, const D: usize>(
    x: &Tensor<B, D>,
    w: &Tensor<B, 1>,
    eps: f64,
    out: DType,
) -> Option<Tensor<B, D>> {
    if !float_io(out) {
        return None;
    }
    let (xc, wc) = (cube::<B, R, D>(x)?, cube::<B, R, 1>(w)?);
    let (_, out) = launch_rms_norm(&xc, None, &wc, x.dims()[D - 1], eps, out);
    Some(tensor::<B, R, D>(out))
}

/// `x + a` and RMSNorm of it, in one launch.
///
/// # Shapes
/// `x`, `a`: `[n, dim]`; `w`: `[dim]`; returns (`x + a`, its norm).
pub fn add_rms_norm<B: Backend>(
    x: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    w: &Tensor<B, 1>,
    eps: f64,
) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
    add_rms_norm_as(x, a, w, eps, DType::F32)
}

/// [`add_rms_norm`] with `a` in f32, f16 or bf16 (a projection's output in
/// its weight's dtype, widened exactly) and the norm written as `out` (the
/// dtype of the projection that reads it); `x + a` stays f32.
pub fn add_rms_norm_as<B: Backend>(
    x: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    w: &Tensor<B, 1>,
    eps: f64,
    out: DType,
) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
    dispatch!(add_rms_norm_on::<B>(x, a, w, eps, out))
}

fn add_rms_norm_on<B: Backend, R: CubeRuntime>(
    x: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    w: &Tensor<B, 1>,
    eps: f64,
    out: DType,
) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
    if a.dims() != x.dims() || !float_io(out) {
        return None;
    }
    let (xc, ac, wc) = (
        cube::<B, R, 2>(x)?,
        cube_float::<B, R, 2>(a)?,
        cube::<B, R, 1>(w)?,
    );
    let (sum, out) = launch_rms_norm(&xc, Some(&ac), &wc, x.dims()[1], eps, out);
    Some((tensor::<B, R, 2>(sum), tensor::<B, R, 2>(out)))
}

/// [`rms_norm_kernel`] over the rows of `x` (contiguous, last dimension
/// `dim`), adding `a` first when given; returns (`x + a`, the norm). Without
/// `a` the first is one spare float, never written.
fn launch_rms_norm<R: CubeRuntime>(
    x: &CubeTensor<R>,
    a: Option<&CubeTensor<R>>,
    w: &CubeTensor<R>,
    dim: usize,
    eps: f64,
    out_dtype: DType,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let shape = x.shape().to_vec();
    let rows = shape.iter().product::<usize>() / dim.max(1);
    let out = empty_as(x, &shape, out_dtype);
    let sum = empty(x, if a.is_some() { &shape } else { &[1] });
    if rows > 0 {
        rms_norm_kernel::launch::<R>(
            &x.client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(ROW_UNITS as u32),
            arr(x),
            // Without `add` the kernel reads no `a`: `x` again, read-only.
            arr(a.unwrap_or(x)),
            arr(w),
            arr(&sum),
            arr(&out),
            eps as f32,
            dim as u32,
            a.is_some(),
            ROW_UNITS,
            [a.unwrap_or(x).dtype.into(), out_dtype.into()],
        );
    }
    (sum, out)
}

/// `silu(gate) * up` in one launch, computed in f32 and written in `gu`'s
/// dtype (f32, f16 or bf16: the gate/up projection's output, read by the
/// down projection as it is).
///
/// # Shapes
/// `gu`: `[n, 2 * inter]`, gate columns first; returns `[n, inter]`.
pub fn swiglu<B: Backend>(gu: &Tensor<B, 2>, inter: usize) -> Option<Tensor<B, 2>> {
    dispatch!(swiglu_on::<B>(gu, inter))
}

fn swiglu_on<B: Backend, R: CubeRuntime>(gu: &Tensor<B, 2>, inter: usize) -> Option<Tensor<B, 2>> {
    let [n, width] = gu.dims();
    if width != 2 * inter {
        return None;
    }
    let g = cube_float::<B, R, 2>(gu)?;
    let out = empty_as(&g, &[n, inter], g.dtype);
    let len = n * inter;
    if len > 0 {
        let dim = CubeDim::new_1d(ROW_UNITS as u32);
        let count = cubecl::calculate_cube_count_elemwise(&g.client, len, dim);
        swiglu_kernel::launch::<R>(
            &g.client,
            count,
            dim,
            arr(&g),
            arr(&out),
            inter as u32,
            g.dtype.into(),
        );
    }
    Some(tensor::<B, R, 2>(out))
}

/// A DMS adapter's parameters for [`dms_adapter`].
pub struct DmsAdapter<'a, B: Backend> {
    /// `dms_proj_alpha_norm.weight`: `[hidden]`.
    pub norm: &'a Tensor<B, 1>,
    pub eps: f64,
    /// `dms_proj_alpha.weight` as the checkpoint holds it: `[kv_heads,
    /// hidden]`.
    pub proj: &'a Tensor<B, 2>,
    /// `dms_proj_alpha.bias`: `[kv_heads]`.
    pub bias: Option<&'a Tensor<B, 1>>,
    pub scale: f32,
    pub offset: f32,
}

/// The DMS adapter's decision logits in one launch: `(RMSNorm(h) · Wᵀ + b)
/// × scale − offset` (the composition `DmsHead::logits` runs: the norm,
/// the projection, the bias, the scale and the offset).
///
/// # Shapes
/// `h`: `[n, hidden]`, the residual stream before the layer's input norm;
/// returns `[n, kv_heads]`.
pub fn dms_adapter<B: Backend>(
    h: &Tensor<B, 2>,
    adapter: DmsAdapter<'_, B>,
) -> Option<Tensor<B, 2>> {
    dispatch!(dms_adapter_on::<B>(h, adapter))
}

fn dms_adapter_on<B: Backend, R: CubeRuntime>(
    h: &Tensor<B, 2>,
    a: DmsAdapter<'_, B>,
) -> Option<Tensor<B, 2>> {
    let [n, dim] = h.dims();
    let [kv_heads, width] = a.proj.dims();
    if width != dim || a.norm.dims() != [dim] || a.bias.is_some_and(|b| b.dims() != [kv_heads]) {
        return None;
    }
    let x = cube::<B, R, 2>(h)?;
    let (norm, proj) = (cube::<B, R, 1>(a.norm)?, cube::<B, R, 2>(a.proj)?);
    let bias = match a.bias {
        Some(b) => Some(cube::<B, R, 1>(b)?),
        None => None,
    };
    let logits = empty(&x, &[n, kv_heads]);
    if n * kv_heads > 0 {
        dms_adapter_kernel::launch::<R>(
            &x.client,
            CubeCount::Static(n as u32, 1, 1),
            CubeDim::new_1d(ROW_UNITS as u32),
            arr(&x),
            arr(&norm),
            arr(&proj),
            // Without a bias the kernel reads none: the norm, read-only.
            arr(bias.as_ref().unwrap_or(&norm)),
            arr(&logits),
            a.eps as f32,
            dim as u32,
            kv_heads as u32,
            a.scale,
            a.offset,
            bias.is_some(),
            ROW_UNITS,
        );
    }
    Some(tensor::<B, R, 2>(logits))
}

/// Units for a cube over one head: `head_dim` rounded up to a power of two.
fn head_units(head_dim: usize) -> usize {
    head_dim.next_power_of_two().max(2)
}

/// Rotate-half RoPE (`x * cos + swap_halves(x) * sin`) in one launch.
///
/// # Shapes
/// `x`: `[n, heads, head_dim]`; `cos`, `sin`: `[n, head_dim]` (`sin`
/// signed as [`crate::model::layers::rope::RopeTables`] holds it).
pub fn rope<B: Backend>(
    x: &Tensor<B, 3>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    dispatch!(rope_on::<B>(x, cos, sin))
}

fn rope_on<B: Backend, R: CubeRuntime>(
    x: &Tensor<B, 3>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    let [n, heads, d] = x.dims();
    if cos.dims() != [n, d] || sin.dims() != [n, d] || d % 2 != 0 || d > 1024 {
        return None;
    }
    let (xc, c, s) = (
        cube::<B, R, 3>(x)?,
        cube::<B, R, 2>(cos)?,
        cube::<B, R, 2>(sin)?,
    );
    let out = empty(&xc, &[n, heads, d]);
    if n * heads > 0 {
        let units = head_units(d);
        rope_kernel::launch::<R>(
            &xc.client,
            CubeCount::Static(n as u32, heads as u32, 1),
            CubeDim::new_1d(units as u32),
            arr(&xc),
            arr(&c),
            arr(&s),
            arr(&out),
            d,
            units,
        );
    }
    Some(tensor::<B, R, 3>(out))
}

/// What [`qkv_rope`] applies besides the split and RoPE.
pub struct QkvExtras<'a, B: Backend> {
    /// `[(n_heads + 2 * kv_heads) * head_dim]`, added first.
    pub bias: Option<&'a Tensor<B, 1>>,
    /// Per-head RMSNorm weights of q and k (`[head_dim]` each) and eps.
    pub norms: Option<(&'a Tensor<B, 1>, &'a Tensor<B, 1>, f64)>,
}

/// The fused q/k/v projection's output (before its bias) split into
/// contiguous q, k, v: bias added, q and k normed per head when `norms` is
/// given, then rotated by RoPE; v passed through. One launch.
///
/// # Shapes
/// `qkv`: `[n, (n_heads + 2 * kv_heads) * head_dim]`; `cos`, `sin`: `[n,
/// head_dim]`; returns q `[n, n_heads, head_dim]`, k and v `[n, kv_heads,
/// head_dim]`.
pub fn qkv_rope<B: Backend>(
    qkv: &Tensor<B, 2>,
    heads: [usize; 3],
    extras: QkvExtras<'_, B>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<(Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>)> {
    qkv_rope_any(qkv, heads, extras, None, cos, sin).map(|(q, k, v, _)| (q, k, v))
}

fn qkv_rope_any<B: Backend>(
    qkv: &Tensor<B, 2>,
    heads: [usize; 3],
    extras: QkvExtras<'_, B>,
    neuron: Option<QueryNeuron>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<QkvMaybeLogits<B>> {
    dispatch!(qkv_rope_on::<B>(qkv, heads, extras, neuron, cos, sin))
}

/// The query-neuron DMS head's decision input, read by [`qkv_rope_neuron`].
#[derive(Debug, Clone, Copy)]
pub struct QueryNeuron {
    /// Query heads per KV head: the first head of each group lends its
    /// last channel.
    pub group: usize,
    pub scale: f32,
    pub offset: f32,
}

/// [`qkv_rope`] for a query-neuron DMS layer, still one launch: the last
/// channel of each group's first q head, after the q norm and before RoPE,
/// gives the decision logit `value × scale − offset`, and that channel of
/// q is zeroed before RoPE and after it (the composition's
/// `DmsHead::logits` and `after_rope`).
///
/// # Shapes
/// As [`qkv_rope`], plus the logits `[n, kv_heads]`.
pub fn qkv_rope_neuron<B: Backend>(
    qkv: &Tensor<B, 2>,
    heads: [usize; 3],
    extras: QkvExtras<'_, B>,
    neuron: QueryNeuron,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<QkvLogits<B>> {
    qkv_rope_any(qkv, heads, extras, Some(neuron), cos, sin)
        .map(|(q, k, v, l)| (q, k, v, l.expect("logits asked for")))
}

/// q, k, v and the query neuron's decision logits.
pub type QkvLogits<B> = (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 2>);

type QkvMaybeLogits<B> = (
    Tensor<B, 3>,
    Tensor<B, 3>,
    Tensor<B, 3>,
    Option<Tensor<B, 2>>,
);

fn qkv_rope_on<B: Backend, R: CubeRuntime>(
    qkv: &Tensor<B, 2>,
    [n_heads, kv_heads, d]: [usize; 3],
    extras: QkvExtras<'_, B>,
    neuron: Option<QueryNeuron>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<QkvMaybeLogits<B>> {
    let [n, width] = qkv.dims();
    let heads = n_heads + 2 * kv_heads;
    if width != heads * d || cos.dims() != [n, d] || sin.dims() != [n, d] || d % 2 != 0 {
        return None;
    }
    if neuron.is_some_and(|q| q.group == 0 || n_heads != q.group * kv_heads) {
        return None;
    }
    if d > 1024 {
        return None;
    }
    // The projection's output in f32, or in its weight's half type.
    let x = cube_float::<B, R, 2>(qkv)?;
    let (c, s) = (cube::<B, R, 2>(cos)?, cube::<B, R, 2>(sin)?);
    let bias = match extras.bias {
        Some(b) => Some(cube::<B, R, 1>(b)?),
        None => None,
    };
    let (norms, eps) = match extras.norms {
        Some((qn, kn, eps)) => (Some((cube::<B, R, 1>(qn)?, cube::<B, R, 1>(kn)?)), eps),
        None => (None, 0.0),
    };
    let q = empty(&x, &[n, n_heads, d]);
    let k = empty(&x, &[n, kv_heads, d]);
    let v = empty(&x, &[n, kv_heads, d]);
    let logits = empty(&x, &[n, if neuron.is_some() { kv_heads } else { 1 }]);
    if n > 0 {
        let units = head_units(d);
        // Unused inputs are bound to `cos` (read-only, never read).
        let b = bias.as_ref().unwrap_or(&c);
        let (qn, kn) = norms.as_ref().map_or((&c, &c), |(q, k)| (q, k));
        qkv_rope_kernel::launch::<R>(
            &x.client,
            CubeCount::Static(n as u32, heads as u32, 1),
            CubeDim::new_1d(units as u32),
            arr(&x),
            arr(b),
            arr(qn),
            arr(kn),
            arr(&c),
            arr(&s),
            arr(&q),
            arr(&k),
            arr(&v),
            arr(&logits),
            eps as f32,
            n_heads as u32,
            kv_heads as u32,
            neuron.map_or(0.0, |q| q.scale),
            neuron.map_or(0.0, |q| q.offset),
            d,
            units,
            bias.is_some(),
            norms.is_some(),
            neuron.map_or(0, |q| q.group),
            x.dtype.into(),
        );
    }
    Some((
        tensor::<B, R, 3>(q),
        tensor::<B, R, 3>(k),
        tensor::<B, R, 3>(v),
        neuron.map(|_| tensor::<B, R, 2>(logits)),
    ))
}
