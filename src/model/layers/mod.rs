//! The building blocks of one decoder layer, each over a generic burn
//! backend: projections ([`linear`]), RMSNorm, rotary embedding, grouped-query
//! attention, the SwiGLU MLP and the DMS decision head.

pub mod attention;
pub mod dms;
pub mod linear;
pub mod mlp;
pub mod norm;
pub mod rope;
