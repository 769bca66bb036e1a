//! KV cache tests: the store, its kernels (CPU and cubecl), and the cache policies.

mod cube;
mod cube_pools;
mod kernel;
mod policy;
mod store;
