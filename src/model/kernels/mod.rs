//! CPU decode kernels on Flex: the few-row projection over f32 weights
//! ([`gemv`]) and over ggml blocks ([`block_gemv`]), the SIMD instruction set
//! they run ([`isa`]), and fused elementwise steps ([`flex_ops`], the SwiGLU product in
//! [`silu`]); a decode step's projections
//! split over spinning workers ([`step_pool`]). Every
//! kernel is bit-identical to the burn composition it replaces.

pub mod block_gemv;
#[cfg(target_arch = "x86_64")]
mod block_gemv_wide;
pub mod cube_ops;
pub mod flex_ops;
pub mod gemv;
pub mod isa;
pub mod q8act;
pub mod q8act_interleaved;
pub mod q8act_interleaved_512;
pub mod q8act_interleaved_k;
pub mod silu;
pub mod step_pool;
